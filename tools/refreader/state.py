"""The metadata state and what applying an entry does (FORMAT.md §9.3).

Entries arrive decoded (by the layout of the vault's version) as
:class:`Entry`: a name and its fields. ``apply`` checks each entry's
preconditions in the documented order and refuses the first that fails with
the errno of §9.3, changing nothing; the bootstrap reports a refusal as log
corruption.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from refreader.carried import Carried, CarriedLog, Carry
from refreader.fields import Segref

KIND_FILE, KIND_DIR, KIND_SYMLINK, KIND_CHR, KIND_BLK, KIND_FIFO, KIND_SOCK = range(1, 8)
KIND_NAMES = {
    KIND_FILE: "regular file",
    KIND_DIR: "directory",
    KIND_SYMLINK: "symbolic link",
    KIND_CHR: "character device",
    KIND_BLK: "block device",
    KIND_FIFO: "FIFO",
    KIND_SOCK: "socket",
}
ROOT_INO = 1
MAX_NAME = 255
NO_INO = (0, 2**64 - 1)
ALL_GENERATIONS = 2**64 - 1  # the legacy generation high of a vault of format 1


@dataclass(frozen=True)
class Entry:
    """One decoded metadata entry (§9.2): ``name`` as in the table, fields by name."""

    name: str
    fields: dict[str, Any]


@dataclass
class Inode:
    kind: int
    mode: int
    uid: int
    gid: int
    rdev: int
    size: int
    links: int
    atime: int  # nanoseconds since the epoch, as every time here
    mtime: int
    ctime: int
    file_id: bytes
    target: bytes
    parent: int
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    segments: dict[int, Segref] = field(default_factory=dict)


@dataclass
class State:
    segment_size: int
    inodes: dict[int, Inode]
    dirs: dict[int, dict[bytes, int]]
    packs: dict[int, list[int]]  # pack number -> [live bytes, dead bytes]
    next_ino: int = 2
    scheduler_cycles: int = 0
    generation_high: int = 0
    generation_reserved: int = 0  # (v2) frames may carry generations up to it
    legacy_generation_high: int = 0  # (v2) frames up to it have format 1's layout (§8.2)
    # (v2) The frames records carried since the base (WriteSegmentsCarried, -Patched). Not
    # part of §9.5's encoding (a snapshot covers a record only once the packs hold its
    # frames); see carried_frames.
    carried: CarriedLog = field(default_factory=CarriedLog)


class Refused(Exception):
    """An entry whose preconditions fail; ``errno`` as §9.3 lists it."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{errno.errorcode.get(code, code)}: {why}")
        self.errno = code


def root_only_state(segment_size: int) -> State:
    """§9.3's empty vault but for its generation fields, which depend on the format
    (each layout's ``empty_state``). The root's mode, owner and times are not recorded
    by any entry; §9.3 gives what fusefs opens with: 0o40755, uid 0, gid 0, time 0."""
    root = Inode(KIND_DIR, 0o40755, 0, 0, 0, 0, 1, 0, 0, 0, bytes(16), b"", ROOT_INO)
    return State(segment_size, {ROOT_INO: root}, {ROOT_INO: {}}, {})


def apply(state: State, entry: Entry) -> None:
    """Apply one entry (§9.3), or raise :class:`Refused` having changed nothing."""
    handler = _HANDLERS.get(entry.name)
    if handler is None:
        raise Refused(errno.EINVAL, f"no rule for entry {entry.name}")
    handler(state, **entry.fields)


# --- terms of §9.3 -------------------------------------------------------------------------


def _inode(state: State, ino: int) -> Inode:
    node = state.inodes.get(ino)
    if node is None:
        raise Refused(errno.ENOENT, f"inode {ino} does not exist")
    return node


def _valid_name(name: bytes) -> None:
    if len(name) > MAX_NAME:
        raise Refused(errno.ENAMETOOLONG, f"name of {len(name)} bytes")
    if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
        raise Refused(errno.EINVAL, f"invalid name {name!r}")


