"""Where a password comes from: a file, a command, or the terminal.

Never from the command line itself (it would show in ``ps`` and in shell
history). Each source yields a ``bytearray``, which the caller overwrites
with :func:`wipe` once the engine has its own (zeroizing) copy; an empty
password is refused. Every command that asks for a password uses this,
streams and vaults alike.

What cannot be wiped (Python's ``str`` and ``bytes`` are immutable): a
password typed at the prompt passes through the ``str`` that ``getpass``
returns, and the output of ``--extpass`` through the ``bytes`` of the pipe;
those copies stay in the heap until it is reused. A ``--passfile`` is read
straight into a ``bytearray``.

Nothing here loads the native module, so the CLI can import it at start-up.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import IO, Any

import click

from fusefs.exitcodes import ExitCode, QuietError

#: At most this much of a password file, key file or command output is read.
MAX_PASSWORD_BYTES = 4096


def isatty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed or detached
        return False


def wipe(secret: bytearray) -> None:
    """Overwrite ``secret`` in place with zeros."""
    secret[:] = bytes(len(secret))


def read_small_file(path: str, what: str) -> bytearray:
    """The first :data:`MAX_PASSWORD_BYTES` of a password or key file, read
    into a ``bytearray`` (no ``bytes`` copy is made)."""
    buf = bytearray(MAX_PASSWORD_BYTES)
    try:
        with open(path, "rb", buffering=0) as f:
            n = 0
            while n < len(buf) and (got := f.readinto(memoryview(buf)[n:])):
                n += got
    except OSError as e:
        wipe(buf)
        raise QuietError(f"cannot read {what} {path}: {e.strerror}", ExitCode.IO) from e
    del buf[n:]  # shrinks in place
    return buf


def read_password(
    passfile: str | None,
    extpass: str | None,
    *,
    prompt: str = "Password",
    confirm: bool = False,
    what: str = "password",
    sources: str = "--passfile FILE or --extpass CMD",
) -> bytearray:
    """The password from exactly one source; one-line :class:`QuietError` otherwise.

    ``sources`` names the options to use where there is no terminal.
    """
    if passfile is not None and extpass is not None:
        raise QuietError("--passfile and --extpass are mutually exclusive", ExitCode.USAGE)
    if passfile is not None:
        return _first_line(read_small_file(passfile, f"{what} file"), f"{what} file {passfile}")
    if extpass is not None:
        return _from_command(extpass, what)
    if not isatty(sys.stdin):
        raise QuietError(
            f"no {what}: standard input is not a terminal; use {sources}", ExitCode.USAGE
        )
    try:
        value = _prompt(prompt)
        if not value:
            # As gocryptfs does: refuse rather than ask again without a word.
            raise QuietError(f"{what} is empty: nothing was typed", ExitCode.PASSWORD)
        if confirm and _prompt(f"Repeat {prompt[0].lower()}{prompt[1:]}") != value:
            raise QuietError(f"the two {what}s typed differ", ExitCode.PASSWORD)
    except click.Abort:
        raise QuietError("aborted", ExitCode.INTERRUPTED) from None
    return bytearray(value.encode("utf-8", "surrogateescape"))


def _prompt(text: str) -> str:
    """One hidden line from the terminal, empty if that is what was typed.

    Without a default, ``click.prompt`` answers an empty line by asking
    again, silently; the empty default lets the caller say why it refuses.
    """
    value: str = click.prompt(text, default="", show_default=False, hide_input=True, err=True)
    return value


def _first_line(data: bytearray, source: str) -> bytearray:
    """``data`` cut in place to its first line (the rest is wiped first)."""
    end = data.find(b"\n")
    if end >= 0:
        data[end:] = bytes(len(data) - end)
        del data[end:]
    if data.endswith(b"\r"):
        data[-1:] = b"\0"
        del data[-1:]
    if not data:
        raise QuietError(f"{source} is empty: its first line is the password", ExitCode.USAGE)
    return data


def _from_command(command: str, what: str) -> bytearray:
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
    return _first_line(
        bytearray(done.stdout[:MAX_PASSWORD_BYTES]), f"the output of --extpass {argv[0]}"
    )
