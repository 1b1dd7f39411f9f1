"""Version 2 byte layouts of metadata: the entries format 2 adds (FORMAT.md
§9.2: Close, ReserveGenerations, DecryptCheckpoint) and state layout 2 (§9.5:
generation reserved and legacy generation high after the generation high).
Everything else is format 1's (``v1_metadata``), reused."""

from __future__ import annotations

from refreader import v1_metadata
from refreader.fields import Cursor
from refreader.state import Entry, State, root_only_state
from refreader.v1_metadata import ID, TIME, U64, EntryLayouts


def _damaged_pairs(c: Cursor, what: str) -> list[tuple[int, int]]:
    n = c.count(what, 16, width=4)
    return [(c.u64("ino"), c.u64("segment index")) for _ in range(n)]


#: tag -> (entry name, [(field, reader)]): format 1's tags and 14..16.
ENTRY_LAYOUTS: EntryLayouts = {
    **v1_metadata.ENTRY_LAYOUTS,
    14: ("Close", [("time", TIME)]),
    15: ("ReserveGenerations", [("up_to", U64)]),
    16: ("DecryptCheckpoint", [("run", ID), ("total", U64), ("done", U64),
         ("damaged", _damaged_pairs)]),
}  # fmt: skip


def decode_entry(payload: bytes) -> Entry:
    """An entry of format 2: tags 1..16."""
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
