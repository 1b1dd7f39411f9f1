#!/usr/bin/env python3
"""fusefs against gocryptfs, securefs and CryFS on the six canonical workloads.

Runs the shared peers script (``../shared/bench/peers.sh``: sequential 1 GiB
write with fsync, cold sequential read, untar of Python's stdlib, cold
``ls -lR``, cold tar-read, ``rm -rf``; vault on tmpfs) ``--runs`` times with
one repetition each, so every run of every file system is interleaved with
the others and sees the same machine. Prints the fastest and the median of
each figure, then fusefs against the best peer as a ratio (> 1: fusefs is
faster). Installs the peers from Debian's packages when they are missing.

    python3 scripts/bench_fs.py --runs 5
    python3 scripts/bench_fs.py --runs 3 --fs fusefs gocryptfs   # fewer peers

Not a test: timings on shared VMs are noisy; read the medians beside the
fastest runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = REPO.parent / "shared" / "bench" / "peers.sh"
COLUMNS = ["write MB/s", "read MB/s", "untar s", "ls-lR s", "tarread s", "rm s"]
HIGHER_IS_BETTER = [True, True, False, False, False, False]
PACKAGES = {"gocryptfs": "gocryptfs", "securefs": "securefs", "cryfs": "cryfs"}


def ensure_installed(filesystems: list[str]) -> None:
    missing = [PACKAGES[fs] for fs in filesystems if fs in PACKAGES and not shutil.which(fs)]
    if shutil.which("bc") is None:
        missing.append("bc")
    if missing:
        print(f"installing {' '.join(missing)} ...", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    if "fusefs" in filesystems and not shutil.which("fusefs"):
        sys.exit("bench_fs: the fusefs command is not on PATH (run scripts/setup.sh first)")


def run_once(script: Path, filesystems: list[str], size_mb: int) -> dict[str, list[float]]:
    env = dict(os.environ, REPS="1", SIZE_MB=str(size_mb))
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


def ratio(ours: float, peer: float, higher_is_better: bool) -> float:
    """How many times better fusefs is than the peer (> 1: fusefs is faster)."""
    if higher_is_better:
        return ours / peer if peer else float("inf")
    return peer / ours if ours else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fs", nargs="+", default=["fusefs", "gocryptfs", "securefs", "cryfs"])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    args = ap.parse_args()
    if not args.script.exists():
        sys.exit(f"bench_fs: {args.script} not found (--script PATH)")
    ensure_installed(args.fs)

    runs: dict[str, list[list[float]]] = {fs: [] for fs in args.fs}
    for i in range(args.runs):
        result = run_once(args.script, args.fs, args.size_mb)
        for fs, row in result.items():
            runs[fs].append(row)
        done = ", ".join(f"{fs} {' '.join(f'{x:g}' for x in row)}" for fs, row in result.items())
        print(f"run {i + 1}/{args.runs}: {done}", file=sys.stderr)

    def best(values: list[float], higher: bool) -> float:
        return max(values) if higher else min(values)

    print(f"\n{'fs':<10}" + "".join(f"{c:>22}" for c in COLUMNS))
    print(f"{'':<10}" + "".join(f"{'fastest / median':>22}" for _ in COLUMNS))
    summary: dict[str, list[tuple[float, float]]] = {}
    for fs, rows in runs.items():
        if not rows:
            print(f"{fs:<10} (no successful run)")
            continue
        cols = list(zip(*rows, strict=True))
        summary[fs] = [
            (best(list(c), h), statistics.median(c))
            for c, h in zip(cols, HIGHER_IS_BETTER, strict=True)
        ]
        cells = "".join(f"{b:>12.2f} / {m:<7.2f}" for b, m in summary[fs])
        print(f"{fs:<10}{cells}")

    peers = [fs for fs in summary if fs != "fusefs"]
    if "fusefs" in summary and peers:
        print("\nfusefs vs the best peer (> 1.00: fusefs is faster), fastest / median:")
        for k, (col, higher) in enumerate(zip(COLUMNS, HIGHER_IS_BETTER, strict=True)):
            ours_best, ours_median = summary["fusefs"][k]
            peer_best = best([summary[p][k][0] for p in peers], higher)
            peer_median = best([summary[p][k][1] for p in peers], higher)
            who = next(p for p in peers if summary[p][k][0] == peer_best)

            print(
                f"  {col:<11} {ratio(ours_best, peer_best, higher):5.2f} / "
                f"{ratio(ours_median, peer_median, higher):5.2f}   (best peer: {who})"
            )


if __name__ == "__main__":
    main()
