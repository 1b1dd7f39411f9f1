#!/usr/bin/env python3
"""How much background compaction slows a sequential write (issue 13:
by at most 20 %).

Builds once (cached in ``--dir``, keyed by its parameters) a vault full of
dead data: ``--vault-bytes`` of 1 MiB files (incompressible), three of every
five deleted, so every pack is 60 % dead and the scheduler's policy is due
at once (dead bytes >= 256 MiB and >= 30 % of the packs: see
``rustlib/core/src/scheduler/policy.rs``). Each run copies it (``cp -a``),
mounts the copy with the CLI and:

1. waits until ``fusefs stats`` says a compaction cycle is running, then
   writes ``--write-bytes`` sequentially (1 MiB ``write`` calls, ``fsync`` at
   the end) and times it: **during compaction**; it checks the cycle was
   still running when the ``fsync`` returned (else the run is marked: the
   cycle did not cover the whole write);
2. waits until the cycle has ended and writes the same amount to another
   file: **no compaction** (the policy runs no second cycle within 30 s).

``--control``: a vault with the same live data and nothing dead, so no
cycle runs: the two writes' ratio without compaction (the order of the
writes and noise).

The first run is a warm-up (it touches the memory the runs use) and is not
counted. Prints the fastest and the median write rate of each, their
ratios, and the cycle's length and bytes copied. Run it with the vault on the
machine's disk and on tmpfs; needs root (mounting). Not a test.

    python3 scripts/bench_compaction_impact.py --dir /var/tmp --runs 5
    python3 scripts/bench_compaction_impact.py --dir /dev/shm --runs 5
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this worktree's fusefs, as the CLI runs below
PASSWORD = b"bench-password"
MIB = 1 << 20
FILE_BYTES = MIB
POOL_BYTES = 64 * MIB


def parse_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def random_pool() -> memoryview:
    return memoryview(random.Random(13).randbytes(POOL_BYTES))


def chunks(pool: memoryview, total: int, rng: random.Random) -> Any:
    """``total`` incompressible bytes in 1 MiB pieces cut from ``pool``."""
    for off in range(0, total, MIB):
        n = min(MIB, total - off)
        start = rng.randrange(POOL_BYTES - n + 1)
        yield pool[start : start + n]


def build_dead_vault(path: Path, total: int, pool: memoryview, control: bool) -> None:
    """1 MiB files; files 0, 1, 2 of every 5 deleted: every pack 60 % dead.
    ``control``: only the files that stay are written (the same live data,
    nothing dead: no compaction is due)."""
    from fusefs import ROOT_INO, Vault

    rng = random.Random(1)
    files = total // FILE_BYTES
    with Vault.create(path, PASSWORD) as v:
        for i in range(files):
            data = next(chunks(pool, FILE_BYTES, rng)).tobytes()
            if control and i % 5 < 3:
                continue
            ino = v.create_file(ROOT_INO, b"f%07d" % i, 0o644, 0, 0).ino
            v.write(ino, 0, data)
        for i in range(files):
            if i % 5 < 3 and not control:
                v.unlink(ROOT_INO, b"f%07d" % i)


def fusefs(*args: str | Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "fusefs", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        sys.exit(
            f"bench_compaction_impact: fusefs {' '.join(map(str, args))} failed "
            f"({done.returncode}): {done.stderr.strip()}"
        )


def engine(mnt: Path) -> dict[str, Any]:
    from fusefs import control

    result: dict[str, Any] = control.stats(str(mnt))["engine"]
    return result


def wait_for(mnt: Path, what: str, ok: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = engine(mnt)
        if ok(e):
            return e
        time.sleep(0.01)
    sys.exit(f"bench_compaction_impact: {what}: not within {timeout:.0f} s")


def write_file(path: Path, total: int, pool: memoryview, seed: int) -> float:
    """Seconds to write ``total`` bytes sequentially and fsync them."""
    rng = random.Random(seed)
    pieces = [p for p in chunks(pool, total, rng)]  # ready before the clock starts
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for p in pieces:
            os.write(fd, p)
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t


def one_run(
    src: Path, root: Path, args: argparse.Namespace, pool: memoryview, n: int
) -> dict[str, Any]:
    work, mnt, passfile = root / "work", root / "mnt", root / "pass"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-a", src, work], check=True)
    subprocess.run(["sync"], check=True)
    fusefs("mount", work, mnt, "--passfile", passfile)
    try:
        started = time.monotonic()
        if not args.control:
            wait_for(mnt, "a compaction cycle starts", lambda e: e["compacting_now"])
        waited = time.monotonic() - started
        during = write_file(mnt / "during.bin", args.write_bytes, pool, 2 * n)
        covered = bool(engine(mnt)["compacting_now"])
        if args.control:  # no cycle at all: covered means "none ran"
            covered = engine(mnt)["last_compaction_seconds_ago"] is None and not covered
        e = wait_for(mnt, "the cycle ends", lambda e: not e["compacting_now"])
        cycle = time.monotonic() - started - waited
        reclaimed = e["last_compaction_reclaimed_bytes"] or 0
        idle = write_file(mnt / "after.bin", args.write_bytes, pool, 2 * n + 1)
        again = engine(mnt)["compaction_cycles"]
    finally:
        fusefs("umount", mnt)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "during": during,
        "idle": idle,
        "covered": covered,
        "cycle": cycle,
        "reclaimed": reclaimed,
        "cycles": again,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    ap.add_argument(
        "--vault-bytes",
        type=parse_bytes,
        default=4 << 30,
        help="data written before 60 %% of it is deleted (4G)",
    )
    ap.add_argument(
        "--write-bytes", type=parse_bytes, default=1 << 30, help="the sequential write timed (1G)"
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--control",
        action="store_true",
        help="the same live data, nothing dead: both writes without compaction "
        "(how much the order of the two writes alone accounts for)",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_compaction_impact: mounting needs root")
    if args.vault_bytes < 512 * MIB:
        sys.exit(
            "bench_compaction_impact: --vault-bytes must be at least 512M "
            "(the policy wants 256 MiB dead)"
        )
    control = "-control" if args.control else ""
    root = args.dir / f"bench_compaction_impact-v{args.vault_bytes}{control}"
    (root / "mnt").mkdir(parents=True, exist_ok=True)
    (root / "pass").write_bytes(PASSWORD + b"\n")
    src, marker = root / "vault", root / "vault.done"
    pool = random_pool()
    if not marker.exists():
        print(
            f"building a vault of {args.vault_bytes / 2**30:.2f} GiB, 60 % dead ...",
            file=sys.stderr,
        )
        shutil.rmtree(src, ignore_errors=True)
        build_dead_vault(src, args.vault_bytes, pool, args.control)
        subprocess.run(["sync"], check=True)
        marker.write_text("built\n")
    runs = []
    for n in range(args.runs + 1):
        r = one_run(src, root, args, pool, n)
        mb = args.write_bytes / MIB
        print(
            f"{'warm-up' if n == 0 else f'run {n}'}: during {mb / r['during']:.0f} MiB/s, "
            f"idle {mb / r['idle']:.0f} MiB/s, cycle {r['cycle']:.1f} s "
            f"({'covered the write' if r['covered'] else 'ENDED BEFORE THE WRITE DID'}), "
            f"reclaimed {r['reclaimed'] / MIB:,.0f} MiB",
            file=sys.stderr,
        )
        if n:
            runs.append(r)
    mb = args.write_bytes / MIB
    during = [mb / r["during"] for r in runs]
    idle = [mb / r["idle"] for r in runs]
    ratios = [r["idle"] / r["during"] for r in runs]  # seconds idle / during = rate during / idle
    print(
        f"\nsequential write of {mb:,.0f} MiB + fsync, vault on {args.dir}; "
        f"{len(runs)} runs ({sum(r['covered'] for r in runs)} with the cycle covering "
        f"the whole write)"
    )
    print(f"{'':<28}{'fastest':>10}{'median':>10}")
    print(f"{'no compaction (MiB/s)':<28}{max(idle):>10.0f}{statistics.median(idle):>10.0f}")
    print(
        f"{'during compaction (MiB/s)':<28}{max(during):>10.0f}{statistics.median(during):>10.0f}"
    )
    print(
        f"{'during / no compaction':<28}{max(during) / max(idle):>10.2f}"
        f"{statistics.median(during) / statistics.median(idle):>10.2f}"
        f"   (per run: {' '.join(f'{x:.2f}' for x in ratios)})"
    )
    cycles = [r["cycle"] for r in runs]
    print(
        f"{'compaction cycle (s)':<28}{min(cycles):>10.1f}{statistics.median(cycles):>10.1f}"
        f"   reclaimed {statistics.median([r['reclaimed'] for r in runs]) / MIB:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
