"""The user's secret read from files: raw key, password, printed master key."""

from __future__ import annotations

from refreader.errors import UsageError
from refreader.primitives import MASTER_KEY_LEN


def read_keyfile(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MASTER_KEY_LEN + 1)
    except OSError as e:
        raise UsageError(f"cannot read key file {path!r}: {e.strerror or e}") from None
    if len(data) != MASTER_KEY_LEN:
        raise UsageError(f"key file {path!r} must hold exactly {MASTER_KEY_LEN} bytes")
    return data


def read_passfile(path: str) -> bytes:
    """The password is the file's first line without its "\\n" or "\\r\\n"."""
    try:
        with open(path, "rb") as f:
            line = f.readline()
    except OSError as e:
        raise UsageError(f"cannot read password file {path!r}: {e.strerror or e}") from None
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def parse_printed_master_key(text: str) -> bytes:
    """FORMAT.md §6.4: dashes and whitespace anywhere are ignored, either case;
    exactly 64 hex digits must remain."""
    digits = "".join(ch for ch in text if ch != "-" and not ch.isspace())
    if len(digits) != 2 * MASTER_KEY_LEN or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise UsageError(f"a printed master key is {2 * MASTER_KEY_LEN} hex digits, dashes allowed")
    return bytes.fromhex(digits)


def read_masterkey_file(path: str) -> bytes:
    """The printed master key (§6.4) from a text file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except OSError as e:
        raise UsageError(f"cannot read master key file {path!r}: {e.strerror or e}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(f"master key file {path!r} is not ASCII text") from None
    try:
        return parse_printed_master_key(text)
    except UsageError as e:
        raise UsageError(f"master key file {path!r}: {e}") from None
