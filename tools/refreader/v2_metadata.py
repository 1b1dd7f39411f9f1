"""Version 2 byte layouts of metadata: the entries format 2 adds (FORMAT.md
§9.2: Close, ReserveGenerations, DecryptCheckpoint, WriteSegmentsCarried) and
state layout 2 (§9.5: generation reserved and legacy generation high after the
generation high). Everything else is format 1's (``v1_metadata``), reused."""

from __future__ import annotations

from refreader import v1_metadata
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


#: tag -> (entry name, [(field, reader)]): format 1's tags and 14..17.
ENTRY_LAYOUTS: EntryLayouts = {
    **v1_metadata.ENTRY_LAYOUTS,
    14: ("Close", [("time", TIME)]),
    15: ("ReserveGenerations", [("up_to", U64)]),
    16: ("DecryptCheckpoint", [("run", ID), ("total", U64), ("done", U64),
         ("damaged", _damaged_pairs)]),
    17: ("WriteSegmentsCarried", [("ino", U64), ("size", U64), ("mtime", TIME),
         ("items", _carried_items)]),
}  # fmt: skip


def decode_entry(payload: bytes) -> Entry:
    """An entry of format 2: tags 1..17."""
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
