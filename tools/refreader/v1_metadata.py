"""Version 1 byte layouts of metadata: entries (FORMAT.md §9.2) and the state
encoding of snapshots (§9.5). Both raise :class:`refreader.fields.Damaged`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from refreader.fields import Cursor, Damaged, Segref
from refreader.state import (
    ALL_GENERATIONS,
    KIND_DIR,
    KIND_NAMES,
    Entry,
    Inode,
    State,
    root_only_state,
)

# --- entries (§9.2) ------------------------------------------------------------------------


def _kind(c: Cursor, what: str) -> int:
    kind = c.u8(what)
    if kind not in KIND_NAMES:
        raise Damaged(f"unknown inode kind {kind}")
    return kind


def _opt(read: Callable[[Cursor, str], Any]) -> Callable[[Cursor, str], Any]:
    return lambda c, what: read(c, what) if c.present(what) else None


def _segment_items(c: Cursor, what: str) -> list[tuple[int, Segref]]:
    n = c.count(what, 40, width=4)
    return [(c.u64("segment index"), c.segref("segref")) for _ in range(n)]


def _moves(c: Cursor, what: str) -> list[tuple[int, int, Segref, Segref]]:
    n = c.count(what, 80, width=4)
    return [(c.u64("ino"), c.u64("index"), c.segref("from"), c.segref("to")) for _ in range(n)]


U8, U32, U64 = Cursor.u8, Cursor.u32, Cursor.u64
BOOL, BYTES, ID, TIME = Cursor.boolean, Cursor.bytes_, Cursor.ident, Cursor.time_ns

#: tag -> (entry name, [(field, reader)]), in the order of §9.2's table.
ENTRY_LAYOUTS: dict[int, tuple[str, list[tuple[str, Callable[[Cursor, str], Any]]]]] = {
    1: ("CreateInode", [("ino", U64), ("kind", _kind), ("mode", U32), ("uid", U32),
        ("gid", U32), ("rdev", U64), ("time", TIME), ("file_id", ID), ("target", BYTES)]),
    2: ("Link", [("parent", U64), ("name", BYTES), ("ino", U64), ("time", TIME)]),
    3: ("Unlink", [("parent", U64), ("name", BYTES), ("time", TIME)]),
    4: ("Rename", [("parent", U64), ("name", BYTES), ("new_parent", U64),
        ("new_name", BYTES), ("exchange", BOOL), ("time", TIME)]),
    5: ("SetAttr", [("ino", U64), ("mode", _opt(U32)), ("uid", _opt(U32)),
        ("gid", _opt(U32)), ("size", _opt(U64)), ("atime", _opt(TIME)),
        ("mtime", _opt(TIME)), ("ctime", _opt(TIME))]),
    6: ("SetXattr", [("ino", U64), ("name", BYTES), ("value", BYTES)]),
    7: ("RemoveXattr", [("ino", U64), ("name", BYTES)]),
    8: ("WriteSegments", [("ino", U64), ("size", U64), ("mtime", TIME),
        ("items", _segment_items)]),
    9: ("Forget", [("ino", U64)]),
    10: ("Scheduler", [("cycle", U64), ("time", TIME)]),
    11: ("SnapshotCheckpoint", [("number", U64), ("covers_seq", U64)]),
    12: ("MoveSegments", [("moves", _moves)]),
    13: ("PackDeleted", [("pack", U64)]),
}  # fmt: skip


EntryLayouts = dict[int, tuple[str, list[tuple[str, Callable[[Cursor, str], Any]]]]]


def decode_entry_of(payload: bytes, layouts: EntryLayouts) -> Entry:
    """One log record's payload: a tag byte of ``layouts`` and its fields, nothing after."""
    c = Cursor(payload)
    if not payload:
        raise Damaged("empty payload")
    tag = c.u8("tag")
    if tag not in layouts:
        raise Damaged(f"unknown tag {tag}")
    name, layout = layouts[tag]
    fields = {field: read(c, field) for field, read in layout}
    c.end(name)
    return Entry(name, fields)


