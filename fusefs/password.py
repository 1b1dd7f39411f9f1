"""Where a vault password comes from: ``--passfile``, ``--extpass`` or the terminal.

Never from the command line itself (it would show in ``ps`` and in shell
history). Each source yields bytes; an empty password is refused.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

import click

from fusefs.errors import QuietError
from fusefs.exitcodes import ExitCode

#: At most this much of a password file or command output is read.
MAX_PASSWORD_BYTES = 4096


def read_password(
    passfile: str | None,
    extpass: str | None,
    *,
    prompt: str = "Password",
    confirm: bool = False,
    what: str = "password",
) -> bytes:
    """The password from exactly one source; one-line :class:`QuietError` otherwise."""
    if passfile is not None and extpass is not None:
        raise QuietError("--passfile and --extpass are mutually exclusive", ExitCode.USAGE)
    if passfile is not None:
        try:
            with open(passfile, "rb") as f:
                data = f.read(MAX_PASSWORD_BYTES)
        except OSError as e:
            raise QuietError(
                f"cannot read {what} file {passfile}: {e.strerror}", ExitCode.IO
            ) from e
        return _first_line(data, f"{what} file {passfile}")
    if extpass is not None:
        return _from_command(extpass, what)
    if not _stdin_is_terminal():
        raise QuietError(
            f"no {what}: standard input is not a terminal; use --passfile FILE or --extpass CMD",
            ExitCode.USAGE,
        )
    try:
        value: str = click.prompt(prompt, hide_input=True, err=True)
        if confirm:
            again: str = click.prompt(
                f"Repeat {prompt[0].lower()}{prompt[1:]}", hide_input=True, err=True
            )
            if again != value:
                raise QuietError(f"the two {what}s differ", ExitCode.USAGE)
    except click.Abort:
        raise QuietError("aborted", ExitCode.INTERRUPTED) from None
    if not value:
        raise QuietError(f"empty {what}", ExitCode.USAGE)
    return value.encode("utf-8", "surrogateescape")


def _first_line(data: bytes, source: str) -> bytes:
    line = data.split(b"\n", 1)[0].removesuffix(b"\r")
    if not line:
        raise QuietError(f"{source} is empty: its first line is the password", ExitCode.USAGE)
    return line


def _from_command(command: str, what: str) -> bytes:
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise QuietError(f"--extpass {command!r}: {e}", ExitCode.USAGE) from None
    if not argv:
        raise QuietError("--extpass is empty", ExitCode.USAGE)
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=300)
    except FileNotFoundError:
        raise QuietError(f"--extpass: command not found: {argv[0]}", ExitCode.USAGE) from None
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QuietError(f"--extpass {argv[0]}: {e}", ExitCode.USAGE) from None
    if done.returncode != 0:
        raise QuietError(
            f"--extpass {argv[0]} failed with exit status {done.returncode}", ExitCode.USAGE
        )
    return _first_line(done.stdout[:MAX_PASSWORD_BYTES], f"the output of --extpass {argv[0]}")


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False