def _directory(state: State, ino: int) -> dict[bytes, int]:
    if _inode(state, ino).kind != KIND_DIR:
        raise Refused(errno.ENOTDIR, f"inode {ino} is not a directory")
    return state.dirs[ino]


def _lookup(state: State, parent: int, name: bytes) -> int:
    entries = _directory(state, parent)
    if name not in entries:
        raise Refused(errno.ENOENT, f"no entry {name!r} in directory {parent}")
    return entries[name]


def _live_directory(state: State, ino: int) -> dict[bytes, int]:
    entries = _directory(state, ino)
    if ino != ROOT_INO and state.inodes[ino].links == 0:
        raise Refused(errno.ENOENT, f"directory {ino} was removed")
    return entries


def _within(state: State, x: int, d: int) -> bool:
    """X is D, or following parent pointers from X through directories reaches D."""
    seen: set[int] = set()
    while x not in seen:
        if x == d:
            return True
        seen.add(x)
        node = state.inodes.get(x)
        if node is None or node.kind != KIND_DIR:
            return False
        x = node.parent
    return False


def _touch(state: State, d: int, time: int) -> None:
    node = state.inodes[d]
    node.mtime = node.ctime = time


def _pack(state: State, number: int) -> list[int]:
    return state.packs.setdefault(number, [0, 0])


def _drop(state: State, ref: Segref) -> None:
    counts = _pack(state, ref.pack)
    counts[0] = max(0, counts[0] - ref.stored_len)
    counts[1] += ref.stored_len


# --- the entries ---------------------------------------------------------------------------


def _create_inode(
    state: State, ino: int, kind: int, mode: int, uid: int, gid: int, rdev: int,
    time: int, file_id: bytes, target: bytes,
) -> None:  # fmt: skip
    if ino in NO_INO:
        raise Refused(errno.EINVAL, f"inode number {ino}")
    if ino in state.inodes:
        raise Refused(errno.EEXIST, f"inode {ino} exists")
    size = len(target) if kind == KIND_SYMLINK else 0
    parent = 0 if kind == KIND_DIR else ino
    state.inodes[ino] = Inode(
        kind, mode, uid, gid, rdev, size, 0, time, time, time, file_id, target, parent
    )
    if kind == KIND_DIR:
        state.dirs[ino] = {}
    state.next_ino = max(state.next_ino, ino + 1)


def _link(state: State, parent: int, name: bytes, ino: int, time: int) -> None:
    _valid_name(name)
    entries = _live_directory(state, parent)
    if name in entries:
        raise Refused(errno.EEXIST, f"entry {name!r} exists in directory {parent}")
    node = _inode(state, ino)
    if node.kind == KIND_DIR:
        if node.links != 0:
            raise Refused(errno.EISDIR, f"directory {ino} already has a name")
        if _within(state, parent, ino):
            raise Refused(errno.EINVAL, f"directory {parent} is within {ino}")
        node.parent = parent
    entries[name] = ino
    node.links += 1
    node.ctime = time
    _touch(state, parent, time)


def _unlink(state: State, parent: int, name: bytes, time: int) -> None:
    ino = _lookup(state, parent, name)
    node = state.inodes[ino]
    if node.kind == KIND_DIR and state.dirs[ino]:
        raise Refused(errno.ENOTEMPTY, f"directory {ino} is not empty")
    del state.dirs[parent][name]
    node.links -= 1
    node.ctime = time
    _touch(state, parent, time)


