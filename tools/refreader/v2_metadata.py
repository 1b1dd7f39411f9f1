"""Version 2 byte layouts of metadata: the entries format 2 adds (FORMAT.md
§9.2: Close, ReserveGenerations, DecryptCheckpoint, WriteSegmentsCarried and
WriteSegmentsPatched) and state layout 2 (§9.5: generation reserved and legacy
generation high after the generation high). Everything else is format 1's
(``v1_metadata``), reused."""

from __future__ import annotations

from refreader import v1_metadata
from refreader.carried import Carry, Patch
from refreader.fields import Cursor, Damaged, Segref
from refreader.state import Entry, State, root_only_state
from refreader.v1_metadata import ID, TIME, U64, EntryLayouts


def _damaged_pairs(c: Cursor, what: str) -> list[tuple[int, int]]:
    n = c.count(what, 16, width=4)
    return [(c.u64("ino"), c.u64("segment index")) for _ in range(n)]


def _carried_items(c: Cursor, what: str) -> list[tuple[int, Segref, bytes]]:
    """WriteSegmentsCarried's items: a segment item and the frame's stored bytes, empty
    for a frame already durable in its pack; a frame of another length is refused (§9.2)."""
    n = c.count(what, 44, width=4)
    items = []
    for _ in range(n):
        index, ref, frame = c.u64("segment index"), c.segref("segref"), c.bytes_("frame")
        if frame and len(frame) != ref.stored_len:
            raise Damaged(
                f"carried frame of segment {index} has {len(frame)} bytes, "
                f"its stored length is {ref.stored_len}"
            )
        items.append((index, ref, frame))
    return items


CARRY_NOTHING, CARRY_FRAME, CARRY_PATCH = 0, 1, 2


def _patched_items(c: Cursor, what: str) -> list[tuple[int, Segref, Carry | None]]:
    """WriteSegmentsPatched's items: a segment item, a carry kind, then nothing (None: the
    frame was durable in its pack), the frame's stored bytes or a :class:`Patch`, with
    every refusal of §9.2 (the count is bounded by 41 bytes per item)."""
    n = c.count(what, 41, width=4)
    items: list[tuple[int, Segref, Carry | None]] = []
    for _ in range(n):
        index, ref, kind = c.u64("segment index"), c.segref("segref"), c.u8("carry kind")
        carry: Carry | None = None
        if kind == CARRY_FRAME:
            carry = c.bytes_("frame")
            if len(carry) != ref.stored_len:
                raise Damaged(
                    f"carried frame of segment {index} has {len(carry)} bytes, "
                    f"its stored length is {ref.stored_len}"
                )
        elif kind == CARRY_PATCH:
            carry = Patch(c.u64("base generation"), c.u32("keep"), c.u32("patch offset"),
                          c.bytes_("patch"))  # fmt: skip
            _check_patch(index, ref, carry)
        elif kind != CARRY_NOTHING:
            raise Damaged(f"segment {index}: carry kind {kind}")
        items.append((index, ref, carry))
    return items


def _check_patch(index: int, ref: Segref, patch: Patch) -> None:
    """A patch must lie within its frame's plaintext and patch an older frame (§9.2)."""
    if patch.keep > ref.plain_len:
        raise Damaged(
            f"patch of segment {index} keeps {patch.keep} bytes of a plain length {ref.plain_len}"
        )
    if patch.offset + len(patch.data) > ref.plain_len:
        raise Damaged(
            f"patch of segment {index} ends at {patch.offset + len(patch.data)}, "
            f"past its plain length {ref.plain_len}"
        )
    if patch.base_generation >= ref.generation:
        raise Damaged(
            f"patch of segment {index}: base generation {patch.base_generation} is not below "
            f"its generation {ref.generation}"
        )
    if patch.base_generation == 0 and patch.keep != 0:
        raise Damaged(f"patch of segment {index} without base keeps {patch.keep} bytes")


#: tag -> (entry name, [(field, reader)]): format 1's tags and 14..18.
ENTRY_LAYOUTS: EntryLayouts = {
    **v1_metadata.ENTRY_LAYOUTS,
    14: ("Close", [("time", TIME)]),
    15: ("ReserveGenerations", [("up_to", U64)]),
    16: ("DecryptCheckpoint", [("run", ID), ("total", U64), ("done", U64),
         ("damaged", _damaged_pairs)]),
    17: ("WriteSegmentsCarried", [("ino", U64), ("size", U64), ("mtime", TIME),
         ("items", _carried_items)]),
    18: ("WriteSegmentsPatched", [("ino", U64), ("size", U64), ("mtime", TIME),
         ("items", _patched_items)]),
}  # fmt: skip


def decode_entry(payload: bytes) -> Entry:
    """An entry of format 2: tags 1..18."""
    return v1_metadata.decode_entry_of(payload, ENTRY_LAYOUTS)


def empty_state(segment_size: int) -> State:
    """§9.3's empty vault of format 2: generation reserved 0, legacy generation high 0
    (no frame has format 1's layout)."""
    return root_only_state(segment_size)


def decode_state(data: bytes) -> State:
    """The encoded state of a snapshot of version 2 (layout 2), with every refusal of §9.5."""
    c = Cursor(data)
    state = v1_metadata.decode_state_head(c)
    state.generation_reserved = c.u64("generation reserved")
    state.legacy_generation_high = c.u64("legacy generation high")
    v1_metadata.decode_state_tables(c, state)
    return state
