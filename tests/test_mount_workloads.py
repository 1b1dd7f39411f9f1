"""Workloads on real mounts, all through the CLI (``fusefs mount`` / ``fusefs umount``).

* a randomized differential test: one long random sequence of file-system
  operations applied to the mount and to a plain directory side by side,
  results, errnos and the resulting trees compared after every step, with
  remounts in the middle;
* ordinary programs on the mount: tar, sqlite3, git, rsync, an mmap writer;
* a crash: the daemon SIGKILLed during a write workload, the dead mount
  cleaned up, and every fsync'd file read back byte-exact;
* what an attacker sees: no plaintext name, content fragment or size in the
  raw bytes and names of the vault directory.

Environment: ``FUSEFS_LONG_TESTS=1`` makes the differential test long (20,000
operations, several remounts); ``FUSEFS_SEED=N`` replays one sequence;
``FUSEFS_OPS=N`` sets its length.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import mmap
import os
import random
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mounting import REPO, Vault, daemon_pid, is_mounted, requires_fuse

from fusefs import control

pytestmark = requires_fuse

LONG = os.environ.get("FUSEFS_LONG_TESTS") == "1"
SEGMENT = 64 * 1024
EXIT_MOUNT = 7


def _umount_checked(v: Vault) -> None:
    """Unmount through the CLI and check nothing is left: no mount, no daemon."""
    pid = daemon_pid(v.mnt)
    v.umount()
    assert not is_mounted(v.mnt), "still mounted after fusefs umount"
    if pid is not None:
        assert control.wait_for_exit(pid, 10.0), f"daemon {pid} still running after fusefs umount"


def _remount(v: Vault) -> None:
    _umount_checked(v)
    v.mount()


def _run(*args: str | os.PathLike[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kw)
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} failed ({done.returncode}):\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def _log_tail(v: Vault, n: int = 4000) -> str:
    try:
        return v.log.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


# =====================================================================================
# 1. Randomized differential test: the mount against a plain directory
# =====================================================================================

NAMES = ["a", "b", "c", "d", "sub", "x.txt", "ünï", "e e"]
TOO_LONG = "n" * 256  # NAME_MAX is 255
XATTR_NAMES = [b"user.a", b"user.b", b"user." + b"k" * 40]
MAX_DEPTH = 3
MAX_BYTES = 1_400_000  # writes and truncations stay below this offset
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(src: str, dst: str, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


class Side:
    """One of the two trees: the mount, or the plain reference directory."""

    def __init__(self, name: str, root: Path, *, direct_reads: bool) -> None:
        self.name = name
        self.root = str(root)
        self.direct_reads = direct_reads
        self.fds: dict[int, int] = {}

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def close_all(self) -> None:
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()


# --- the operations: each takes a side and plain arguments, returns a comparable value --


def op_create(s: Side, path: str, flags: int, mode: int, data: bytes) -> int:
    fd = os.open(s.path(path), flags, mode)
    try:
        return os.write(fd, data) if data else 0
    finally:
        os.close(fd)


def op_write(s: Side, path: str, offset: int, data: bytes, append: bool) -> int:
    fd = os.open(s.path(path), os.O_WRONLY | (os.O_APPEND if append else 0))
    try:
        return os.write(fd, data) if append else os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def op_read(s: Side, path: str, offset: int, size: int) -> bytes:
    fd = os.open(s.path(path), os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def op_truncate(s: Side, path: str, size: int) -> None:
    os.truncate(s.path(path), size)


def op_rename(s: Side, src: str, dst: str, flags: int) -> None:
    if flags:
        renameat2(s.path(src), s.path(dst), flags)
    else:
        os.rename(s.path(src), s.path(dst))


def op_link(s: Side, src: str, dst: str) -> None:
    os.link(s.path(src), s.path(dst), follow_symlinks=False)


def op_unlink(s: Side, path: str) -> None:
    os.unlink(s.path(path))


def op_mkdir(s: Side, path: str, mode: int) -> None:
    os.mkdir(s.path(path), mode)


def op_rmdir(s: Side, path: str) -> None:
    os.rmdir(s.path(path))


def op_symlink(s: Side, target: str, path: str) -> None:
    os.symlink(target, s.path(path))


def op_setxattr(s: Side, path: str, name: bytes, value: bytes, flags: int, follow: bool) -> None:
    os.setxattr(s.path(path), name, value, flags, follow_symlinks=follow)


def op_removexattr(s: Side, path: str, name: bytes, follow: bool) -> None:
    os.removexattr(s.path(path), name, follow_symlinks=follow)


def op_getxattr(s: Side, path: str, name: bytes) -> bytes:
    return os.getxattr(s.path(path), name)


def op_chmod(s: Side, path: str, mode: int) -> None:
    os.chmod(s.path(path), mode)


def op_chown(s: Side, path: str, gid: int, follow: bool) -> None:
    os.chown(s.path(path), -1, gid, follow_symlinks=follow)


def op_fsync(s: Side, path: str, offset: int, data: bytes, datasync: bool) -> int:
    fd = os.open(s.path(path), os.O_RDWR)
    try:
        n = os.pwrite(fd, data, offset) if data else 0
        (os.fdatasync if datasync else os.fsync)(fd)
        return n
    finally:
        os.close(fd)


def op_fsync_dir(s: Side, path: str) -> None:
    fd = os.open(s.path(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def op_pool_open(s: Side, slot: int, path: str, flags: int) -> None:
    if slot in s.fds:
        os.close(s.fds.pop(slot))
    s.fds[slot] = os.open(s.path(path), flags, 0o644)


def op_pool_write(s: Side, slot: int, offset: int, data: bytes) -> int:
    return os.pwrite(s.fds[slot], data, offset)


def op_pool_read(s: Side, slot: int, offset: int, size: int) -> bytes:
    return os.pread(s.fds[slot], size, offset)


def op_pool_truncate(s: Side, slot: int, size: int) -> None:
    os.ftruncate(s.fds[slot], size)


def op_pool_close(s: Side, slot: int) -> None:
    os.close(s.fds.pop(slot))


def apply(side: Side, fn: Callable[..., Any], args: dict[str, Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn(side, **args))
    except OSError as e:
        return ("error", errno.errorcode.get(e.errno or 0, e.errno))


# --- what is compared ------------------------------------------------------------------


def _read_all(side: Side, path: str, direct: bool) -> bytes:
    flags = os.O_RDONLY
    if direct:
        # Past the page cache: what the daemon and the engine hold.
        flags |= os.O_DIRECT
    fd = os.open(path, flags)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def describe(side: Side, rel: str, *, direct: bool = False) -> dict[str, Any]:
    """Everything compared about one path (not times, inode numbers or block counts)."""
    p = side.path(rel)
    try:
        st = os.lstat(p)
    except OSError as e:
        return {"lstat": errno.errorcode.get(e.errno or 0)}
    info: dict[str, Any] = {
        "mode": oct(st.st_mode),
        "nlink": st.st_nlink,
        "owner": (st.st_uid, st.st_gid),
    }
    if stat.S_ISLNK(st.st_mode):
        info["size"] = st.st_size
        info["target"] = os.readlink(p)
        return info
    if stat.S_ISREG(st.st_mode):
        info["size"] = st.st_size
        info["data"] = _read_all(side, p, direct and side.direct_reads)
    elif stat.S_ISDIR(st.st_mode):
        info["entries"] = sorted(os.listdir(p))
    info["xattrs"] = {n: os.getxattr(p, n) for n in sorted(os.listxattr(p))}
    return info


def _diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    lines = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if isinstance(x, bytes) and isinstance(y, bytes):
            first = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), None)
            lines.append(
                f"  {key}: mount {len(x)} bytes, reference {len(y)} bytes, "
                f"first difference at {first if first is not None else min(len(x), len(y))}"
            )
        else:
            lines.append(f"  {key}: mount {x!r} != reference {y!r}")
    return "\n".join(lines)


def scan(root: str) -> dict[str, str]:
    """rel path -> "f" | "d" | "l", the whole tree below ``root`` (not root itself)."""
    out: dict[str, str] = {}

    def walk(rel: str) -> None:
        base = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(base)):
            r = f"{rel}/{name}" if rel else name
            m = os.lstat(os.path.join(base, name)).st_mode
            kind = "d" if stat.S_ISDIR(m) else "l" if stat.S_ISLNK(m) else "f"
            out[r] = kind
            if kind == "d":
                walk(r)

    walk("")
    return out


# --- the random sequence ---------------------------------------------------------------


@dataclass
class Op:
    fn: Callable[..., Any]
    args: dict[str, Any]
    touched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        shown = {k: _brief(v) for k, v in self.args.items()}
        if "flags" in shown and self.fn in (op_create, op_pool_open):
            shown["flags"] = hex(shown["flags"])
        if "mode" in shown:
            shown["mode"] = oct(shown["mode"])
        return f"{self.fn.__name__[3:]}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


class Generator:
    """Draws operations from the reference tree's current state."""

    WEIGHTS = {
        "create": 10,
        "write": 18,
        "read": 5,
        "truncate": 7,
        "rename": 10,
        "link": 4,
        "unlink": 6,
        "mkdir": 5,
        "rmdir": 4,
        "symlink": 2,
        "setxattr": 5,
        "removexattr": 3,
        "getxattr": 2,
        "chmod": 4,
        "chown": 2,
        "fsync": 4,
        "fsync_dir": 1,
        "pool_open": 3,
        "pool_write": 5,
        "pool_read": 2,
        "pool_truncate": 1,
        "pool_close": 2,
    }
    SLOTS = 3

    def __init__(self, rng: random.Random, ref: Side) -> None:
        self.rng = rng
        self.ref = ref
        self.tree: dict[str, str] = {}

    # paths
    def existing(self, kinds: str) -> str | None:
        cands = [p for p, k in self.tree.items() if k in kinds]
        return self.rng.choice(cands) if cands else None

    def new_path(self) -> str:
        r = self.rng
        dirs = [""] + [p for p, k in self.tree.items() if k == "d" and p.count("/") < MAX_DEPTH - 1]
        d = r.choice(dirs)
        name = TOO_LONG if r.random() < 0.02 else r.choice(NAMES)
        return f"{d}/{name}" if d else name

    def weird(self) -> str:
        r = self.rng
        f = self.existing("f")
        choices = ["missing/" + r.choice(NAMES), TOO_LONG]
        if f is not None:
            choices.append(f + "/" + r.choice(NAMES))  # through a file: ENOTDIR
        return r.choice(choices)

    def any_path(self) -> str:
        x = self.rng.random()
        if x < 0.45:
            p = self.existing("fl")
        elif x < 0.65:
            p = self.existing("d")
        elif x < 0.93:
            p = self.new_path()
        else:
            p = self.weird()
        return p if p is not None else self.new_path()

    def file_path(self) -> str:
        if self.rng.random() < 0.88:
            p = self.existing("f")
            if p is not None:
                return p
        return self.any_path()

    def size_of(self, rel: str) -> int:
        try:
            return os.stat(self.ref.path(rel)).st_size
        except OSError:
            return 0

    # data
    def data(self, n: int) -> bytes:
        x = self.rng.random()
        if x < 0.1:
            return bytes(n)
        if x < 0.2:
            unit = self.rng.randbytes(self.rng.randrange(1, 64))
            return (unit * (n // len(unit) + 1))[:n]
        return self.rng.randbytes(n)

    def length(self) -> int:
        x = self.rng.random()
        if x < 0.5:
            return self.rng.randrange(1, 5000)
        if x < 0.8:
            return self.rng.randrange(4096, SEGMENT + 4096)
        return self.rng.randrange(2 * SEGMENT, 4 * SEGMENT + 1000)  # several segments

    def offset(self, size: int, length: int) -> int:
        r = self.rng
        x = r.random()
        if x < 0.25:
            off = r.randrange(0, size + 1)
        elif x < 0.4:
            off = size  # append
        elif x < 0.6:
            off = size + r.randrange(1, 3 * SEGMENT)  # past EOF: a hole
        elif x < 0.8:
            off = r.randrange(0, 8) * SEGMENT + r.choice([0, 1, -1, -100, 4096])  # boundaries
        else:
            off = r.randrange(0, MAX_BYTES)
        return max(0, min(off, MAX_BYTES - length))

    def new_size(self, size: int) -> int:
        r = self.rng
        choices = [
            0,
            size // 2,
            max(size - 1, 0),
            size + 1,
            size + r.randrange(1, 3 * SEGMENT),
            r.randrange(0, 8) * SEGMENT,
            r.randrange(0, MAX_BYTES),
        ]
        return min(r.choice(choices), MAX_BYTES)

    def slot(self, open_only: bool) -> int | None:
        opened = sorted(self.ref.fds)
        if open_only:
            return self.rng.choice(opened) if opened else None
        return self.rng.randrange(self.SLOTS)

    def next(self) -> Op:
        r = self.rng
        self.tree = scan(self.ref.root)
        weights = dict(self.WEIGHTS)
        if len(self.tree) > 45:  # keep the tree small: remove more than create
            for k in ("create", "mkdir", "link", "symlink"):
                weights[k] = 1
            weights["unlink"] = 14
            weights["rmdir"] = 8
        while True:
            kind = r.choices(list(weights), list(weights.values()))[0]
            op = getattr(self, "gen_" + kind)()
            if op is not None:
                return op

    # generators, one per operation
    def gen_create(self) -> Op:
        r = self.rng
        p = self.new_path() if r.random() < 0.8 else self.any_path()
        flags = os.O_CREAT | os.O_WRONLY | r.choice([0, os.O_EXCL, os.O_TRUNC])
        data = self.data(self.length()) if r.random() < 0.7 else b""
        return Op(
            op_create,
            dict(path=p, flags=flags, mode=r.choice([0o644, 0o600, 0o755]), data=data),
            [p],
        )

    def gen_write(self) -> Op:
        p = self.file_path()
        n = self.length()
        append = self.rng.random() < 0.1
        off = self.offset(self.size_of(p), n)
        return Op(op_write, dict(path=p, offset=off, data=self.data(n), append=append), [p])

    def gen_read(self) -> Op:
        p = self.file_path()
        size = self.size_of(p)
        off = self.rng.randrange(0, size + 10)
        return Op(op_read, dict(path=p, offset=off, size=self.length()), [p])

    def gen_truncate(self) -> Op:
        p = self.file_path()
        return Op(op_truncate, dict(path=p, size=self.new_size(self.size_of(p))), [p])

    def gen_rename(self) -> Op:
        r = self.rng
        x = r.random()
        src = (
            self.existing("fl") if x < 0.5 else self.existing("d") if x < 0.85 else self.any_path()
        ) or self.any_path()
        kind = self.tree.get(src)
        y = r.random()
        if y < 0.4:
            dst = self.new_path()
        elif y < 0.7:
            dst = self.existing(kind or "f") or self.new_path()
        elif y < 0.85:
            dst = self.existing("d" if kind != "d" else "fl") or self.new_path()
        elif y < 0.95 and kind == "d":
            dst = f"{src}/{r.choice(NAMES)}"  # into itself: EINVAL
        else:
            dst = self.weird()
        flags = r.choices([0, RENAME_NOREPLACE, RENAME_EXCHANGE], [8, 1, 1])[0]
        return Op(op_rename, dict(src=src, dst=dst, flags=flags), [src, dst])

    def gen_link(self) -> Op:
        r = self.rng
        x = r.random()
        src = (self.existing("f") if x < 0.8 else self.existing("dl")) or self.any_path()
        dst = self.new_path() if r.random() < 0.75 else self.any_path()
        return Op(op_link, dict(src=src, dst=dst), [src, dst])

    def gen_unlink(self) -> Op:
        p = (self.existing("fl") if self.rng.random() < 0.8 else None) or self.any_path()
        return Op(op_unlink, dict(path=p), [p])

    def gen_mkdir(self) -> Op:
        r = self.rng
        p = self.new_path() if r.random() < 0.85 else self.any_path()
        return Op(op_mkdir, dict(path=p, mode=r.choice([0o755, 0o700, 0o777])), [p])

    def gen_rmdir(self) -> Op:
        p = (self.existing("d") if self.rng.random() < 0.8 else None) or self.any_path()
        return Op(op_rmdir, dict(path=p), [p])

    def gen_symlink(self) -> Op:
        p = self.new_path()
        return Op(op_symlink, dict(target=self.rng.choice(NAMES), path=p), [p])

    def gen_setxattr(self) -> Op:
        r = self.rng
        p = self.any_path()
        flags = r.choices([0, os.XATTR_CREATE, os.XATTR_REPLACE], [6, 1, 1])[0]
        value = r.randbytes(r.choice([0, 1, 17, 200]))
        return Op(
            op_setxattr,
            dict(
                path=p,
                name=r.choice(XATTR_NAMES),
                value=value,
                flags=flags,
                follow=r.random() < 0.8,
            ),
            [p],
        )

    def with_xattrs(self) -> str:
        cands = []
        for rel, kind in self.tree.items():
            if kind != "l" and os.listxattr(self.ref.path(rel)):
                cands.append(rel)
        return self.rng.choice(cands) if cands and self.rng.random() < 0.7 else self.any_path()

    def xattr_name(self, rel: str) -> bytes:
        try:
            present = [n.encode() for n in os.listxattr(self.ref.path(rel))]
        except OSError:
            present = []
        if present and self.rng.random() < 0.7:
            return self.rng.choice(sorted(present))
        return self.rng.choice(XATTR_NAMES)

    def gen_removexattr(self) -> Op:
        p = self.with_xattrs()
        name = self.xattr_name(p)
        return Op(op_removexattr, dict(path=p, name=name, follow=self.rng.random() < 0.8), [p])

    def gen_getxattr(self) -> Op:
        p = self.with_xattrs()
        return Op(op_getxattr, dict(path=p, name=self.xattr_name(p)), [p])

    def gen_chmod(self) -> Op:
        r = self.rng
        mode = r.randrange(0o1000) if r.random() < 0.7 else r.choice([0o1777, 0o2755, 0o4755])
        p = self.any_path()
        return Op(op_chmod, dict(path=p, mode=mode), [p])

    def gen_chown(self) -> Op:
        p = self.any_path()
        gid = self.rng.choice([0, 1234])
        return Op(op_chown, dict(path=p, gid=gid, follow=self.rng.random() < 0.8), [p])

    def gen_fsync(self) -> Op:
        r = self.rng
        p = self.file_path()
        data = self.data(self.length()) if r.random() < 0.7 else b""
        off = self.offset(self.size_of(p), len(data))
        return Op(op_fsync, dict(path=p, offset=off, data=data, datasync=r.random() < 0.3), [p])

    def gen_fsync_dir(self) -> Op:
        p = self.existing("d") or ""
        return Op(op_fsync_dir, dict(path=p), [p])

    def gen_pool_open(self) -> Op:
        r = self.rng
        p = self.file_path() if r.random() < 0.8 else self.new_path()
        flags = os.O_RDWR | r.choice([0, 0, os.O_CREAT, os.O_TRUNC, os.O_APPEND])
        slot = self.slot(open_only=False)
        return Op(op_pool_open, dict(slot=slot, path=p, flags=flags), [p])

    def gen_pool_write(self) -> Op | None:
        slot = self.slot(open_only=True)
        if slot is None:
            return None
        n = self.length()
        size = os.fstat(self.ref.fds[slot]).st_size
        return Op(op_pool_write, dict(slot=slot, offset=self.offset(size, n), data=self.data(n)))

    def gen_pool_read(self) -> Op | None:
        slot = self.slot(open_only=True)
        if slot is None:
            return None
        size = os.fstat(self.ref.fds[slot]).st_size
        off = self.rng.randrange(0, size + 10)
        return Op(op_pool_read, dict(slot=slot, offset=off, size=self.length()))

    def gen_pool_truncate(self) -> Op | None:
        slot = self.slot(open_only=True)
        if slot is None:
            return None
        size = os.fstat(self.ref.fds[slot]).st_size
        return Op(op_pool_truncate, dict(slot=slot, size=self.new_size(size)))

    def gen_pool_close(self) -> Op | None:
        slot = self.slot(open_only=True)
        if slot is None:
            return None
        return Op(op_pool_close, dict(slot=slot))


class Differential:
    def __init__(self, v: Vault, ref_root: Path, seed: int) -> None:
        self.v = v
        (v.mnt / "w").mkdir()
        ref_root.mkdir(parents=True)
        (ref_root / "w").mkdir()
        os.chmod(v.mnt / "w", 0o755)
        os.chmod(ref_root / "w", 0o755)
        self.mount = Side("mount", v.mnt / "w", direct_reads=True)
        self.ref = Side("reference", ref_root / "w", direct_reads=False)
        self.rng = random.Random(seed)
        self.gen = Generator(self.rng, self.ref)
        self.history: list[str] = []

    def touched(self, op: Op) -> list[str]:
        """The op's paths, their parents, and symlink targets (followed by most calls)."""
        out: list[str] = []
        for p in op.touched:
            if len(p) > 255 and "/" not in p:
                continue
            for q in (p, os.path.dirname(p)):
                if q not in out:
                    out.append(q)
            ref = self.ref.path(p)
            if os.path.islink(ref):
                t = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(ref)))
                if t not in out and not t.startswith(".."):
                    out.append(t)
        return out

    def check_paths(self, rels: list[str], direct: bool = False) -> None:
        for rel in rels:
            a = describe(self.mount, rel, direct=direct)
            b = describe(self.ref, rel)
            if a != b:
                raise AssertionError(f"{rel or '.'} differs:\n{_diff(a, b)}")
        for slot in sorted(set(self.mount.fds) | set(self.ref.fds)):
            if (slot in self.mount.fds) != (slot in self.ref.fds):
                raise AssertionError(f"open slot {slot}: open on one side only")
            a_st, b_st = os.fstat(self.mount.fds[slot]), os.fstat(self.ref.fds[slot])
            a = (oct(a_st.st_mode), a_st.st_size, a_st.st_nlink)
            b = (oct(b_st.st_mode), b_st.st_size, b_st.st_nlink)
            if a != b:
                raise AssertionError(f"fstat of open slot {slot}: mount {a} != reference {b}")

    def check_tree(self, direct: bool = True) -> None:
        a, b = scan(self.mount.root), scan(self.ref.root)
        if a != b:
            only_a = sorted(set(a) - set(b))
            only_b = sorted(set(b) - set(a))
            kinds = sorted(p for p in set(a) & set(b) if a[p] != b[p])
            raise AssertionError(
                f"trees differ: only on the mount {only_a}, only in the reference {only_b}, "
                f"different kinds {kinds}"
            )
        self.check_paths(["", *b], direct=direct)

    def remount(self) -> None:
        # Open files would keep the mount busy: close them on both sides.
        self.mount.close_all()
        self.ref.close_all()
        self.history.append("-- remount --")
        _remount(self.v)
        self.check_tree()

    def step(self) -> None:
        op = self.gen.next()
        self.history.append(str(op))
        got = apply(self.mount, op.fn, op.args)
        want = apply(self.ref, op.fn, op.args)
        if got != want:
            raise AssertionError(f"result differs: mount {_short(got)} != reference {_short(want)}")
        self.check_paths(self.touched(op))

    def run(self, ops: int, remounts: int, full_every: int) -> None:
        remount_at = {ops * (i + 1) // (remounts + 1) for i in range(remounts)}
        for i in range(ops):
            try:
                self.step()
                if i in remount_at:
                    self.remount()
                elif (i + 1) % full_every == 0:
                    self.check_tree(direct=False)
            except AssertionError as e:
                recent = "\n    ".join(self.history[-25:])
                raise AssertionError(
                    f"step {i} of {ops}: {e}\n  recent operations (last is the failing one):\n"
                    f"    {recent}\n  mount log tail:\n{_log_tail(self.v)}"
                ) from None
        self.check_tree()
        self.remount()


def _brief(v: Any) -> Any:
    if isinstance(v, bytes) and len(v) > 48:
        return f"<{len(v)} bytes>"
    if isinstance(v, str):
        return v.replace(TOO_LONG, "<256-byte name>")
    return v


def _short(result: tuple[str, Any]) -> str:
    kind, value = result
    if isinstance(value, bytes) and len(value) > 32:
        return f"({kind}, <{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:12]}>)"
    return repr(result)


def test_differential_against_plain_directory(vault_factory, tmp_path: Path) -> None:
    """Random operations on the mount and on a plain directory give the same results."""
    seed = int(os.environ.get("FUSEFS_SEED") or random.SystemRandom().randrange(2**32))
    if LONG:
        ops, remounts, full_every = 20_000, 8, 200
    else:
        ops, remounts, full_every = 400, 3, 25
    ops = int(os.environ.get("FUSEFS_OPS") or ops)
    v: Vault = vault_factory()
    v.mount()
    d = Differential(v, tmp_path / "reference", seed)
    try:
        d.run(ops, remounts, full_every)
    except AssertionError as e:
        pytest.fail(f"seed {seed} (replay: FUSEFS_SEED={seed} FUSEFS_OPS={ops}): {e}")
    finally:
        d.mount.close_all()
        d.ref.close_all()
    _umount_checked(v)


# =====================================================================================
# 2. Ordinary programs on the mount
# =====================================================================================


def _tree_meta(root: Path, *, time_unit: int = 1) -> dict[str, tuple[Any, ...]]:
    """rel path -> (mode, size, nlink, symlink target, xattrs, mtime // time_unit) below root."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            size = st.st_size if not stat.S_ISDIR(st.st_mode) else None
            xattrs = (
                {}
                if link is not None
                else {
                    n: os.getxattr(p, n) for n in sorted(os.listxattr(p)) if n.startswith("user.")
                }
            )
            mtime = st.st_mtime_ns // time_unit
            out[rel] = (oct(st.st_mode), size, st.st_nlink, link, xattrs, mtime)
    return out


def _diff_r(a: Path, b: Path) -> None:
    _run("diff", "-r", "--no-dereference", "-x", "__pycache__", "-x", "target", a, b)


def _stdlib_subset() -> tuple[Path, list[str]]:
    lib = Path(os.__file__).parent
    dirs = [
        d
        for d in ("json", "email", "asyncio", "concurrent", "importlib", "http", "xml")
        if (lib / d).is_dir()
    ]
    return lib, dirs


def test_untar_source_trees(mounted: Vault, tmp_path: Path) -> None:
    """tar -x of Python's stdlib (part of it) and this repository's sources; diff -r."""
    lib, dirs = _stdlib_subset()
    archive = tmp_path / "src.tar"
    _run("tar", "-cf", archive, "--exclude=__pycache__", "-C", lib, *dirs)
    _run(
        "tar",
        "-rf",
        archive,
        "--exclude=__pycache__",
        "--exclude=target",
        "-C",
        REPO,
        "fusefs",
        "rustlib/core/src",
        "tests",
    )
    dest = mounted.mnt / "untar"
    dest.mkdir()
    _run("tar", "-xpf", archive, "-C", dest)
    for d in dirs:
        _diff_r(lib / d, dest / d)
    for d in ("fusefs", "rustlib/core/src", "tests"):
        _diff_r(REPO / d, dest / d)
    # tar --compare checks modes, mtimes, sizes and contents against the archive.
    _run("tar", "--compare", "-f", archive, "-C", dest)
    _remount(mounted)
    for d in dirs:
        _diff_r(lib / d, dest / d)
    _run("tar", "--compare", "-f", archive, "-C", dest)
    # And back out: a tar of the mounted tree, unpacked outside, is the same tree.
    back = tmp_path / "back"
    back.mkdir()
    _run("tar", "-cf", tmp_path / "back.tar", "-C", dest, ".")
    _run("tar", "-xpf", tmp_path / "back.tar", "-C", back)
    _diff_r(dest, back)
    # (tar's default format keeps whole seconds of mtime)
    assert _tree_meta(back, time_unit=10**9) == _tree_meta(dest, time_unit=10**9)


def _sqlite_fill(db: Path, *, wal: bool, rng: random.Random) -> tuple[int, int, int]:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        if wal:
            assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, v BLOB)")
        con.execute("CREATE INDEX t_n ON t(n)")
        for txn in range(8):
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO t (n, v) VALUES (?, ?)",
                [
                    (rng.randrange(10**6), rng.randbytes(rng.randrange(10, 3000)))
                    for _ in range(300)
                ],
            )
            con.execute("UPDATE t SET n = n + 1 WHERE id % 7 = ?", (txn,))
            con.execute("DELETE FROM t WHERE id % 11 = ?", (txn,))
            con.execute("COMMIT")
        con.execute("BEGIN")
        con.execute("DELETE FROM t")
        con.execute("ROLLBACK")  # undone: the rows stay
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if wal:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return _sqlite_sums(con)
    finally:
        con.close()


def _sqlite_sums(con: sqlite3.Connection) -> tuple[int, int, int]:
    row = con.execute("SELECT count(*), sum(n), sum(length(v)) FROM t").fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def _sqlite_check(db: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return _sqlite_sums(con)
    finally:
        con.close()


def test_sqlite(mounted: Vault) -> None:
    """sqlite3 databases (rollback journal and WAL) stay intact, also after a remount."""
    rng = random.Random(7)
    plain, wal = mounted.mnt / "plain.db", mounted.mnt / "wal.db"
    sums = {
        plain: _sqlite_fill(plain, wal=False, rng=rng),
        wal: _sqlite_fill(wal, wal=True, rng=rng),
    }
    assert sums[plain][0] > 1000
    cli = shutil.which("sqlite3")
    if cli is not None:
        script = (
            "BEGIN; INSERT INTO t (n, v) VALUES (42, randomblob(5000)); COMMIT;"
            "PRAGMA integrity_check;"
        )
        for db in (plain, wal):
            out = _run(cli, db, script).stdout.strip()
            assert out == "ok", out
            sums[db] = _sqlite_check(db)
    _remount(mounted)
    for db, want in sums.items():
        assert _sqlite_check(db) == want
        if cli is not None:
            assert _run(cli, db, "PRAGMA integrity_check;").stdout.strip() == "ok"
    if cli is None:
        pytest.skip("sqlite3 CLI missing (Debian package sqlite3); the Python module part passed")


def _git_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    return env


def test_git(mounted: Vault, tmp_path: Path) -> None:
    """git init/add/commit/gc on the mount; git fsck is clean, also after a remount."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git missing (Debian package git)")
    env = _git_env(tmp_path)
    repo = mounted.mnt / "repo"
    shutil.copytree(
        REPO / "fusefs", repo / "fusefs", ignore=shutil.ignore_patterns("__pycache__", "*.so")
    )
    shutil.copytree(REPO / "tests", repo / "tests", ignore=shutil.ignore_patterns("__pycache__"))

    def g(*args: str) -> str:
        return _run(git, "-C", repo, *args, env=env).stdout

    g("init", "-q")
    g("add", "-A")
    g("commit", "-q", "-m", "one")
    (repo / "fusefs" / "cli.py").write_text("# changed\n" * 100)
    (repo / "new.bin").write_bytes(random.Random(1).randbytes(300_000))
    g("rm", "-q", "tests/conftest.py")
    g("add", "-A")
    g("commit", "-q", "-m", "two")
    g("gc", "-q")
    g("fsck", "--full", "--strict")
    assert g("status", "--porcelain") == ""
    head = g("rev-parse", "HEAD")
    _remount(mounted)
    g("fsck", "--full", "--strict")
    assert g("status", "--porcelain") == ""
    assert g("rev-parse", "HEAD") == head
    assert g("log", "--format=%s").split() == ["two", "one"]