def decode_entry(payload: bytes) -> Entry:
    """An entry of format 1: tags 1..13."""
    return decode_entry_of(payload, ENTRY_LAYOUTS)


# --- state encoding (§9.5) -----------------------------------------------------------------

INODE_MIN, XATTR_MIN, SEGMENT_ITEM, DIR_MIN, DIR_ENTRY_MIN, PACK_RECORD = 90, 8, 40, 16, 12, 24


def _inode_record(c: Cursor) -> tuple[int, Inode]:
    ino = c.u64("inode number")
    kind = _kind(c, "kind")
    mode, uid, gid = c.u32("mode"), c.u32("uid"), c.u32("gid")
    rdev, size, links = c.u64("rdev"), c.u64("size"), c.u32("links")
    atime, mtime, ctime = c.time_ns("atime"), c.time_ns("mtime"), c.time_ns("ctime")
    file_id, target, parent = c.ident("file id"), c.bytes_("target"), c.u64("parent")
    node = Inode(kind, mode, uid, gid, rdev, size, links, atime, mtime, ctime, file_id, target,
                 parent)  # fmt: skip
    for _ in range(c.count("xattr count", XATTR_MIN, width=4)):
        name = c.bytes_("xattr name")
        node.xattrs[name] = c.bytes_("xattr value")
    for _ in range(c.count("segment count", SEGMENT_ITEM)):
        index = c.u64("segment index")
        node.segments[index] = c.segref("segref")
    return ino, node


def empty_state(segment_size: int) -> State:
    """§9.3's empty vault of format 1: every frame has format 1's layout."""
    state = root_only_state(segment_size)
    state.legacy_generation_high = ALL_GENERATIONS
    return state


def decode_state_head(c: Cursor) -> State:
    """Segment size, next ino, scheduler cycles, generation high (§9.5, both layouts)."""
    segment_size = c.u32("segment size")
    if segment_size == 0:
        raise Damaged("segment size 0")
    state = State(segment_size, {}, {}, {})
    state.next_ino = c.u64("next ino")
    state.scheduler_cycles = c.u64("scheduler cycles")
    state.generation_high = c.u64("generation high")
    return state


def decode_state(data: bytes) -> State:
    """The encoded state of a snapshot of version 1 (layout 1), with every refusal of
    §9.5; layout 1 has no generation reserved or legacy generation high: they are
    taken to be the generation high and 2⁶⁴−1."""
    c = Cursor(data)
    state = decode_state_head(c)
    state.generation_reserved = state.generation_high
    state.legacy_generation_high = ALL_GENERATIONS
    decode_state_tables(c, state)
    return state


def decode_state_tables(c: Cursor, state: State) -> None:
    """The inode, directory and pack records after the head, to the end (§9.5)."""
    for _ in range(c.count("inode count", INODE_MIN)):
        ino, node = _inode_record(c)
        if ino in state.inodes:
            raise Damaged(f"inode {ino} recorded twice")
        state.inodes[ino] = node
    for _ in range(c.count("directory count", DIR_MIN)):
        ino = c.u64("directory inode")
        if ino in state.dirs:
            raise Damaged(f"directory {ino} recorded twice")
        entries: dict[bytes, int] = {}
        previous: bytes | None = None
        for _ in range(c.count("entry count", DIR_ENTRY_MIN)):
            name, target = c.bytes_("entry name"), c.u64("entry inode")
            if previous is not None and name <= previous:
                raise Damaged(f"directory {ino}: entries not in increasing name order")
            if target not in state.inodes:
                raise Damaged(f"directory {ino}: entry {name!r} names inode {target}, unrecorded")
            entries[name] = target
            previous = name
        state.dirs[ino] = entries
    for _ in range(c.count("pack count", PACK_RECORD)):
        number = c.u64("pack number")
        state.packs[number] = [c.u64("live bytes"), c.u64("dead bytes")]
    c.end("pack records")
    # §9.5: every directory inode has a record, no other inode has one.
    dirs = {ino for ino, node in state.inodes.items() if node.kind == KIND_DIR}
    if dirs != set(state.dirs):
        raise Damaged("directory records do not match the directory inodes")
