"""Exit codes of the ``fusefs`` command, enumerated in one place.

The CLI's ``--help`` epilog is generated from :class:`ExitCode`, and
:func:`exit_code_for` is the only mapping from an exception to a code, so a
new code needs a member here and nowhere else.

This module imports nothing heavy: ``fusefs --help`` must not load the
native extension.
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
    INTERRUPTED = 130, "interrupted (Ctrl-C); a v2 file run may be continued with --resume"


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that ended a command."""
    # Local imports: the native module is loaded only when a command ran,
    # and by then it is already imported.
    from fusefs import errors
    from fusefs.control import MountError

    if isinstance(exc, errors.QuietError):
        return exc.exit_code
    if isinstance(exc, MountError):
        return ExitCode.MOUNT
    if isinstance(exc, KeyboardInterrupt | errors.CancelledError):
        return ExitCode.INTERRUPTED
    if isinstance(exc, errors.WrongKeyError):
        return ExitCode.WRONG_KEY
    if isinstance(exc, errors.IntegrityError | errors.FormatError):
        return ExitCode.INTEGRITY
    if isinstance(exc, errors.StreamIOError | OSError):
        return ExitCode.IO
    if isinstance(exc, errors.ResumeError):
        return ExitCode.RESUME
    if isinstance(exc, errors.ParamsError):
        return ExitCode.USAGE
    return ExitCode.ERROR


def epilog() -> str:
    """The exit-code table for ``--help`` (``\\b`` stops click from rewrapping it)."""
    lines = ["\b", "Exit codes:"]
    lines += [f"  {code.value:<4} {code.__doc__}" for code in ExitCode]
    return "\n".join(lines)
