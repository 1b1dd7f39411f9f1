"""Exit codes of the ``fusefs`` command, enumerated in one place, and the
error that carries one.

The CLI's ``--help`` epilog is generated from :class:`ExitCode`, and
:func:`fusefs.errors.exit_code_for` is the only mapping from an exception to
a code, so a new code needs a member here and nowhere else.

:class:`QuietError` lives here rather than in :mod:`fusefs.errors` (which
re-exports it) because that module loads the native extension, and every
command raises it: ``fusefs --help`` must not load the extension. This module
imports nothing of fusefs, so every other one may import it.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit status of ``fusefs``; each member's docstring is its help text."""

    def __new__(cls, value: int, doc: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.__doc__ = doc
        return member

    OK = 0, "success"
    ERROR = 1, "unexpected internal error (a bug: please report it)"
    USAGE = 2, "bad command line: unknown option, bad value, bad key file, no password source"
    WRONG_KEY = 3, "wrong password or key, or the wrong kind of key for this stream"
    INTEGRITY = 4, "input is not an intact stream: tampered, truncated, not fusefs, unknown version"
    IO = 5, "I/O error: missing input, unwritable output, disk full"
    RESUME = 6, "--resume found nothing usable to resume from"
    MOUNT = 7, "mount point or vault unusable: missing, not empty, mounted, dead, busy, in use"
    PASSWORD = 8, "password refused as typed: empty, or the repeated entry differs"
    EXISTS = 9, "OUT exists, or an interrupted run's files do: --force to replace them"
    INTERRUPTED = 130, "interrupted (Ctrl-C); a v2 stream run to a file continues with --resume"


#: What every command can return, whatever it does: success, a bug, a bad
#: command line (click's own refusals), Ctrl-C.
ALWAYS = (ExitCode.OK, ExitCode.ERROR, ExitCode.USAGE, ExitCode.INTERRUPTED)


def epilog(*codes: ExitCode) -> str:
    """The exit-code table for ``--help`` (``\\b`` stops click from rewrapping it).

    With ``codes``, only those and :data:`ALWAYS` are listed, so each
    command's help names the codes it can return; without, all of them (the
    group's help).
    """
    listed = set(codes) | set(ALWAYS) if codes else set(ExitCode)
    lines = ["\b", "Exit codes:"]
    lines += [f"  {code.value:<4} {code.__doc__}" for code in ExitCode if code in listed]
    return "\n".join(lines)


class QuietError(Exception):
    """A user error of the command line: one line on stderr, no traceback.

    ``message`` is shown after ``fusefs: error:``; ``exit_code`` is the
    process's exit status. Errors that end a command this way subclass it
    with their own code (:class:`fusefs.control.MountError`).
    """

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
