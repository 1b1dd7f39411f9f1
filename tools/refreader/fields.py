"""Field types of FORMAT.md §9.1, read with bounds checks: entries and states.

Nothing is ever read past the end of the input: a field that would run past
it raises :class:`Damaged` (*cut short*), which the callers turn into
*undecodable entry* or *snapshot damaged*.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NS_PER_S = 1_000_000_000

_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TIME = struct.Struct("<qI")  # seconds i64 ‖ nanoseconds u32
_SEGREF = struct.Struct("<QQIIQ")  # pack, offset, stored length, plaintext length, generation


class Damaged(Exception):
    """A field that does not decode; the message says which and where."""


@dataclass(frozen=True)
class Segref:
    """Where one segment's frame is (§9.1 ``segref``)."""

    pack: int
    offset: int
    stored_len: int
    plain_len: int
    generation: int


class Cursor:
    """Reads §9.1 fields from ``data`` in order."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.at

    def take(self, n: int, what: str) -> bytes:
        if n > self.left:
            raise Damaged(f"{what} cut short at byte {self.at}")
        out = bytes(self.data[self.at : self.at + n])
        self.at += n
        return out

    def _unpack(self, fmt: struct.Struct, what: str) -> tuple[int, ...]:
        return fmt.unpack(self.take(fmt.size, what))

    def u8(self, what: str) -> int:
        return self._unpack(_U8, what)[0]

    def u32(self, what: str) -> int:
        return self._unpack(_U32, what)[0]

    def u64(self, what: str) -> int:
        return self._unpack(_U64, what)[0]

    def boolean(self, what: str) -> bool:
        value = self.u8(what)
        if value not in (0, 1):
            raise Damaged(f"{what}: bool byte {value}")
        return value == 1

    def bytes_(self, what: str) -> bytes:
        return self.take(self.u32(f"{what} length"), what)

    def ident(self, what: str) -> bytes:
        return self.take(16, what)

    def time_ns(self, what: str) -> int:
        """A ``time`` as nanoseconds since the epoch (may be negative)."""
        seconds, nanos = self._unpack(_TIME, what)
        if nanos >= NS_PER_S:
            raise Damaged(f"{what}: nanoseconds {nanos} >= 1000000000")
        return seconds * NS_PER_S + nanos

    def present(self, what: str) -> bool:
        flag = self.u8(f"{what} presence")
        if flag not in (0, 1):
            raise Damaged(f"{what}: presence byte {flag}")
        return flag == 1

    def segref(self, what: str) -> Segref:
        return Segref(*self._unpack(_SEGREF, what))

    def count(self, what: str, item_size: int, width: int = 8) -> int:
        """A count, refused when larger than the items the bytes left can hold."""
        n = self.u64(what) if width == 8 else self.u32(what)
        if n > self.left // item_size:
            raise Damaged(f"{what} {n} larger than the {self.left} bytes left can hold")
        return n

    def end(self, what: str) -> None:
        if self.left:
            raise Damaged(f"{self.left} trailing bytes after the {what}")
