#!/usr/bin/env python3
"""Mount time of a vault holding many files (target: 100,000 files under 3 s).

Builds a vault with ``--files`` small files (in directories of 1,000) through
the engine directly, then times ``fusefs mount`` (password derivation,
bootstrap, mounting, until the command returns with the mount ready) and a
first ``stat`` of a file in the mount, ``--runs`` times: once with the whole
history in the log, once after log compaction (snapshot + short log). Prints
fastest and median. For comparison, gocryptfs is timed mounting a tree of the
same shape in the same run (its mount does not read metadata up front).

    python3 scripts/bench_mount.py --files 100000 --runs 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = b"bench-password"


def build_vault(path: Path, files: int) -> None:
    from fusefs import ROOT_INO, Vault

    t = time.perf_counter()
    with Vault.create(path, PASSWORD) as v:
        for d in range(0, files, 1000):
            dir_ino = v.mkdir(ROOT_INO, b"dir%05d" % (d // 1000), 0o755, 0, 0).ino
            for i in range(d, min(d + 1000, files)):
                ino = v.create_file(dir_ino, b"file-%07d.txt" % i, 0o644, 0, 0).ino
                v.write(ino, 0, b"content of file %d\n" % i)
    print(f"built {files:,} files in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def compact(path: Path) -> None:
    from fusefs import Vault

    with Vault.open(path, PASSWORD) as v:
        v.compact_log()


def time_mount(vault: Path, mnt: Path, passfile: Path) -> tuple[float, float]:
    t = time.perf_counter()
    subprocess.run(["fusefs", "mount", vault, mnt, "--passfile", passfile], check=True)
    mounted = time.perf_counter() - t
    os.stat(mnt / "dir00000" / "file-0000000.txt")
    first_stat = time.perf_counter() - t
    subprocess.run(["fusefs", "umount", mnt], check=True)
    return mounted, first_stat


def time_gocryptfs(root: Path, files: int, runs: int) -> list[float]:
    if shutil.which("gocryptfs") is None:
        print("gocryptfs not installed: skipped (apt-get install gocryptfs)", file=sys.stderr)
        return []
    cipher, mnt, pw = root / "gc.cipher", root / "gc.mnt", root / "gc.pass"
    for p in (cipher, mnt):
        p.mkdir()
    pw.write_bytes(PASSWORD + b"\n")
    quiet = {"check": True, "stderr": subprocess.DEVNULL}  # it complains about syslog
    subprocess.run(["gocryptfs", "-q", "-init", "-passfile", pw, cipher], **quiet)
    subprocess.run(["gocryptfs", "-q", "-passfile", pw, cipher, mnt], **quiet)
    for d in range(0, files, 1000):
        sub = mnt / f"dir{d // 1000:05d}"
        sub.mkdir()
        for i in range(d, min(d + 1000, files)):
            (sub / f"file-{i:07d}.txt").write_bytes(b"content of file %d\n" % i)
    subprocess.run(["fusermount3", "-u", mnt], check=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(["gocryptfs", "-q", "-passfile", pw, cipher, mnt], **quiet)
        os.stat(mnt / "dir00000" / "file-0000000.txt")
        times.append(time.perf_counter() - t)
        subprocess.run(["fusermount3", "-u", mnt], check=True)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_mount.", dir=args.dir))
    try:
        vault, mnt, passfile = root / "vault", root / "mnt", root / "pass"
        mnt.mkdir()
        passfile.write_bytes(PASSWORD + b"\n")
        build_vault(vault, args.files)
        rows = []
        for label in ("log only", "after compaction"):
            if label == "after compaction":
                compact(vault)
            results = [time_mount(vault, mnt, passfile) for _ in range(args.runs)]
            ready = [r[0] for r in results]
            first = [r[1] for r in results]
            rows.append((f"fusefs, {label}", ready, first))
        peer = time_gocryptfs(root, args.files, args.runs)
        print(f"\nmount time of a vault with {args.files:,} files ({args.runs} runs)")
        print(f"{'':<28}{'mount returns (s)':>22}{'+ first stat (s)':>22}")
        print(f"{'':<28}{'fastest / median':>22}{'fastest / median':>22}")
        for label, ready, first in rows:
            print(
                f"{label:<28}{min(ready):>12.3f} / {statistics.median(ready):<7.3f}"
                f"{min(first):>12.3f} / {statistics.median(first):<7.3f}"
            )
        if peer:
            print(f"{'gocryptfs':<28}{'':>22}{min(peer):>12.3f} / {statistics.median(peer):<7.3f}")
    finally:
        subprocess.run(["fusermount3", "-u", "-q", root / "mnt"], capture_output=True)
        subprocess.run(["fusermount3", "-u", "-q", root / "gc.mnt"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
