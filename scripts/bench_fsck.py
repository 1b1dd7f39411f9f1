#!/usr/bin/env python3
"""Time ``fusefs fsck`` and ``fusefs compact`` on a big vault (issue 13).

Targets: a vault of 100,000 files and 4 GiB checks in under 60 s with frame
verification and under 5 s with ``--quick``; ``fusefs compact`` after half
the files are deleted is measured (time, bytes moved and reclaimed).

For each ``--dir`` (give the machine's disk and a tmpfs, e.g. ``--dir
/var/tmp --dir /dev/shm``) the script builds the vault once through the
engine (``fusefs.Vault``: mounting to fill 4 GiB would be too slow), keyed
by its parameters, and keeps it there for the next run of the script. File
sizes are a realistic mix: 99 % small files (log-uniform, 256 B to 128 KiB)
holding at most half the data, 1 % large files (log-uniform weights) holding
the rest; the data is incompressible (compression is on by default), taken
at random offsets of a random pool (every file has its own key, so no two
frames are alike). Then, with the CLI as a user runs it (``python -m fusefs``
with this worktree first on the path; times are wall clock, Argon2 and start
up included):

* ``fsck`` and ``fsck --quick``, warm page cache (one untimed run first
  touches the memory and the cache) and, on a disk, cold (``sync``, then
  ``echo 3 > /proc/sys/vm/drop_caches`` before each run; needs root; on
  tmpfs there is no cold cache);
* before each run a copy of the vault (``cp -a``), a random half of its
  files deleted (the same half each time, so each run starts equal), then
  ``fusefs compact --json`` timed: time, bytes copied and reclaimed.

Prints the fastest and the median of ``--runs`` runs of each. Not a test:
timings on a shared VM are noisy.

    python3 scripts/bench_fsck.py --dir /var/tmp --dir /dev/shm --runs 5
    python3 scripts/bench_fsck.py --files 2000 --bytes 64M --runs 3 --dir /dev/shm  # a quick try
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this worktree's fusefs, as the CLI runs below
PASSWORD = b"bench-password"
FILES_PER_DIR = 1000
#: Random bytes the files' contents are cut from.
POOL_BYTES = 64 << 20
WRITE_CHUNK = 1 << 20
SMALL_MIN, SMALL_MAX = 256, 128 << 10
LARGE_MIN = 256 << 10
LARGE_SHARE = 0.01


def parse_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def file_sizes(files: int, total: int, seed: int) -> list[int]:
    """``files`` sizes summing to ``total``: many small files, some large ones."""
    rng = random.Random(seed)
    large = max(1, round(files * LARGE_SHARE)) if files > 1 else files
    small = files - large
    log_lo, log_hi = math.log(SMALL_MIN), math.log(SMALL_MAX)
    sizes = [int(math.exp(rng.uniform(log_lo, log_hi))) for _ in range(small)]
    budget = total // 2
    if sum(sizes) > budget:  # few bytes for many files: shrink the small ones
        scale = budget / sum(sizes)
        sizes = [max(1, int(s * scale)) for s in sizes]
    rest = total - sum(sizes)
    weights = [math.exp(rng.uniform(0, math.log(64))) for _ in range(large)]
    big = [
        max(LARGE_MIN if rest >= large * LARGE_MIN else 1, int(rest * w / sum(weights)))
        for w in weights
    ]
    big[-1] += rest - sum(big)
    sizes += big
    rng.shuffle(sizes)
    return sizes


def file_name(i: int) -> tuple[bytes, bytes]:
    return b"dir%05d" % (i // FILES_PER_DIR), b"file-%07d.dat" % i


def build_vault(path: Path, sizes: list[int], seed: int) -> None:
    from fusefs import ROOT_INO, Vault

    rng = random.Random(seed + 1)
    pool = memoryview(rng.randbytes(POOL_BYTES))
    started, written = time.perf_counter(), 0
    with Vault.create(path, PASSWORD) as v:
        dir_ino = 0
        for i, size in enumerate(sizes):
            dname, fname = file_name(i)
            if i % FILES_PER_DIR == 0:
                dir_ino = v.mkdir(ROOT_INO, dname, 0o755, 0, 0).ino
            ino = v.create_file(dir_ino, fname, 0o644, 0, 0).ino
            for off in range(0, size, WRITE_CHUNK):
                n = min(WRITE_CHUNK, size - off)
                start = rng.randrange(POOL_BYTES - n + 1)
                v.write(ino, off, pool[start : start + n].tobytes())
            written += size
            if i % 5000 == 4999:
                rate = written / 2**20 / (time.perf_counter() - started)
                print(
                    f"  {i + 1:,} files, {written / 2**30:.2f} GiB, {rate:.0f} MiB/s",
                    file=sys.stderr,
                )


def delete_half(path: Path, files: int, seed: int) -> None:
    from fusefs import ROOT_INO, Vault

    doomed = random.Random(seed + 2).sample(range(files), files // 2)
    with Vault.open(path, PASSWORD) as v:
        dirs: dict[bytes, int] = {}
        for i in sorted(doomed):
            dname, fname = file_name(i)
            if dname not in dirs:
                dirs[dname] = v.lookup(ROOT_INO, dname).ino
            v.unlink(dirs[dname], fname)


def cached(marker: Path, what: str, make: Callable[[], None]) -> None:
    """Run ``make()`` unless ``marker`` says an earlier run finished it."""
    if marker.exists():
        print(f"{what}: cached ({marker.parent})", file=sys.stderr)
        return
    print(f"{what} ...", file=sys.stderr)
    t = time.perf_counter()
    make()
    subprocess.run(["sync"], check=True)
    marker.write_text(f"built in {time.perf_counter() - t:.1f} s\n")
    print(f"{what}: {time.perf_counter() - t:.1f} s", file=sys.stderr)


def fusefs(*args: str | Path) -> tuple[float, dict[str, Any]]:
    """Wall-clock seconds of one CLI run, and its JSON report."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fusefs", *map(str, args), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(
            f"bench_fsck: fusefs {' '.join(map(str, args))} failed "
            f"({done.returncode}): {done.stderr.strip()}"
        )
    return seconds, json.loads(done.stdout)


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def fs_type(path: Path) -> str:
    done = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)], capture_output=True, text=True
    )
    return (done.stdout.split() or ["?"])[0]


