"""The exceptions of fusefs.

The hierarchy is defined by the native module (so the engine raises the very
classes users catch) and re-exported here::

    FusefsError            base; every instance has .kind, a short stable string
    ├── WrongKeyError      wrong password or key, or the wrong kind of key
    ├── IntegrityError     tampered, truncated or malformed stream
    ├── FormatError        not a fusefs stream, truncated header, unknown version
    ├── ResumeError        nothing usable to resume from
    ├── ParamsError        bad parameters (segment size, key length, ...)
    ├── CancelledError     the run was cancelled
    └── StreamIOError      I/O error; .errno and .filename (either may be None)

``.kind`` names the precise failure ("segment_auth_failed", "truncated",
"wrong_key", "io", ...) and ``str(exc)`` is a one-line message for humans.

:class:`QuietError` is not raised by the engine: it is a user error of the
command line, printed as one line and ending the process with its exit code
(defined in :mod:`fusefs.exitcodes`, which loads no native code).
:func:`exit_code_for` maps any exception to the process's exit code.
"""

from __future__ import annotations

from fusefs._native import (
    CancelledError,
    FormatError,
    FusefsError,
    IntegrityError,
    ParamsError,
    ResumeError,
    StreamIOError,
    WrongKeyError,
)
from fusefs.exitcodes import ExitCode, QuietError

__all__ = [
    "CancelledError",
    "FormatError",
    "FusefsError",
    "IntegrityError",
    "ParamsError",
    "QuietError",
    "ResumeError",
    "StreamIOError",
    "WrongKeyError",
]


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that ended a command."""
    if isinstance(exc, QuietError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt | CancelledError):
        return ExitCode.INTERRUPTED
    if isinstance(exc, WrongKeyError):
        return ExitCode.WRONG_KEY
    if isinstance(exc, IntegrityError | FormatError):
        return ExitCode.INTEGRITY
    if isinstance(exc, StreamIOError | OSError):
        return ExitCode.IO
    if isinstance(exc, ResumeError):
        return ExitCode.RESUME
    if isinstance(exc, ParamsError):
        return ExitCode.USAGE
    return ExitCode.ERROR