def _rich_tree(root: Path) -> None:
    """Files of many sizes, modes, a hard link, symlinks, xattrs, an empty dir, old mtimes."""
    rng = random.Random(3)
    (root / "docs" / "deep" / "er").mkdir(parents=True)
    (root / "empty").mkdir()
    sizes = [0, 1, 4095, 4096, SEGMENT - 1, SEGMENT, SEGMENT + 1, 200_000, 3 * 2**20 + 17]
    for i, size in enumerate(sizes):
        (root / "docs" / f"f{i}.bin").write_bytes(rng.randbytes(size))
    (root / "docs" / "deep" / "er" / "text.txt").write_text("hello\n" * 1000)
    sparse = root / "sparse.bin"
    with open(sparse, "wb") as f:
        f.seek(5 * SEGMENT + 3)
        f.write(b"end")
    os.link(root / "docs" / "f3.bin", root / "hard.bin")
    os.symlink("docs/f2.bin", root / "link")
    os.symlink("nowhere", root / "dangling")
    os.chmod(root / "docs" / "f1.bin", 0o600)
    os.chmod(root / "docs" / "f4.bin", 0o755)
    os.chmod(root / "docs" / "deep", 0o700)
    os.setxattr(root / "docs" / "f5.bin", b"user.tag", b"value-1")
    os.setxattr(root / "docs", b"user.dirtag", b"")
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(
            p,
            ns=(1_600_000_000_123_456_789 + i, 1_500_000_000_987_654_321 + i),
            follow_symlinks=False,
        )


