#!/usr/bin/env python3
"""Small synchronous I/O against the peers: fsync latency, random writes, small writes, sqlite.

For fusefs, gocryptfs and securefs (``--fs``; more fusefs checkouts with
``--build NAME=REPO_DIR``), with the vault on tmpfs (``/dev/shm/peerbench``)
and on the machine's disk (``/var/tmp/peerbench`` or ``--disk-dir``), as
``--where`` says, measures:

* ``fsync4k``: ``--fsync-count`` 4 KiB ``pwrite``s appended to a file, each
  followed by ``fsync``; the median and p99 latency in µs of one round.
* ``randwrite``: fio, ``randwrite`` bs=4k on a ``--fio-size-mb`` file,
  fsync every 32 writes, ioengine=psync, ``--fio-runtime`` seconds: IOPS.
* ``seq8k``: ``--seq-mb`` MiB of 8 KiB sequential ``write(2)``s into a new
  file, then one ``fsync``: MB/s (10^6 bytes/s), from open to fsync. A
  Python ``os.write`` loop in a child process (random data, so no file system
  can compress it away).
* ``sqlite``: ``--sqlite-count`` transactions of one INSERT each (Python's
  sqlite3 in autocommit mode; sqlite's defaults: rollback journal, synchronous
  FULL): transactions/s.

Every round runs every file system once per location, in an order rotating
with the round, each on a freshly initialised and mounted vault that is
unmounted and deleted afterwards (also on an error or Ctrl-C). Prints per
location the fastest and the median over the rounds (for ``fsync4k``: of the
rounds' medians and of their p99s) and each fusefs build against the best peer
(> 1: fusefs is better). For each fusefs build, the daemon's FUSE requests per
workload (``fusefs stats --json`` before and after, minus what a ``stats``
call itself costs) of the last round are printed too. Mount time is left to
``bench_mount.py``.

    python3 scripts/bench_sync.py                       # 5 rounds, tmpfs and disk
    python3 scripts/bench_sync.py --runs 1 --where tmpfs --fsync-count 50
    python3 scripts/bench_sync.py --fs gocryptfs --build before=/work/main --build after=.

Installs gocryptfs, securefs and fio from Debian's packages when missing.
Not a test: timings on shared VMs are noisy; read the medians beside the
fastest runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from peerbench import (  # this directory: scripts/
    TMPFS_DIR,
    Build,
    Column,
    Location,
    Parser,
    add_common_options,
    ensure_installed,
    fail,
    locations,
    parse_builds,
    summarise,
    unmount_leftovers,
)

PASSWORD = "bench-password"
PEERS = ("fusefs", "gocryptfs", "securefs")
COLUMNS = [
    Column("fsync4k med µs", False),
    Column("fsync4k p99 µs", False),
    Column("randwrite IOPS", True),
    Column("seq8k MB/s", True),
    Column("sqlite tx/s", True),
]
#: A little over the daemon's reuse time of a stats reply.
STATS_REUSE_SECONDS = 0.6

Counts = dict[str, int]


class BenchError(Exception):
    """A file system or workload failed in one round: that round is left out."""


def run(cmd: list[str], **kw: object) -> None:
    """Run ``cmd``; a failure is a :class:`BenchError` naming its last line of output."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise BenchError(f"{' '.join(cmd[:3])} ... failed ({done.returncode}): {last}")


def is_mounted(point: Path) -> bool:
    with open("/proc/mounts") as mounts:
        return any(line.split()[1] == str(point) for line in mounts)


def wait_mounted(point: Path, alive: Callable[[], bool] = lambda: True) -> None:
    for _ in range(100):  # as peers.sh's waitmnt: 10 s
        if is_mounted(point):
            return
        if not alive():
            break
        time.sleep(0.1)
    raise BenchError(f"mount failed: {point}")


# --- the file systems (their commands as ../shared/bench/peers.sh has them) ---------------