def _rename(
    state: State, parent: int, name: bytes, new_parent: int, new_name: bytes,
    exchange: bool, time: int,
) -> None:  # fmt: skip
    _valid_name(new_name)
    src = _lookup(state, parent, name)
    target_entries = _live_directory(state, new_parent)
    src_node = state.inodes[src]
    if src_node.kind == KIND_DIR and _within(state, new_parent, src):
        raise Refused(errno.EINVAL, f"directory {new_parent} is within {src}")
    dst = target_entries.get(new_name)
    if exchange:
        if dst is None:
            raise Refused(errno.ENOENT, f"no entry {new_name!r} to exchange with")
        dst_node = state.inodes[dst]
        if dst_node.kind == KIND_DIR and _within(state, parent, dst):
            raise Refused(errno.EINVAL, f"directory {parent} is within {dst}")
        state.dirs[parent][name] = dst
        target_entries[new_name] = src
        src_node.ctime = dst_node.ctime = time
        if src_node.kind == KIND_DIR:
            src_node.parent = new_parent
        if dst_node.kind == KIND_DIR:
            dst_node.parent = parent
    else:
        if dst == src:
            return
        if dst is not None:
            dst_node = state.inodes[dst]
            src_dir, dst_dir = src_node.kind == KIND_DIR, dst_node.kind == KIND_DIR
            if src_dir and not dst_dir:
                raise Refused(errno.ENOTDIR, f"{new_name!r} is not a directory")
            if dst_dir and not src_dir:
                raise Refused(errno.EISDIR, f"{new_name!r} is a directory")
            if dst_dir and state.dirs[dst]:
                raise Refused(errno.ENOTEMPTY, f"directory {dst} is not empty")
            dst_node.links -= 1
            dst_node.ctime = time
        del state.dirs[parent][name]
        target_entries[new_name] = src
        src_node.ctime = time
        if src_node.kind == KIND_DIR:
            src_node.parent = new_parent
    _touch(state, parent, time)
    _touch(state, new_parent, time)