def test_rsync_in_and_out(mounted: Vault, tmp_path: Path) -> None:
    """rsync -aHX into the mount and back out: same contents, modes, links, xattrs, mtimes."""
    rsync = shutil.which("rsync")
    if rsync is None:
        pytest.skip("rsync missing (Debian package rsync)")
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    _rich_tree(src)
    dst = mounted.mnt / "dst"
    _run(rsync, "-aHX", f"{src}/", f"{dst}/")
    _diff_r(src, dst)
    assert _tree_meta(dst) == _tree_meta(src)
    # A second run finds nothing to do (sizes, mtimes, modes all kept).
    assert _run(rsync, "-aHXi", f"{src}/", f"{dst}/").stdout == ""
    _remount(mounted)
    assert _tree_meta(dst) == _tree_meta(src)
    _run(rsync, "-aHX", f"{dst}/", f"{back}/")
    _diff_r(src, back)
    _diff_r(dst, back)
    assert _tree_meta(back) == _tree_meta(src)


def test_mmap_writer(mounted: Vault) -> None:
    """MAP_SHARED writes reach read() and survive a remount."""
    path = mounted.mnt / "mapped.bin"
    size = 3 * SEGMENT + 1234
    rng = random.Random(5)
    want = bytearray(rng.randbytes(size))
    path.write_bytes(want)
    fd = os.open(path, os.O_RDWR)
    try:
        with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
            for off in (0, SEGMENT - 10, 2 * SEGMENT + 5, size - 100, 4096 * 7 + 1):
                chunk = rng.randbytes(100)
                m[off : off + 100] = chunk
                want[off : off + 100] = chunk
            m.flush()
    finally:
        os.close(fd)
    assert path.read_bytes() == want
    # A mapping that grows the file: ftruncate up, write the new tail through the map.
    grown = size + 2 * SEGMENT
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, grown)
        want.extend(bytes(grown - size))
        with mmap.mmap(fd, grown) as m:
            tail = rng.randbytes(grown - size - 7)
            m[size + 7 :] = tail
            want[size + 7 :] = tail
            m.flush()
    finally:
        os.close(fd)
    assert path.read_bytes() == want
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)  # what the daemon holds, past the cache
    try:
        assert os.read(fd, grown + 10) == want
    finally:
        os.close(fd)
    _remount(mounted)
    assert path.read_bytes() == want
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
        assert m[:] == want


