"""Errors of the reference reader, each carrying its command-line exit status.

Exit status: 0 success; 1 wrong password or key; 2 usage error, bad key
file, unreadable input or unwritable output; 3 integrity or format failure.
"""

from __future__ import annotations


class DecodeError(Exception):
    """Base class; ``exit_code`` is the CLI exit status for this error."""

    exit_code = 3


class IntegrityError(DecodeError):
    """The input is not a valid stream: truncated, tampered, malformed."""

    exit_code = 3


class WrongKeyError(DecodeError):
    """Wrong password or key, or the wrong kind of key for this stream."""

    exit_code = 1


class UsageError(DecodeError):
    """Bad command line, bad key file, unreadable input, unwritable output."""

    exit_code = 2
