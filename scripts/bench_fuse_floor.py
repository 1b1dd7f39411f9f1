#!/usr/bin/env python3
"""How fast can any pyfuse3 + trio file system be? The floor under fusefs's metadata figures.

    python3 scripts/bench_fuse_floor.py [--runs 5] [--fs nullfs fusefs securefs gocryptfs]

``nullfs`` is a file system on pyfuse3 + trio that keeps everything in
Python dicts: no encryption, no engine, no disk, each handler a few lines.
It is mounted with fusefs's own options (``default_permissions``, writeback
cache, 60 s entry and attribute caching, readdirplus) and fusefs's request
loop (:mod:`fusefs.requestloop`; ``FUSEFS_REQUEST_LOOP=trio`` for pyfuse3's
own). Whatever it costs is what pyfuse3, trio and the kernel's FUSE
round trips cost before any work is done, so no pyfuse3 file system can beat
its figures; fusefs and the peers run the same workloads in the same run.

Workloads (the metadata ones of ``../shared/bench/peers.sh``, on a tmpfs
backing directory): untar of Python's standard library, then with the
kernel's caches dropped (``drop_caches``, not a remount: nullfs forgets
everything at unmount) ``ls -lR``, tar-read, ``rm -rf``; and the round trip
of one ``statfs`` call (the cheapest request there is). Prints the fastest
and the median of ``--runs``. Not a test: a measurement to read.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import stat
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

WORKLOADS = ["untar s", "ls-lR s", "tarread s", "rm s", "statfs us"]
PASSWORD = "bench-password\n"


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
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)

        async def statfs(self, ctx):  # type: ignore[no-untyped-def]
            s = pyfuse3.StatvfsData()
            s.f_bsize = s.f_frsize = 4096
            s.f_blocks = s.f_bfree = s.f_bavail = 1 << 20
            s.f_files = s.f_ffree = s.f_favail = 1 << 20
            s.f_namemax = 255
            return s

    pyfuse3.init(NullFs(), mountpoint, {"fsname=nullfs", "default_permissions", "noatime"})
    requestloop.install()
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=False)


# --- mounting each file system -------------------------------------------------------------


def wait_mounted(mnt: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    for _ in range(200):
        if os.path.ismount(mnt):
            return
        if proc is not None and proc.poll() is not None:
            sys.exit(f"bench: the file system on {mnt} exited ({proc.returncode})")
        time.sleep(0.05)
    sys.exit(f"bench: {mnt} did not come up")


def fusefs_cmd() -> str:
    script = Path(sysconfig.get_path("scripts")) / "fusefs"
    return str(script) if script.exists() else (shutil.which("fusefs") or "fusefs")


def mount(fs: str, work: Path) -> tuple[Path, subprocess.Popen[bytes] | None]:
    backing, mnt = work / f"{fs}.backing", work / f"{fs}.mnt"
    for d in (backing, mnt):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    pw = work / "pass"
    null = subprocess.DEVNULL
    if fs == "nullfs":
        proc = subprocess.Popen([sys.executable, __file__, "--serve-nullfs", str(mnt)])
        wait_mounted(mnt, proc)
        return mnt, proc
    if fs == "fusefs":
        f = fusefs_cmd()
        subprocess.run([f, "init", str(backing), "--passfile", str(pw), "-q"], check=True)
        subprocess.run([f, "mount", str(backing), str(mnt), "--passfile", str(pw)], check=True)
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


def unmount(fs: str, mnt: Path, proc: subprocess.Popen[bytes] | None) -> None:
    if fs == "fusefs":
        subprocess.run([fusefs_cmd(), "umount", str(mnt)], check=True)
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


def one_run(fs: str, work: Path, tar: Path, top: str) -> list[float]:
    mnt, proc = mount(fs, work)
    try:
        untar = timed(["tar", "xf", str(tar), "-C", str(mnt)])
        drop_caches()
        ls = timed(["ls", "-lR", str(mnt)])
        drop_caches()
        tarread = timed(["sh", "-c", f"tar cf - -C '{mnt}' . | cat >/dev/null"])
        rm = timed(["rm", "-rf", str(mnt / top)])
        rtt = statfs_round_trip_us(mnt)
    finally:
        unmount(fs, mnt, proc)
    return [untar, ls, tarread, rm, rtt]


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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fs", nargs="+", default=["nullfs", "fusefs", "securefs", "gocryptfs"])
    ap.add_argument("--dir", default="/dev/shm/fuse-floor")
    ap.add_argument("--serve-nullfs", metavar="MNT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_nullfs:
        serve_nullfs(args.serve_nullfs)
        return
    if os.geteuid() != 0:
        sys.exit("bench: needs root (drop_caches, FUSE mounts)")
    missing = [fs for fs in args.fs if fs in ("securefs", "gocryptfs") and not shutil.which(fs)]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "pass").write_text(PASSWORD)
    tar, top = stdlib_tar(work)
    # Touch the memory the runs will use once (first-touch faults are slow here).
    with tempfile.TemporaryFile(dir=work) as f:
        f.write(b"\0" * (512 << 20))
    results: dict[str, list[list[float]]] = {fs: [] for fs in args.fs}
    for r in range(args.runs):
        for fs in args.fs:
            results[fs].append(one_run(fs, work, tar, top))
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
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
        cells = []
        for i in range(len(WORKLOADS)):
            col = [run[i] for run in runs]
            cells.append(f"{min(col):.2f} / {statistics.median(col):.2f}")
        print(f"| {fs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
