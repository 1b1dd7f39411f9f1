#!/usr/bin/env python3
"""How much background compaction slows a sequential write (issue 13:
by at most 20 %).

Builds once (cached in ``--dir``, keyed by its parameters) a vault full of
dead data: ``--vault-bytes`` of 1 MiB files (incompressible), three of every
five deleted, so every pack is 60 % dead and the scheduler's policy is due
at once (dead bytes >= 256 MiB and >= 30 % of the packs: see
``rustlib/core/src/scheduler/policy.rs``); and the same vault with only the
files that stay written (the same live data, nothing dead). Each run
writes ``--write-bytes`` sequentially (1 MiB ``write`` calls, ``fsync`` at
the end), timed, in a new mount (``cp -a`` of the vault, then ``fusefs
mount``) each time:

* **no compaction**: in the vault with nothing dead (no cycle runs);
* **during compaction**: in the dead vault, started once ``fusefs stats``
  says the first cycle is running; the run is marked if the cycle ended
  before the ``fsync`` returned (then it did not cover the whole write);
* **after the cycle**: once it has ended, the same write again in the same
  mount (the policy runs no second cycle within 30 s).

Each write is the first of a new daemon (the first two), so that neither
pays alone for what a new mount costs; the two mounts take turns going
first. The first run is a warm-up (it touches the memory the runs use) and
is not counted. Prints the fastest and the median rate of each, the ratios
(the issue's: during / no compaction >= 0.8), the cycle's length and bytes
reclaimed. Run it with the vault on the machine's disk and on tmpfs; needs
root (mounting). Not a test: timings on a shared VM are noisy.

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


def build_vault(path: Path, total: int, pool: memoryview, control: bool) -> None:
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


def fs_type(path: Path) -> str:
    done = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)], capture_output=True, text=True
    )
    return (done.stdout.split() or ["?"])[0]


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


def mounted_copy(src: Path, root: Path) -> tuple[Path, Path]:
    """``src`` copied (``cp -a``, synced) and mounted: (copy, mount point)."""
    work, mnt = root / "work", root / "mnt"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["cp", "-a", src, work], check=True)
    subprocess.run(["sync"], check=True)
    fusefs("mount", work, mnt, "--passfile", root / "pass")
    return work, mnt


def fresh_write(
    live: Path, root: Path, args: argparse.Namespace, pool: memoryview, n: int
) -> float:
    """The write in a new mount of the vault with nothing dead: no cycle runs."""
    work, mnt = mounted_copy(live, root)
    try:
        seconds = write_file(mnt / "fresh.bin", args.write_bytes, pool, 3 * n)
        e = engine(mnt)
        if e["compacting_now"] or e["last_compaction_seconds_ago"] is not None:
            sys.exit("bench_compaction_impact: a cycle ran in the vault with nothing dead")
    finally:
        fusefs("umount", mnt)
        shutil.rmtree(work, ignore_errors=True)
    return seconds


def compaction_writes(
    dead: Path, root: Path, args: argparse.Namespace, pool: memoryview, n: int
) -> dict[str, Any]:
    """In a new mount of the dead vault: the write during the first cycle,
    then (the cycle over) the same write again."""
    work, mnt = mounted_copy(dead, root)
    try:
        started = time.monotonic()
        wait_for(mnt, "a compaction cycle starts", lambda e: e["compacting_now"])
        waited = time.monotonic() - started
        during = write_file(mnt / "during.bin", args.write_bytes, pool, 3 * n + 1)
        covered = bool(engine(mnt)["compacting_now"])
        e = wait_for(mnt, "the cycle ends", lambda e: not e["compacting_now"])
        cycle = time.monotonic() - started - waited
        after = write_file(mnt / "after.bin", args.write_bytes, pool, 3 * n + 2)
    finally:
        fusefs("umount", mnt)
        shutil.rmtree(work, ignore_errors=True)
    reclaimed = e["last_compaction_reclaimed_bytes"] or 0
    return {
        "during": during,
        "after": after,
        "covered": covered,
        "cycle": cycle,
        "reclaimed": reclaimed,
    }


def one_run(
    dead: Path, live: Path, root: Path, args: argparse.Namespace, pool: memoryview, n: int
) -> dict[str, Any]:
    """Both mounts, in turns first (drift of the machine cancels out)."""
    if n % 2:
        fresh = fresh_write(live, root, args, pool, n)
        r = compaction_writes(dead, root, args, pool, n)
    else:
        r = compaction_writes(dead, root, args, pool, n)
        fresh = fresh_write(live, root, args, pool, n)
    return {**r, "fresh": fresh}


def fastest_median(label: str, rates: list[float]) -> str:
    return f"{label:<34}{max(rates):>10.0f}{statistics.median(rates):>10.0f}"


def ratio_line(label: str, num: list[float], den: list[float]) -> str:
    per_run = " ".join(f"{a / b:.2f}" for a, b in zip(num, den, strict=True))
    return (
        f"{label:<34}{max(num) / max(den):>10.2f}"
        f"{statistics.median(num) / statistics.median(den):>10.2f}   (per run: {per_run})"
    )


def build(path: Path, what: str, make: Any) -> None:
    marker = path.with_suffix(".done")
    if marker.exists():
        return
    print(f"building {what} ...", file=sys.stderr)
    shutil.rmtree(path, ignore_errors=True)
    make()
    subprocess.run(["sync"], check=True)
    marker.write_text("built\n")


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
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_compaction_impact: mounting needs root")
    if args.vault_bytes < 512 * MIB:
        sys.exit(
            "bench_compaction_impact: --vault-bytes must be at least 512M "
            "(the policy wants 256 MiB dead)"
        )
    root = args.dir / f"bench_compaction_impact-v{args.vault_bytes}"
    (root / "mnt").mkdir(parents=True, exist_ok=True)
    (root / "pass").write_bytes(PASSWORD + b"\n")
    dead, live = root / "dead", root / "live"
    pool = random_pool()
    gib = args.vault_bytes / 2**30
    build(
        dead,
        f"a vault of {gib:.2f} GiB, 60 % dead",
        lambda: build_vault(dead, args.vault_bytes, pool, control=False),
    )
    build(
        live,
        "the same vault, nothing dead",
        lambda: build_vault(live, args.vault_bytes, pool, control=True),
    )
    runs = []
    mb = args.write_bytes / MIB
    for n in range(args.runs + 1):
        r = one_run(dead, live, root, args, pool, n)
        print(
            f"{'warm-up' if n == 0 else f'run {n}'}: no compaction {mb / r['fresh']:.0f}, "
            f"during {mb / r['during']:.0f}, after {mb / r['after']:.0f} MiB/s; "
            f"cycle {r['cycle']:.1f} s "
            f"({'covered the write' if r['covered'] else 'ENDED BEFORE THE WRITE DID'}), "
            f"reclaimed {r['reclaimed'] / MIB:,.0f} MiB",
            file=sys.stderr,
        )
        if n:
            runs.append(r)
    fresh = [mb / r["fresh"] for r in runs]
    during = [mb / r["during"] for r in runs]
    after = [mb / r["after"] for r in runs]
    covered = sum(r["covered"] for r in runs)
    print(
        f"\nsequential write of {mb:,.0f} MiB + fsync, vault on {args.dir} ({fs_type(args.dir)}); "
        f"{len(runs)} runs ({covered} with the cycle covering the whole write)"
    )
    print(f"{'MiB/s':<34}{'fastest':>10}{'median':>10}")
    print(fastest_median("no compaction (new mount)", fresh))
    print(fastest_median("during compaction (new mount)", during))
    print(fastest_median("after the cycle (same mount)", after))
    print(ratio_line("during / no compaction", during, fresh))
    print(ratio_line("during / after the cycle", during, after))
    cycles = [r["cycle"] for r in runs]
    print(
        f"{'compaction cycle (s)':<34}{min(cycles):>10.1f}{statistics.median(cycles):>10.1f}"
        f"   reclaimed {statistics.median([r['reclaimed'] for r in runs]) / MIB:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