class Filesystem:
    """One file system under test: how to create, mount and unmount a vault."""

    label = ""

    def init(self, vault: Path, passfile: Path) -> None:
        raise NotImplementedError

    def mount(self, vault: Path, mnt: Path, passfile: Path) -> None:
        raise NotImplementedError

    def umount(self, mnt: Path) -> None:
        """Unmount; the daemon is gone when this returns."""
        os.sync()  # peers.sh: sync; fusermount3 -u; sleep 0.5
        run(["fusermount3", "-u", str(mnt)])
        time.sleep(0.5)

    def request_counts(self, mnt: Path) -> Counts | None:
        """The daemon's FUSE requests so far, per op (None: the file system has no counters)."""
        return None


class Fusefs(Filesystem):
    """fusefs from PATH, or a checkout's ``python3 -m fusefs`` (``--build``)."""

    def __init__(self, label: str, build: Build | None) -> None:
        self.label = label
        self.cmd = build.command() if build else ["fusefs"]
        self.kw: dict[str, object] = {"env": build.env(), "cwd": build.repo} if build else {}
        self.last_stats = 0.0

    def init(self, vault: Path, passfile: Path) -> None:
        run([*self.cmd, "init", str(vault), "--passfile", str(passfile), "-q"], **self.kw)

    def mount(self, vault: Path, mnt: Path, passfile: Path) -> None:
        run([*self.cmd, "mount", str(vault), str(mnt), "--passfile", str(passfile)], **self.kw)
        wait_mounted(mnt)

    def umount(self, mnt: Path) -> None:
        run([*self.cmd, "umount", str(mnt)], **self.kw)

    def request_counts(self, mnt: Path) -> Counts | None:
        # The daemon serves the same stats reply again within 0.5 s
        # (control_server.STATS_REUSE_SECONDS): wait that out, or the counts
        # read after a short workload would be those read before it. Timed from
        # the return of the previous call: its reply was made before that.
        time.sleep(max(0.0, self.last_stats + STATS_REUSE_SECONDS - time.monotonic()))
        cmd = [*self.cmd, "stats", str(mnt), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, **self.kw)  # type: ignore[call-overload]
        self.last_stats = time.monotonic()
        if done.returncode != 0:
            raise BenchError(f"fusefs stats failed: {done.stderr.strip()}")
        ops: Counts = json.loads(done.stdout)["fuse_ops"]
        return ops


class Gocryptfs(Filesystem):
    label = "gocryptfs"

    def init(self, vault: Path, passfile: Path) -> None:
        run(["gocryptfs", "-q", "-init", "-passfile", str(passfile), str(vault)])

    def mount(self, vault: Path, mnt: Path, passfile: Path) -> None:
        run(["gocryptfs", "-q", "-passfile", str(passfile), str(vault), str(mnt)])


