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
command line, printed as one line and ending the process with its exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from fusefs.exitcodes import ExitCode

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


class QuietError(Exception):
    """A user error of the command line: one line on stderr, no traceback.

    ``message`` is shown after ``fusefs: error:``; ``exit_code`` is a member
    of :class:`fusefs.exitcodes.ExitCode`.
    """

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
