#!/usr/bin/env python3
"""How fast can any pyfuse3 + trio file system be? The floor under fusefs's metadata figures.

    python3 scripts/bench_fuse_floor.py [--runs 5] [--fs nullfs fusefs securefs gocryptfs]
    python3 scripts/bench_fuse_floor.py --fs nullfs fusefs --build before=/work/main

``nullfs`` is a file system on pyfuse3 + trio that keeps everything in
Python dicts: no encryption, no engine, no disk, each handler a few lines.
It is mounted with fusefs's own options (``default_permissions``, writeback
cache, 60 s entry and attribute caching, readdirplus) and fusefs's request
loop (:mod:`fusefs.requestloop`; ``FUSEFS_REQUEST_LOOP=trio`` for pyfuse3's
own). Whatever it costs is what pyfuse3, trio and the kernel's FUSE
round trips cost before any work is done, so no pyfuse3 file system can beat
its figures; fusefs and the peers run the same workloads in the same run.

Workloads (the metadata ones of ``../shared/bench/peers.sh``, then the
write workloads of ``scripts/bench_sync.py``, all on a tmpfs
backing directory): untar of Python's standard library, then with the
kernel's caches dropped (``drop_caches``, not a remount: nullfs forgets
everything at unmount) ``ls -lR``, tar-read, ``rm -rf``; and the round trip
of one ``statfs`` call (the cheapest request there is); and the latency of a
4 KiB append followed by ``fsync`` (``--fsync-count`` of them, median and
p99 in µs; nullfs answers FSYNC and FSYNCDIR doing nothing, so the kernel
keeps sending them, as it does to fusefs); then ``bench_sync.py``'s random
4 KiB writes with an fsync every 32 (fio, IOPS), 8 KiB sequential
``write(2)`` calls (MB/s) and one-INSERT sqlite transactions (tx/s): nullfs
keeps the data in memory, so no pyfuse3 file system beats these figures
with its data on a disk either. Prints the fastest and the median
of ``--runs``, then the FUSE requests of each workload in the last round for
the file systems that count them (nullfs, and fusefs through its ``fusefs.stats``
control attribute: nullfs answers the same attribute). Not a test: a
measurement to read.

``fusefs`` is the checkout this script is in (``python3 -m fusefs`` from
it); ``--build NAME=REPO_DIR`` adds another checkout, labelled NAME.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import stat
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench_sync import fsync4k, randwrite, seq8k, sqlite_inserts  # this directory: scripts/
from peerbench import (
    Build,
    Parser,
    add_build_option,
    ensure_installed,
    fail,
    parse_builds,
    unmount_leftovers,
)

WORKLOADS = [
    "untar s",
    "ls-lR s",
    "tarread s",
    "rm s",
    "statfs us",
    "fsync4k med us",
    "p99 us",
    "randwrite IOPS",
    "seq8k MB/s",
    "sqlite tx/s",
]
#: Columns where more is better (the fastest run is the largest figure).
HIGHER_IS_BETTER = {"randwrite IOPS", "seq8k MB/s", "sqlite tx/s"}
#: The workloads whose requests are counted (the fsync4k pair is one workload).
COUNTED = ["untar", "ls-lR", "tarread", "rm", "statfs", "fsync4k", "randwrite", "seq8k", "sqlite"]
PASSWORD = "bench-password\n"
REPO = Path(__file__).resolve().parent.parent
#: The control attribute whose JSON reply has the daemon's requests per op (``fuse_ops``).
STATS_XATTR = "fusefs.stats"
#: A little over the time fusefs serves the same stats reply again.
STATS_REUSE_SECONDS = 0.6
Counts = dict[str, int]
NULLFS_NOTE = "nullfs: the floor of any pyfuse3 + trio file system (scripts/bench_fuse_floor.py)"


# --- nullfs: the least a pyfuse3 file system can do ----------------------------------------


def serve_nullfs(mountpoint: str) -> None:
    import pyfuse3
    import trio

    from fusefs import requestloop

    class Node:
        __slots__ = ("attr", "data", "entries", "target")

        def __init__(self, ino: int, mode: int, uid: int, gid: int) -> None:
            a = pyfuse3.EntryAttributes()
            a.st_ino = ino
            a.st_mode = mode
            a.st_nlink = 2 if stat.S_ISDIR(mode) else 1
            a.st_uid, a.st_gid = uid, gid
            now = time.time_ns()
            a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = now
            a.st_blksize = 65536
            a.entry_timeout = a.attr_timeout = 60.0
            self.attr = a
            self.data = bytearray()
            self.entries: dict[bytes, int] = {}
            self.target = b""

    class NullFs(pyfuse3.Operations):
        enable_writeback_cache = True
        supports_dot_lookup = False

        def __init__(self) -> None:
            super().__init__()
            self.nodes = {1: Node(1, stat.S_IFDIR | 0o755, 0, 0)}
            self.next_ino = 2
            #: Requests per op, as fusefs counts them (read through STATS_XATTR).
            self.ops: Counter[str] = Counter()

        def _new(self, parent: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext) -> Node:
            node = Node(self.next_ino, mode, ctx.uid, ctx.gid)
            self.next_ino += 1
            self.nodes[node.attr.st_ino] = node
            self.nodes[parent].entries[name] = node.attr.st_ino
            return node

        async def lookup(self, parent, name, ctx):  # type: ignore[no-untyped-def]
            ino = self.nodes[parent].entries.get(name)
            if ino is None:
                e = pyfuse3.EntryAttributes()
                e.st_ino = 0
                e.entry_timeout = 60.0
                return e
            return self.nodes[ino].attr

        async def getattr(self, inode, ctx=None):  # type: ignore[no-untyped-def]
            return self.nodes[inode].attr

        async def setattr(self, inode, attr, fields, fh, ctx):  # type: ignore[no-untyped-def]
            a = self.nodes[inode].attr
            if fields.update_mode:
                a.st_mode = (a.st_mode & ~0o7777) | (attr.st_mode & 0o7777)
            if fields.update_uid:
                a.st_uid = attr.st_uid
            if fields.update_gid:
                a.st_gid = attr.st_gid
            if fields.update_atime:
                a.st_atime_ns = attr.st_atime_ns
            if fields.update_mtime:
                a.st_mtime_ns = attr.st_mtime_ns
            if fields.update_size:
                del self.nodes[inode].data[attr.st_size :]
                a.st_size = attr.st_size
            return a

        async def forget(self, inode_list):  # type: ignore[no-untyped-def]
            return None

        async def mkdir(self, parent, name, mode, ctx):  # type: ignore[no-untyped-def]
            return self._new(parent, name, stat.S_IFDIR | mode, ctx).attr

        async def mknod(self, parent, name, mode, rdev, ctx):  # type: ignore[no-untyped-def]
            return self._new(parent, name, mode, ctx).attr

        async def symlink(self, parent, name, target, ctx):  # type: ignore[no-untyped-def]
            node = self._new(parent, name, stat.S_IFLNK | 0o777, ctx)
            node.target = target
            return node.attr

        async def readlink(self, inode, ctx):  # type: ignore[no-untyped-def]
            return self.nodes[inode].target

        async def unlink(self, parent, name, ctx):  # type: ignore[no-untyped-def]
            del self.nodes[parent].entries[name]

        async def rmdir(self, parent, name, ctx):  # type: ignore[no-untyped-def]
            if self.nodes[self.nodes[parent].entries[name]].entries:
                raise pyfuse3.FUSEError(errno.ENOTEMPTY)
            del self.nodes[parent].entries[name]

        async def create(self, parent, name, mode, flags, ctx):  # type: ignore[no-untyped-def]
            node = self._new(parent, name, mode, ctx)
            return pyfuse3.FileInfo(fh=node.attr.st_ino, keep_cache=True), node.attr

        async def open(self, inode, flags, ctx):  # type: ignore[no-untyped-def]
            return pyfuse3.FileInfo(fh=inode, keep_cache=True)

        async def read(self, fh, off, size):  # type: ignore[no-untyped-def]
            return bytes(self.nodes[fh].data[off : off + size])

        async def write(self, fh, off, buf):  # type: ignore[no-untyped-def]
            node = self.nodes[fh]
            if len(node.data) < off:
                node.data.extend(bytes(off - len(node.data)))
            node.data[off : off + len(buf)] = buf
            node.attr.st_size = len(node.data)
            return len(buf)

        async def release(self, fh):  # type: ignore[no-untyped-def]
            return None

        async def opendir(self, inode, ctx):  # type: ignore[no-untyped-def]
            return inode

        async def readdir(self, fh, start_id, token):  # type: ignore[no-untyped-def]
            entries = list(self.nodes[fh].entries.items())
            for i in range(start_id, len(entries)):
                name, ino = entries[i]
                if not pyfuse3.readdir_reply(token, name, self.nodes[ino].attr, i + 1):
                    return

        async def getxattr(self, inode, name, ctx):  # type: ignore[no-untyped-def]
            if inode == pyfuse3.ROOT_INODE and name == STATS_XATTR.encode():
                # Longer than 128 bytes, as fusefs's reply: os.getxattr asks
                # with 128 bytes first, so each read of the counts costs the
                # same two requests, which Counting takes off.
                reply = {"fs": NULLFS_NOTE, "fuse_ops": dict(self.ops)}
                return json.dumps(reply).encode()
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)

        # Without these the first FSYNC/FSYNCDIR gets ENOSYS and the kernel
        # sends none after it: the floor would leave out a round trip that
        # fusefs and the peers pay on every fsync.
        async def fsync(self, fh, datasync):  # type: ignore[no-untyped-def]
            return None

        async def fsyncdir(self, fh, datasync):  # type: ignore[no-untyped-def]
            return None

        async def statfs(self, ctx):  # type: ignore[no-untyped-def]
            s = pyfuse3.StatvfsData()
            s.f_bsize = s.f_frsize = 4096
            s.f_blocks = s.f_bfree = s.f_bavail = 1 << 20
            s.f_files = s.f_ffree = s.f_favail = 1 << 20
            s.f_namemax = 255
            return s

    counting(NullFs)
    pyfuse3.init(NullFs(), mountpoint, {"fsname=nullfs", "default_permissions", "noatime"})
    requestloop.install()
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=False)


def counting(cls: type) -> None:
    """Make every request handler of ``cls`` (those it leaves to pyfuse3's
    ENOSYS answer too) count itself in ``self.ops``, as fusefs's do."""
    import inspect

    import pyfuse3

    def counted(name: str, method):  # type: ignore[no-untyped-def]
        async def wrapper(self, *args):  # type: ignore[no-untyped-def]
            self.ops[name] += 1
            return await method(self, *args)

        return wrapper

    for name, _ in inspect.getmembers(pyfuse3.Operations, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            setattr(cls, name, counted(name, getattr(cls, name)))


class RoundFailed(Exception):
    """A file system failed in one round: that round is left out, the others kept."""


# --- mounting each file system -------------------------------------------------------------


def wait_mounted(mnt: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(200):
        if os.path.ismount(mnt):
            return
        if proc is not None and proc.poll() is not None:
            raise RoundFailed(f"the file system on {mnt} exited ({proc.returncode})")
        time.sleep(0.05)
    raise RoundFailed(f"{mnt} did not come up")


def mount(
    fs: str, work: Path, builds: dict[str, Build]
) -> tuple[Path, subprocess.Popen[bytes] | None]:
    backing, mnt = work / f"{fs}.backing", work / f"{fs}.mnt"
    for d in (backing, mnt):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    pw = work / "pass"
    null = subprocess.DEVNULL
    if fs == "nullfs":
        # (fusefs.requestloop from this checkout, wherever the script is started)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen([sys.executable, __file__, "--serve-nullfs", str(mnt)], env=env)
        wait_mounted(mnt, proc)
        return mnt, proc
    if fs in builds:
        b = builds[fs]
        f, env = b.command(), b.env()
        subprocess.run([*f, "init", str(backing), "--passfile", str(pw), "-q"], check=True, env=env)
        mount_cmd = [*f, "mount", str(backing), str(mnt), "--passfile", str(pw)]
        subprocess.run(mount_cmd, check=True, env=env)
    elif fs == "gocryptfs":
        subprocess.run(["gocryptfs", "-q", "-init", "-passfile", str(pw), str(backing)], check=True)
        subprocess.run(
            ["gocryptfs", "-q", "-passfile", str(pw), str(backing), str(mnt)],
            check=True,
            stdout=null,
            stderr=null,
        )
    elif fs == "securefs":
        password = PASSWORD.strip()
        subprocess.run(
            ["securefs", "create", "--pass", password, str(backing)],
            check=True,
            stdout=null,
            stderr=null,
        )
        subprocess.Popen(
            ["securefs", "mount", "--pass", password, str(backing), str(mnt)],
            stdout=null,
            stderr=null,
        )
    else:
        sys.exit(f"bench: unknown file system {fs}")
    wait_mounted(mnt)
    return mnt, None


def unmount(
    fs: str, mnt: Path, proc: subprocess.Popen[bytes] | None, builds: dict[str, Build]
) -> None:
    if fs in builds:
        subprocess.run(
            [*builds[fs].command(), "umount", str(mnt)], check=True, env=builds[fs].env()
        )
    else:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
    if proc is not None:
        proc.wait(timeout=30)


# --- workloads -----------------------------------------------------------------------------


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def statfs_round_trip_us(mnt: Path, n: int = 5000) -> float:
    os.statvfs(mnt)
    t0 = time.perf_counter()
    for _ in range(n):
        os.statvfs(mnt)
    return (time.perf_counter() - t0) / n * 1e6


def request_counts(mnt: Path) -> Counts | None:
    """The daemon's requests so far per op, or None where it does not count them."""
    time.sleep(STATS_REUSE_SECONDS)  # fusefs serves one reply for a while
    try:
        ops: Counts = json.loads(os.getxattr(mnt, STATS_XATTR))["fuse_ops"]
    except OSError:
        return None
    return ops


def subtract(after: Counts, before: Counts, overhead: Counts) -> Counts:
    diff = {op: n - before.get(op, 0) - overhead.get(op, 0) for op, n in after.items()}
    return {op: n for op, n in sorted(diff.items(), key=lambda kv: -kv[1]) if n > 0}


class Counting:
    """Request counts around each workload, when asked for and the file system has them."""

    def __init__(self, mnt: Path, wanted: bool) -> None:
        self.mnt = mnt
        self.per_workload: dict[str, Counts] = {}
        first = request_counts(mnt) if wanted else None
        self.before = request_counts(mnt) if first is not None else None
        # What reading the counts costs in requests itself, taken off every difference.
        self.overhead = subtract(self.before, first, {}) if self.before and first else {}

    def start(self) -> None:
        if self.before is not None:
            self.before = request_counts(self.mnt)

    def stop(self, workload: str) -> None:
        if self.before is not None:
            after = request_counts(self.mnt) or {}
            self.per_workload[workload] = subtract(after, self.before, self.overhead)


def one_run(
    fs: str,
    work: Path,
    tar: Path,
    top: str,
    builds: dict[str, Build],
    args: argparse.Namespace,
    count: bool,
) -> tuple[list[float], dict[str, Counts]]:
    """One round of every workload on a fresh mount of ``fs``; the request counts if ``count``."""
    mnt, proc = mount(fs, work, builds)
    try:
        c = Counting(mnt, count)
        untar = timed(["tar", "xf", str(tar), "-C", str(mnt)])
        c.stop("untar")
        drop_caches()
        c.start()
        ls = timed(["ls", "-lR", str(mnt)])
        c.stop("ls-lR")
        drop_caches()
        c.start()
        tarread = timed(["sh", "-c", f"tar cf - -C '{mnt}' . | cat >/dev/null"])
        c.stop("tarread")
        c.start()
        rm = timed(["rm", "-rf", str(mnt / top)])
        c.stop("rm")
        c.start()
        rtt = statfs_round_trip_us(mnt)
        c.stop("statfs")
        c.start()
        med, p99 = fsync4k(mnt, args.fsync_count)
        c.stop("fsync4k")
        writes = []
        for name, workload in (
            ("randwrite", lambda: randwrite(mnt, args.fio_size_mb, args.fio_runtime)),
            ("seq8k", lambda: seq8k(mnt, args.seq_mb)),
            ("sqlite", lambda: sqlite_inserts(mnt, args.sqlite_count)),
        ):
            for leftover in mnt.iterdir():
                leftover.unlink()
            c.start()
            writes.append(workload())
            c.stop(name)
    finally:
        unmount(fs, mnt, proc, builds)
    return [untar, ls, tarread, rm, rtt, med, p99, *writes], c.per_workload


def stdlib_tar(work: Path) -> tuple[Path, str]:
    tar = work / "stdlib.tar"
    lib = Path(sysconfig.get_paths()["stdlib"])
    if not tar.exists():
        subprocess.run(
            [
                "tar",
                "cf",
                str(tar),
                "--exclude=site-packages",
                "--exclude=__pycache__",
                "-C",
                str(lib.parent),
                lib.name,
            ],
            check=True,
        )
    return tar, lib.name


def run_rounds(
    labels: list[str],
    runs: int,
    one: Callable[[str, bool], tuple[list[float], dict[str, Counts]]],
    work: Path,
) -> tuple[dict[str, list[list[float]]], dict[str, dict[str, Counts]]]:
    """``runs`` rounds of ``one(fs, count)`` for every file system, counting
    requests in the last; a file system failing in a round is left out of
    that round (and unmounted) while the rest goes on."""
    results: dict[str, list[list[float]]] = {fs: [] for fs in labels}
    counts: dict[str, dict[str, Counts]] = {}
    for r in range(runs):
        for fs in labels:
            try:
                figures, counts[fs] = one(fs, r == runs - 1)
            except (RoundFailed, subprocess.CalledProcessError, OSError) as e:
                print(f"round {r + 1}: {fs} failed, left out: {e}", file=sys.stderr)
                unmount_leftovers([work / f"{fs}.mnt"])
                continue
            results[fs].append(figures)
        print(f"round {r + 1}/{runs} done", file=sys.stderr)
    return results, counts


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fs", nargs="+", default=["nullfs", "fusefs", "securefs", "gocryptfs"])
    ap.add_argument("--dir", default="/dev/shm/fuse-floor")
    ap.add_argument("--fsync-count", type=int, default=300, help="4 KiB appends + fsync per run")
    ap.add_argument("--fio-size-mb", type=int, default=64, help="randwrite file (64 MiB)")
    ap.add_argument("--fio-runtime", type=float, default=4.0, help="randwrite seconds (4)")
    ap.add_argument("--seq-mb", type=int, default=256, help="seq8k file (256 MiB)")
    ap.add_argument("--sqlite-count", type=int, default=500, help="sqlite transactions (500)")
    add_build_option(ap)
    ap.add_argument("--no-counts", action="store_true", help="do not count requests")
    ap.add_argument("--serve-nullfs", metavar="MNT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_nullfs:
        serve_nullfs(args.serve_nullfs)
        return
    unknown = [fs for fs in args.fs if fs not in ("nullfs", "fusefs", "securefs", "gocryptfs")]
    if unknown:
        fail(f"unknown file system {unknown[0]!r} (choose from nullfs fusefs securefs gocryptfs)")
    numbers = ("runs", "fsync_count", "fio_size_mb", "seq_mb", "sqlite_count")
    for name in numbers:
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1")
    if args.fio_runtime <= 0:
        fail("--fio-runtime must be positive")
    builds = {b.name: b for b in parse_builds(args.build, args.fs)}
    if "fusefs" in args.fs:
        builds["fusefs"] = Build("fusefs", REPO)
    if os.geteuid() != 0:
        fail("needs root (drop_caches, FUSE mounts)")
    ensure_installed([fs for fs in args.fs if fs in ("securefs", "gocryptfs")] + ["fio"])
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "pass").write_text(PASSWORD)
    tar, top = stdlib_tar(work)
    # Touch the memory the runs will use once (first-touch faults are slow here).
    with tempfile.TemporaryFile(dir=work) as f:
        f.write(b"\0" * (512 << 20))
    labels = [*args.fs, *(b for b in builds if b not in args.fs)]

    def one(fs: str, count: bool) -> tuple[list[float], dict[str, Counts]]:
        return one_run(fs, work, tar, top, builds, args, count and not args.no_counts)

    results, counts = run_rounds(labels, args.runs, one, work)
    entries = int(
        subprocess.run(
            ["sh", "-c", f"tar tf '{tar}' | wc -l"], capture_output=True, text=True, check=True
        ).stdout
    )
    print(
        f"\n{entries}-entry tree, {args.runs} runs, fastest / median; caches dropped "
        "between workloads; request loop: "
        f"{os.environ.get('FUSEFS_REQUEST_LOOP', 'fusefs.requestloop')}\n"
    )
    print("| fs | " + " | ".join(WORKLOADS) + " |")
    print("|---" * (len(WORKLOADS) + 1) + "|")
    for fs, runs in results.items():
        if not runs:
            print(f"| {fs} | (no successful run) |")
            continue
        cells = []
        for i, w in enumerate(WORKLOADS):
            col = [run[i] for run in runs]
            best = max(col) if w in HIGHER_IS_BETTER else min(col)
            cells.append(f"{best:.2f} / {statistics.median(col):.2f}")
        print(f"| {fs} | " + " | ".join(cells) + " |")
    counted = [fs for fs in labels if counts.get(fs)]
    if counted:
        print("\nFUSE requests per workload (last round):\n")
        print("| workload | " + " | ".join(counted) + " |")
        print("|---" * (len(counted) + 1) + "|")
        for w in COUNTED:
            cells = [describe_counts(counts[fs].get(w, {})) for fs in counted]
            print(f"| {w} | " + " | ".join(cells) + " |")


def describe_counts(ops: Counts) -> str:
    """``total: op n, op n ...`` (most frequent first)."""
    total = sum(ops.values())
    return f"{total:,}: " + ", ".join(f"{op} {n:,}" for op, n in ops.items()) if ops else "0"


if __name__ == "__main__":
    main()