class Securefs(Filesystem):
    """securefs stays in front: started in the background, waited for after unmounting."""

    label = "securefs"

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def init(self, vault: Path, passfile: Path) -> None:
        run(["securefs", "create", "--pass", PASSWORD, str(vault)])

    def mount(self, vault: Path, mnt: Path, passfile: Path) -> None:
        self.process = subprocess.Popen(
            ["securefs", "mount", "--pass", PASSWORD, str(vault), str(mnt)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C is ours to handle: unmount, then let it exit
        )
        process = self.process
        wait_mounted(mnt, lambda: process.poll() is None)

    def umount(self, mnt: Path) -> None:
        try:
            super().umount(mnt)
        finally:
            if self.process is not None:
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                self.process = None


# --- the workloads --------------------------------------------------------------------------


def fsync4k(mnt: Path, count: int) -> tuple[float, float]:
    """Median and p99 (nearest rank) latency in µs of a 4 KiB append + fsync."""
    data = memoryview(os.urandom(4096 * count))
    latencies = []
    fd = os.open(mnt / "fsync4k.dat", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(count):
            t = time.perf_counter_ns()
            os.pwrite(fd, data[i * 4096 : (i + 1) * 4096], i * 4096)
            os.fsync(fd)
            latencies.append((time.perf_counter_ns() - t) / 1000)
    finally:
        os.close(fd)
    latencies.sort()
    return statistics.median(latencies), latencies[math.ceil(0.99 * count) - 1]


def randwrite(mnt: Path, size_mb: int, runtime: float) -> float:
    """fio's write IOPS: random 4 KiB writes, fsync every 32."""
    cmd = ["fio", "--name=randwrite", f"--filename={mnt / 'fio.dat'}", "--rw=randwrite"]
    cmd += ["--bs=4k", f"--size={size_mb}m", "--fsync=32", "--ioengine=psync"]
    cmd += ["--time_based", f"--runtime={runtime:g}", "--output-format=json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or "{" not in done.stdout:
        raise BenchError(f"fio failed: {(done.stderr.strip() or 'no output').splitlines()[-1]}")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    return float(report["jobs"][0]["write"]["iops"])


SEQ_WRITER = """
import os, sys, time
path, total = sys.argv[1], int(sys.argv[2])
data = memoryview(os.urandom(1 << 20))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
t = time.perf_counter()
for off in range(0, total, 8192):
    at = off % len(data)
    if os.write(fd, data[at : at + 8192]) != 8192:
        sys.exit("short write")
os.fsync(fd)
print(time.perf_counter() - t)
os.close(fd)
"""


def seq8k(mnt: Path, size_mb: int) -> float:
    """MB/s of 8 KiB sequential write(2)s and one fsync, in a child process."""
    total = size_mb * 2**20
    cmd = [sys.executable, "-c", SEQ_WRITER, str(mnt / "seq8k.dat"), str(total)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"seq8k writer failed: {done.stderr.strip().splitlines()[-1:]}")
    return total / float(done.stdout) / 1e6


def sqlite_inserts(mnt: Path, count: int) -> float:
    """Transactions/s of one INSERT per transaction (sqlite's default durability)."""
    db = sqlite3.connect(mnt / "bench.db", isolation_level=None)  # autocommit
    try:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        rows = [os.urandom(100) for _ in range(count)]
        t = time.perf_counter()
        for row in rows:
            db.execute("INSERT INTO t (v) VALUES (?)", (row,))
        return count / (time.perf_counter() - t)
    finally:
        db.close()


# --- rounds ---------------------------------------------------------------------------------


def subtract(after: Counts, before: Counts, overhead: Counts) -> Counts:
    diff = {op: n - before.get(op, 0) - overhead.get(op, 0) for op, n in after.items()}
    return {op: n for op, n in sorted(diff.items(), key=lambda kv: -kv[1]) if n > 0}


def one_round(
    fs: Filesystem, where: Location, args: argparse.Namespace
) -> tuple[list[float], dict[str, Counts]]:
    """One file system's figures on a fresh vault, and its request counts per workload."""
    vault = where.work_dir / f"sync-{fs.label}.vault"
    mnt = where.work_dir / f"sync-{fs.label}.mnt"
    passfile = where.work_dir / f"sync-{fs.label}.pass"
    passfile.write_text(PASSWORD + "\n")
    for path in (vault, mnt):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
    mounted = False
    try:
        fs.init(vault, passfile)
        fs.mount(vault, mnt, passfile)
        mounted = True
        workloads: list[tuple[str, Callable[[], float | tuple[float, float]]]] = [
            ("fsync4k", lambda: fsync4k(mnt, args.fsync_count)),
            ("randwrite", lambda: randwrite(mnt, args.fio_size_mb, args.fio_runtime)),
            ("seq8k", lambda: seq8k(mnt, args.seq_mb)),
            ("sqlite", lambda: sqlite_inserts(mnt, args.sqlite_count)),
        ]
        # What one `fusefs stats` costs in requests itself, taken off every difference.
        first = fs.request_counts(mnt)
        before = fs.request_counts(mnt)
        overhead = subtract(before, first, {}) if before and first else {}
        figures: list[float] = []
        requests: dict[str, Counts] = {}
        for name, workload in workloads:
            result = workload()
            figures.extend(result if isinstance(result, tuple) else (result,))
            after = fs.request_counts(mnt)
            if after is not None and before is not None:
                requests[name] = subtract(after, before, overhead)
            for leftover in mnt.iterdir():
                leftover.unlink()
            before = fs.request_counts(mnt)
        return figures, requests
    finally:
        if mounted:
            try:
                fs.umount(mnt)
            except BenchError as e:  # reported, not raised: it would hide a Ctrl-C
                print(f"{fs.label}: {e}", file=sys.stderr)
        unmount_leftovers([mnt])  # a failed unmount still leaves no mount behind
        shutil.rmtree(vault, ignore_errors=True)
        shutil.rmtree(mnt, ignore_errors=True)
        passfile.unlink(missing_ok=True)


def warm_memory(gib: int) -> None:
    """Touch the memory the run will use once (as peers.sh): a VM's first-touch page
    faults otherwise land in the first timings. On tmpfs, so the disk stays quiet."""
    path = TMPFS_DIR / "warm"
    TMPFS_DIR.mkdir(parents=True, exist_ok=True)
    block = bytes(2**20)
    try:
        with open(path, "wb") as f:
            for _ in range(gib * 1024):
                f.write(block)
    finally:
        path.unlink(missing_ok=True)


def parse_args() -> argparse.Namespace:
    ap = Parser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_common_options(ap)
    ap.add_argument("--fs", nargs="+", default=list(PEERS), help="file systems (default: all)")
    ap.add_argument("--fsync-count", type=int, default=300, help="fsync4k writes (300)")
    ap.add_argument("--fio-size-mb", type=int, default=64, help="randwrite file (64 MiB)")
    ap.add_argument("--fio-runtime", type=float, default=5.0, help="randwrite seconds (5)")
    ap.add_argument("--seq-mb", type=int, default=256, help="seq8k file (256 MiB)")
    ap.add_argument("--sqlite-count", type=int, default=500, help="sqlite transactions (500)")
    ap.add_argument("--warm-gb", type=int, default=3, help="memory touched first (3 GiB)")
    args = ap.parse_args()
    unknown = [fs for fs in args.fs if fs not in PEERS]
    if unknown:
        fail(f"unknown file system {unknown[0]!r} (choose from {', '.join(PEERS)})")
    numbers = ("runs", "fsync_count", "fio_size_mb", "seq_mb", "sqlite_count")
    for name in numbers:
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be at least 1")
    if args.fio_runtime <= 0 or args.warm_gb < 0:
        fail("--fio-runtime must be positive and --warm-gb not negative")
    return args


def main() -> None:
    args = parse_args()
    builds = parse_builds(args.build, args.fs)
    where = locations(args.where, args.disk_dir)
    ensure_installed([p for p in PEERS[1:] if p in args.fs] + ["fio"])
    if "fusefs" in args.fs and not shutil.which("fusefs"):
        fail("the fusefs command is not on PATH (run scripts/setup.sh first)")
    makers: dict[str, Callable[[], Filesystem]] = {
        "fusefs": lambda: Fusefs("fusefs", None),
        "gocryptfs": Gocryptfs,
        "securefs": Securefs,
    }
    filesystems = [makers[name]() for name in args.fs]
    filesystems += [Fusefs(b.name, b) for b in builds]
    ours = [fs.label for fs in filesystems if isinstance(fs, Fusefs)]

    warm_memory(args.warm_gb)
    rows: dict[Location, dict[str, list[list[float]]]] = {
        loc: {fs.label: [] for fs in filesystems} for loc in where
    }
    requests: dict[Location, dict[str, dict[str, Counts]]] = {loc: {} for loc in where}
    for r in range(args.runs):
        for loc in where:
            turn = r % len(filesystems)
            for fs in filesystems[turn:] + filesystems[:turn]:
                try:
                    figures, counts = one_round(fs, loc, args)
                except BenchError as e:
                    print(f"round {r + 1} {loc.name} {fs.label}: {e}", file=sys.stderr)
                    continue
                rows[loc][fs.label].append(figures)
                if counts:
                    requests[loc][fs.label] = counts
                shown = " ".join(f"{x:.0f}" for x in figures)
                print(f"round {r + 1}/{args.runs} {loc.name} {fs.label}: {shown}", file=sys.stderr)

    for loc in where:
        summarise(loc.title, COLUMNS, rows[loc], ours)
        for label, per_workload in requests[loc].items():
            print(f"\n{label}: FUSE requests per workload (last round, {loc.name}):")
            for workload, ops_done in per_workload.items():
                ops = ", ".join(f"{op} {n:,}" for op, n in ops_done.items()) or "none"
                print(f"  {workload:<10} {ops}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted (every mount of this run was unmounted)", 130)