def _set_attr(
    state: State, ino: int, mode: int | None, uid: int | None, gid: int | None,
    size: int | None, atime: int | None, mtime: int | None, ctime: int | None,
) -> None:  # fmt: skip
    node = _inode(state, ino)
    if size is not None:
        if node.kind == KIND_DIR:
            raise Refused(errno.EISDIR, f"size of directory {ino}")
        if node.kind != KIND_FILE:
            raise Refused(errno.EINVAL, f"size of a {KIND_NAMES[node.kind]}")
        keep = -(-size // state.segment_size)
        for index in [i for i in node.segments if i >= keep]:
            _drop(state, node.segments.pop(index))
        node.size = size
    if mode is not None:
        node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
    for attr, value in (("uid", uid), ("gid", gid), ("atime", atime), ("mtime", mtime)):
        if value is not None:
            setattr(node, attr, value)
    if ctime is not None:
        node.ctime = ctime


def _set_xattr(state: State, ino: int, name: bytes, value: bytes) -> None:
    _inode(state, ino).xattrs[name] = value


def _remove_xattr(state: State, ino: int, name: bytes) -> None:
    node = _inode(state, ino)
    if name not in node.xattrs:
        raise Refused(errno.ENODATA, f"inode {ino} has no xattr {name!r}")
    del node.xattrs[name]


def _write_segments(
    state: State, ino: int, size: int, mtime: int, items: list[tuple[int, Segref]]
) -> None:
    node = _inode(state, ino)
    if node.kind != KIND_FILE:
        raise Refused(errno.EISDIR, f"inode {ino} is a {KIND_NAMES[node.kind]}")
    if len({index for index, _ in items}) != len(items):
        raise Refused(errno.EINVAL, "an index appears twice")
    for index, ref in items:
        if ref.plain_len > state.segment_size:
            raise Refused(errno.EINVAL, f"segment {index} of {ref.plain_len} bytes")
        held = node.segments.get(index)
        if held is not None and ref.generation <= held.generation:
            raise Refused(errno.EINVAL, f"segment {index}: generation does not increase")
    for index, ref in items:
        state.generation_high = max(state.generation_high, ref.generation)
        replaced = node.segments.get(index)
        if replaced is not None:
            _drop(state, replaced)
        node.segments[index] = ref
        _pack(state, ref.pack)[0] += ref.stored_len
    node.size = size
    node.mtime = node.ctime = mtime


def _write_segments_carrying(
    state: State, ino: int, size: int, mtime: int, items: list[tuple[int, Segref, Carry | None]]
) -> None:
    """WriteSegmentsCarried and WriteSegmentsPatched: WriteSegments' effect, and the frames
    the items carry are kept (an empty frame or None: durable in its pack, nothing carried),
    each with the frame its segment referred to just before: a patch's base (§9.2)."""
    node = state.inodes.get(ino)
    held = node.segments if node is not None else {}
    before = {index: held.get(index) for index, _, _ in items}
    _write_segments(state, ino, size, mtime, [(index, ref) for index, ref, _ in items])
    for index, ref, carry in items:
        if carry:
            state.carried.add(Carried(ino, index, ref, carry, before.get(index)))


def carried_frames(state: State) -> dict[Segref, Carried]:
    """The carried frames a segment still refers to exactly, by segref (CarriedLog.live):
    a read-only reader takes such a frame from its record where the pack lost it."""

    def segment_of(ino: int, index: int) -> Segref | None:
        node = state.inodes.get(ino)
        return node.segments.get(index) if node is not None else None

    return state.carried.live(segment_of)


def _forget(state: State, ino: int) -> None:
    node = _inode(state, ino)
    if node.links != 0 or ino == ROOT_INO:
        raise Refused(errno.EINVAL, f"inode {ino} still has names")
    if node.kind == KIND_DIR and state.dirs[ino]:
        raise Refused(errno.ENOTEMPTY, f"directory {ino} is not empty")
    del state.inodes[ino]
    state.dirs.pop(ino, None)
    for ref in node.segments.values():
        _drop(state, ref)


def _scheduler(state: State, cycle: int, time: int) -> None:
    state.scheduler_cycles = cycle


def _snapshot_checkpoint(state: State, number: int, covers_seq: int) -> None:
    pass


def _close(state: State, time: int) -> None:
    pass  # the session closed the vault cleanly after it; nothing in the state


def _reserve_generations(state: State, up_to: int) -> None:
    state.generation_reserved = max(state.generation_reserved, up_to)


def _decrypt_checkpoint(
    state: State, run: bytes, total: int, done: int, damaged: list[tuple[int, int]]
) -> None:
    pass  # an fsck run's progress; nothing in the state


def _move_segments(state: State, moves: list[tuple[int, int, Segref, Segref]]) -> None:
    for _, index, old, new in moves:
        if (old.stored_len, old.plain_len, old.generation) != (
            new.stored_len,
            new.plain_len,
            new.generation,
        ):
            raise Refused(errno.EINVAL, f"a move of segment {index} changes more than its place")
    for ino, index, old, new in moves:
        node = state.inodes.get(ino)
        if node is not None and node.segments.get(index) == old:
            node.segments[index] = new
            _drop(state, old)
            _pack(state, new.pack)[0] += new.stored_len
        else:
            _pack(state, new.pack)[1] += new.stored_len


def _pack_deleted(state: State, pack: int) -> None:
    if state.packs.get(pack, [0, 0])[0] != 0:
        raise Refused(errno.EINVAL, f"pack {pack} still has live bytes")
    state.packs.pop(pack, None)


_HANDLERS: dict[str, Any] = {
    "CreateInode": _create_inode,
    "Link": _link,
    "Unlink": _unlink,
    "Rename": _rename,
    "SetAttr": _set_attr,
    "SetXattr": _set_xattr,
    "RemoveXattr": _remove_xattr,
    "WriteSegments": _write_segments,
    "WriteSegmentsCarried": _write_segments_carrying,
    "WriteSegmentsPatched": _write_segments_carrying,
    "Forget": _forget,
    "Scheduler": _scheduler,
    "SnapshotCheckpoint": _snapshot_checkpoint,
    "MoveSegments": _move_segments,
    "PackDeleted": _pack_deleted,
    "Close": _close,
    "ReserveGenerations": _reserve_generations,
    "DecryptCheckpoint": _decrypt_checkpoint,
}