# =====================================================================================
# 3. Crash: the daemon killed mid-write
# =====================================================================================

CRASH_WRITER = r"""
import hashlib, os, random, sys, time
d, journal_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
with open(journal_path, "w", buffering=1) as journal:
    i = 0
    try:
        while True:
            name = "f%05d" % i
            size = rng.choice([rng.randrange(1, 5000), rng.randrange(5000, 300000)])
            data = rng.randbytes(size)
            sync = i % 2 == 0
            fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            for off in range(0, size, 50000):
                os.write(fd, data[off:off + 50000])
            if sync:
                os.fsync(fd)
                journal.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
            os.close(fd)
            i += 1
    except OSError as e:
        now = time.monotonic()
        journal.write("# stopped at %.6f by errno %s after %d files\n" % (now, e.errno, i))
"""


def test_crash_kill_daemon_mid_write(vault_factory, tmp_path: Path) -> None:
    """SIGKILL the daemon mid-write: the dead mount is refused, cleaned; fsync'd data kept."""
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "crash").mkdir()
    pid = int(os.getxattr(v.mnt, b"fusefs.pid"))
    journal = tmp_path / "journal.txt"
    script = tmp_path / "writer.py"
    script.write_text(CRASH_WRITER)
    writer = subprocess.Popen(
        [sys.executable, str(script), str(v.mnt / "crash"), str(journal), "11"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and writer.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= 40:
                break
            time.sleep(0.02)
        assert writer.poll() is None, f"the writer ended early: {writer.stderr.read()!r}"
        time.sleep(0.013)  # somewhere in the middle of a file
        killed_at = time.monotonic()  # CLOCK_MONOTONIC: the same clock in the writer
        os.kill(pid, signal.SIGKILL)
        assert control.wait_for_exit(pid, 10.0), "the daemon survived SIGKILL"
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    lines = journal.read_text().splitlines()
    # The writer ran until the kill cut its connection (ECONNABORTED, ENOTCONN, or
    # EIO for writeback the dead connection failed), not into an earlier error.
    assert lines[-1].startswith("# stopped at "), lines[-3:]
    assert float(lines[-1].split()[3]) >= killed_at, (
        f"the writer failed before the kill: {lines[-1]}"
    )
    assert " ERROR " not in _log_tail(v, 10**6), _log_tail(v)
    synced = dict(line.split() for line in lines if not line.startswith("#"))
    assert len(synced) >= 40

    # The dead mount: mounting over it is refused with one line, exit 7.
    assert is_mounted(v.mnt)
    done = v.mount(check=False)
    assert done.returncode == EXIT_MOUNT, (done.returncode, done.stderr)
    message = done.stderr.strip()
    assert message and "\n" not in message, done.stderr
    assert "dead mount" in message and "fusefs umount" in message, message
    # fusefs umount detaches it.
    done = v.umount(check=False)
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "dead mount" in done.stderr and "detached" in done.stderr, done.stderr
    assert not is_mounted(v.mnt)

    v.mount()
    crash = v.mnt / "crash"
    for name, digest in synced.items():
        data = (crash / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name}: fsync'd content lost"
    # Files that were not fsync'd may be missing or short, but never unreadable.
    for p in crash.iterdir():
        p.read_bytes()
    _umount_checked(v)


# =====================================================================================
# 4. Security: nothing recognizable in the vault directory
# =====================================================================================

SECRET_NAMES = [
    "secret-name-XYZ-4a7f1c.txt",
    "secret-dir-XYZ-9b2e",
    "secret-nested-XYZ-77c1.bin",
    "secret-link-XYZ-51d0",
    "secret-old-XYZ-2f3a",
    "secret-new-XYZ-6e8b",
    "secret-big-XYZ-1234567",
]
SECRET_TARGET = "secret-target-XYZ-c0de"
SECRET_XATTR = b"user.secret-xattr-XYZ-beef"
SECRET_XATTR_VALUE = b"secret-xattr-value-XYZ-f00d"
SECRET_LINE = "Attack at dawn: the distinctive plaintext line of fusefs test XYZ"
BIG_SIZE = 1234567


def _pattern() -> bytes:
    return b"".join(hashlib.sha256(b"fusefs-plaintext-%d" % i).digest() for i in range(128))


def _find_fragment(data: bytes, pattern: bytes, window: int = 16) -> int | None:
    """Offset in data of any ``window``-byte piece of pattern, or None.

    Any 16-byte piece contains an 8-byte piece starting at an 8-aligned offset
    of data; those are looked up in a set, and candidates checked exactly.
    """
    eights = {pattern[i : i + 8] for i in range(len(pattern) - 7)}
    pieces = {pattern[i : i + window] for i in range(len(pattern) - window + 1)}
    for k in range(0, len(data) - 7, 8):
        if data[k : k + 8] in eights:
            for start in range(max(0, k - window + 8), k + 1):
                if data[start : start + window] in pieces:
                    return start
    return None


@pytest.mark.parametrize("compress", [None, "zstd"])
def test_vault_reveals_no_plaintext(vault_factory, compress: str | None) -> None:
    """After unmount, no name, content fragment, xattr or recognizable size is in the vault."""
    v: Vault = vault_factory(**({"compress": compress} if compress else {}))
    v.mount()
    m = v.mnt
    pattern = _pattern()
    n_name, n_dir, n_nested, n_link, n_old, n_new, n_big = SECRET_NAMES
    text = "".join(f"{SECRET_LINE} {i:04d}\n" for i in range(200))
    (m / n_name).write_text(text)
    (m / n_dir).mkdir()
    (m / n_dir / n_nested).write_bytes(pattern * 16 + b"x" + pattern)  # aligned and not
    (m / n_big).write_bytes((pattern * (BIG_SIZE // len(pattern) + 1))[:BIG_SIZE])
    os.symlink(SECRET_TARGET, m / n_link)
    os.setxattr(m / n_name, SECRET_XATTR, SECRET_XATTR_VALUE)
    (m / n_old).write_bytes(pattern[:100])
    os.rename(m / n_old, m / n_new)
    assert (m / n_big).stat().st_size == BIG_SIZE
    _umount_checked(v)

    needles = [n.encode() for n in SECRET_NAMES] + [
        SECRET_TARGET.encode(),
        SECRET_XATTR,
        SECRET_XATTR_VALUE,
        SECRET_LINE.encode(),
        b"secret-",
        b"XYZ-",
        b"Attack at dawn",
    ]
    sizes = {BIG_SIZE}
    size_codes = [struct.pack("<Q", BIG_SIZE), struct.pack(">Q", BIG_SIZE)]
    files = [p for p in v.dir.rglob("*") if p.is_file()]
    assert files
    for p in v.dir.rglob("*"):
        rel = str(p.relative_to(v.dir))
        assert "secret" not in rel.lower() and "XYZ" not in rel, f"plaintext name: {rel}"
    for p in files:
        data = p.read_bytes()
        rel = p.relative_to(v.dir)
        assert len(data) not in sizes, f"{rel} has the plaintext size {len(data)}"
        for needle in needles:
            assert needle not in data, f"{rel} contains {needle!r}"
        for code in size_codes:
            assert code not in data, f"{rel} contains the size {BIG_SIZE} as 8 bytes"
        at = _find_fragment(data, pattern)
        assert at is None, f"{rel} contains 16 bytes of the plaintext pattern at {at}"
        at = _find_fragment(data, text.encode())
        assert at is None, f"{rel} contains 16 bytes of the plaintext text at {at}"
