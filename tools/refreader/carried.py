"""Frames the log carries (FORMAT.md §9.2 WriteSegmentsCarried, entry 17, and
WriteSegmentsPatched, entry 18): which record carried what, and which of them
a reader still takes from the log.

An fsync of small writes makes frame and record durable with one sync of the
log: the record carries the frame's stored bytes (entry 17, entry 18 kind 1)
or a *patch* over the segment's previous frame from which the frame is sealed
again (entry 18 kind 2), and the pack is synced later. A crash may lose the
pack's unsynced tail, so a reader keeps every carried frame applied after the
snapshot: the newest of each (inode, segment index) is *live* while the
segment still refers to exactly it (its pack may not hold it), and every one
is kept by frame (inode, index, generation) as a possible base of a later
patch. None of this is part of §9.5's state encoding: a snapshot covers a
record only once the packs hold its frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from refreader.fields import Segref


@dataclass(frozen=True)
class Patch:
    """Entry 18's carry kind 2: the frame's plaintext is the first ``keep`` bytes of the
    base's plaintext, zeros to the plain length, then ``data`` written at ``offset``. The
    base is the frame the segment referred to just before the record, of generation
    ``base_generation``; 0 means no base (then ``keep`` is 0)."""

    base_generation: int
    keep: int
    offset: int
    data: bytes


#: What an item carries: the frame's stored bytes, or a patch.
Carry = bytes | Patch


@dataclass(frozen=True)
class Carried:
    """One frame a record carried: segment ``index`` of inode ``ino`` is ``ref``, and
    ``base`` is what the segment referred to just before the record (a patch's base)."""

    ino: int
    index: int
    ref: Segref
    carry: Carry
    base: Segref | None


#: (inode, segment index, generation): a frame's identity. A generation is never taken
#: twice, so it names one frame, wherever pack compaction moved its bytes (§8.2).
FrameKey = tuple[int, int, int]


@dataclass
class CarriedLog:
    """Every frame the records after the base carried."""

    newest: dict[tuple[int, int], Carried] = field(default_factory=dict)
    by_frame: dict[FrameKey, Carried] = field(default_factory=dict)

    def add(self, carried: Carried) -> None:
        self.newest[(carried.ino, carried.index)] = carried
        self.by_frame[(carried.ino, carried.index, carried.ref.generation)] = carried

    def live(self, segment_of: Callable[[int, int], Segref | None]) -> dict[Segref, Carried]:
        """The newest carried frame of each segment that still refers to exactly it
        (pack, offset, lengths, generation), by segref: what its pack holds at that place,
        or held before a crash lost its unsynced tail. ``segment_of(ino, index)`` is the
        segment's current segref. A frame no segment refers to any more is dead: never
        read, its place may have been punched."""
        return {
            c.ref: c for (ino, index), c in self.newest.items() if segment_of(ino, index) == c.ref
        }


def agrees_with_pack(held: bytes, frame: bytes) -> bool:
    """Whether a pack holding ``held`` at a carried frame's place lost (part of) the frame
    to a crash rather than holding another one (§9.2): every byte that differs from the
    frame is zero (``held`` stops where the pack ends; bytes past it differ freely)."""
    if frame.startswith(held):
        return True
    return all(h == f or h == 0 for h, f in zip(held, frame, strict=False))