@dataclass
class Row:
    label: str
    seconds: list[float] = field(default_factory=list)
    note: str = ""


def time_fsck(vault: Path, passfile: Path, quick: bool, cold: bool, runs: int) -> Row:
    args: list[str | Path] = ["fsck", vault, "--passfile", passfile]
    if quick:
        args.append("--quick")
    row = Row(f"fsck{' --quick' if quick else ''}, {'cold' if cold else 'warm'} cache")
    if not cold:
        fusefs(*args)  # touch the memory and fill the cache once
    for _ in range(runs):
        if cold:
            drop_caches()
        seconds, report = fusefs(*args)
        if report["findings"]:
            sys.exit(f"bench_fsck: {vault} is not clean: {report['findings'][:3]}")
        row.seconds.append(seconds)
        row.note = (
            f"{report['frames_verified']:,} frames, {report['bytes_verified'] / 2**30:.2f} GiB"
        )
    return row


def time_compact(
    vault: Path, work: Path, passfile: Path, args: argparse.Namespace, cold: bool
) -> Row:
    row = Row(f"compact, {'cold' if cold else 'warm'} cache")
    for _ in range(args.runs):
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["cp", "-a", vault, work], check=True)
        delete_half(work, args.files, args.seed)
        if cold:
            drop_caches()
        else:
            subprocess.run(["sync"], check=True)  # the copy's writeback is not compaction's
        ratio = ["--dead-ratio", str(args.dead_ratio)] if args.dead_ratio is not None else []
        seconds, r = fusefs("compact", work, "--passfile", passfile, *ratio)
        packs = r["packs"]
        row.seconds.append(seconds)
        row.note = (
            f"{packs['bytes_copied'] / 2**20:,.0f} MiB copied, "
            f"{packs['bytes_reclaimed'] / 2**20:,.0f} MiB reclaimed, "
            f"{packs['packs_deleted']} packs deleted"
        )
    shutil.rmtree(work, ignore_errors=True)
    return row


def bench_dir(base: Path, args: argparse.Namespace) -> list[Row]:
    root = base / f"bench_fsck-n{args.files}-d{args.bytes}-s{args.seed}"
    root.mkdir(parents=True, exist_ok=True)
    vault, passfile = root / "vault", root / "pass"
    passfile.write_bytes(PASSWORD + b"\n")
    sizes = file_sizes(args.files, args.bytes, args.seed)

    def build() -> None:
        shutil.rmtree(vault, ignore_errors=True)
        build_vault(vault, sizes, args.seed)

    cached(
        root / "vault.done", f"building {args.files:,} files, {args.bytes / 2**30:.2f} GiB", build
    )
    tmpfs = fs_type(base) == "tmpfs"
    colds = [False] if tmpfs or args.warm_only else [False, True]
    if not tmpfs and os.geteuid() != 0 and not args.warm_only:
        sys.exit("bench_fsck: dropping the page cache needs root (or --warm-only)")
    rows = []
    for quick in (False, True):
        for cold in colds:
            rows.append(time_fsck(vault, passfile, quick, cold, args.runs))
            print(
                f"  {rows[-1].label}: {' '.join(f'{s:.2f}' for s in rows[-1].seconds)}",
                file=sys.stderr,
            )
    if not args.no_compact:
        for cold in colds:
            rows.append(time_compact(vault, root / "work", passfile, args, cold))
            print(
                f"  {rows[-1].label}: {' '.join(f'{s:.2f}' for s in rows[-1].seconds)}",
                file=sys.stderr,
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--bytes", type=parse_bytes, default=4 << 30, help="data (4G, 512M, ...)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, action="append", help="where the vaults live (repeat)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--warm-only", action="store_true", help="no cold-cache runs")
    ap.add_argument("--dead-ratio", type=float, help="passed to fusefs compact")
    ap.add_argument("--no-compact", action="store_true", help="time fsck only")
    args = ap.parse_args()
    if args.files < 2 or args.bytes < args.files:
        sys.exit("bench_fsck: --files must be at least 2 and --bytes at least --files")
    dirs = args.dir or [Path("/var/tmp"), Path("/dev/shm")]
    table = []
    for base in dirs:
        base.mkdir(parents=True, exist_ok=True)
        print(f"{base} ({fs_type(base)}):", file=sys.stderr)
        table.append((base, bench_dir(base, args)))
    print(
        f"\n{args.files:,} files, {args.bytes / 2**30:.2f} GiB; wall-clock seconds of the "
        f"CLI, {args.runs} runs"
    )
    print(f"{'vault on':<24}{'command':<28}{'fastest':>9}{'median':>9}  ")
    for base, rows in table:
        where = f"{base} ({fs_type(base)})"
        for r in rows:
            print(
                f"{where:<24}{r.label:<28}{min(r.seconds):>9.2f}"
                f"{statistics.median(r.seconds):>9.2f}  {r.note}"
            )


if __name__ == "__main__":
    main()
