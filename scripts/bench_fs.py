#!/usr/bin/env python3
"""fusefs against gocryptfs, securefs and CryFS on the six canonical workloads.

Runs the shared peers script (``../shared/bench/peers.sh``: sequential write
with fsync, cold sequential read, untar of Python's stdlib, cold ``ls -lR``,
cold tar-read, ``rm -rf``) ``--runs`` times with one repetition each, with the
vault on tmpfs (``/dev/shm/peerbench``) and on the machine's disk
(``/var/tmp/peerbench``, or ``--disk-dir``), as ``--where`` says. Round r runs
every location once, and in each every file system once, so the runs are
interleaved and see the same machine. Prints, per location, the fastest and
the median of each figure, then fusefs (and each ``--build``) against the best
peer as a ratio (> 1: fusefs is faster). Installs the peers from Debian's
packages when they are missing.

    python3 scripts/bench_fs.py --runs 5
    python3 scripts/bench_fs.py --runs 3 --where disk --fs fusefs gocryptfs
    python3 scripts/bench_fs.py --fs gocryptfs --build before=/work/main --build after=.

``--build NAME=REPO_DIR`` runs another checkout's fusefs too (peers.sh with a
``fusefs`` on PATH that runs ``python3 -m fusefs`` from REPO_DIR), labelled
NAME: how a "before" and an "after" build are compared back to back.

Not a test: timings on shared VMs are noisy; read the medians beside the
fastest runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from peerbench import (  # this directory: scripts/
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

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = REPO.parent / "shared" / "bench" / "peers.sh"
COLUMNS = [
    Column("write MB/s", True),
    Column("read MB/s", True),
    Column("untar s", False),
    Column("ls-lR s", False),
    Column("tarread s", False),
    Column("rm s", False),
]
FILESYSTEMS = ("fusefs", "gocryptfs", "securefs", "cryfs", "plain")
PACKAGES = ("gocryptfs", "securefs", "cryfs")


def run_once(
    script: Path, filesystems: list[str], size_mb: int, where: Location, env: dict[str, str]
) -> dict[str, list[float]]:
    """One repetition of peers.sh for ``filesystems`` with its work dir at ``where``."""
    env = dict(env, REPS="1", SIZE_MB=str(size_mb), W=str(where.work_dir))
    rand = where.work_dir / "rand.bin"
    if rand.exists() and rand.stat().st_size != size_mb * 2**20:
        rand.unlink()  # peers.sh keeps the file of an earlier --size-mb: MB/s would be wrong
    done = subprocess.run(
        ["bash", str(script), *filesystems], capture_output=True, text=True, env=env
    )
    results: dict[str, list[float]] = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) == 7 and fields[0] in filesystems:
            results[fields[0]] = [float(x) for x in fields[1:]]
        elif fields and fields[0] in filesystems:
            print(f"  {line}", file=sys.stderr)
    if done.returncode != 0 or not results:
        print(done.stderr[-2000:], file=sys.stderr)
    return results


def run_build(script: Path, build: Build, size_mb: int, where: Location) -> list[float] | None:
    """One repetition of peers.sh for ``build``'s fusefs (as ``fusefs`` on PATH)."""
    with build.on_path() as env:
        return run_once(script, ["fusefs"], size_mb, where, env).get("fusefs")


def main() -> None:
    ap = Parser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_common_options(ap)
    ap.add_argument("--fs", nargs="+", default=["fusefs", "gocryptfs", "securefs", "cryfs"])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    args = ap.parse_args()
    unknown = [fs for fs in args.fs if fs not in FILESYSTEMS]
    if unknown:
        fail(f"unknown file system {unknown[0]!r} (choose from {', '.join(FILESYSTEMS)})")
    if args.runs < 1 or args.size_mb < 1:
        fail("--runs and --size-mb must be at least 1")
    builds = parse_builds(args.build, args.fs)
    where = locations(args.where, args.disk_dir)
    if not args.script.exists():
        fail(f"{args.script} not found (--script PATH)")
    ensure_installed([p for p in PACKAGES if p in args.fs] + ["bc"])
    if "fusefs" in args.fs and not shutil.which("fusefs"):
        fail("the fusefs command is not on PATH (run scripts/setup.sh first)")

    labels = [*args.fs, *(b.name for b in builds)]
    rows: dict[Location, dict[str, list[list[float]]]] = {
        loc: {fs: [] for fs in labels} for loc in where
    }
    try:
        for i in range(args.runs):
            for loc in where:
                result = run_once(args.script, args.fs, args.size_mb, loc, dict(os.environ))
                for build in builds:
                    row = run_build(args.script, build, args.size_mb, loc)
                    if row is not None:
                        result[build.name] = row
                for fs, row in result.items():
                    rows[loc][fs].append(row)
                done = ", ".join(
                    f"{fs} {' '.join(f'{x:g}' for x in r)}" for fs, r in result.items()
                )
                print(f"run {i + 1}/{args.runs} {loc.name}: {done}", file=sys.stderr)

    finally:
        # peers.sh left to itself by Ctrl-C or a failure may leave a mount behind
        unmount_leftovers([loc.work_dir / f"{fs}.mnt" for loc in where for fs in FILESYSTEMS])

    ours = [fs for fs in labels if fs == "fusefs" or fs in {b.name for b in builds}]
    for loc in where:
        summarise(loc.title, COLUMNS, rows[loc], ours)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted", 130)
