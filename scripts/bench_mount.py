#!/usr/bin/env python3
"""Mount time of a vault holding many files (target: 100,000 files under 3 s).

Builds a vault with ``--files`` small files (in directories of 1,000) through
the engine directly, then times ``fusefs mount`` (password derivation,
bootstrap, mounting, until the command returns with the mount ready) and a
first ``stat`` of a file in the mount, ``--runs`` times: once with the whole
history in the log, once after log compaction (snapshot + short log), and
once for an empty vault with the same key derivation costs: what a mount
costs before any metadata (Python's start, the CLI, Argon2id, importing
trio and pyfuse3, the mount itself), so the difference to the others is
what loading the files' metadata costs. Prints fastest and median. For
comparison, gocryptfs is timed mounting a tree of the same shape in the
same rounds (its mount does not read metadata up front).

Building 100,000 files takes seconds: ``--keep DIR`` builds the vaults
(log only, compacted, empty) in DIR once and reuses them on later runs (each run
mounts fresh copies of them, made in DIR, so the log files every mount adds
do not pile up from one invocation to the next). ``--repo``
(repeatable) names the fusefs checkouts to time, each run as ``python -m
fusefs`` from its directory, in interleaved rounds, so a "before" and an
"after" build are compared in the same minute.

    python3 scripts/bench_mount.py --files 100000 --runs 5
    python3 scripts/bench_mount.py --keep /dev/shm/mount100k --repo ../before --repo .
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
from typing import Any

PASSWORD = b"bench-password"
#: The file each mount's first stat asks for (the empty vault: its root).
FIRST_FILE = Path("dir00000") / "file-0000000.txt"
#: gocryptfs complains about syslog on stderr.
GC_QUIET: dict[str, Any] = {"check": True, "stderr": subprocess.DEVNULL}


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


def vaults(keep: Path, files: int) -> dict[str, Path]:
    """The vaults (log only, compacted, empty) of ``files`` files in ``keep``, built if missing."""
    log_only, compacted = keep / f"log.{files}", keep / f"compacted.{files}"
    empty = keep / "empty"
    if not empty.exists():
        from fusefs import Vault

        Vault.create(keep / "building", PASSWORD).close()
        (keep / "building").rename(empty)
    if not log_only.exists():
        build_vault(keep / "building", files)
        (keep / "building").rename(log_only)
    if not compacted.exists():
        shutil.copytree(log_only, keep / "copying", symlinks=True)
        compact(keep / "copying")
        (keep / "copying").rename(compacted)
    return {"log only": log_only, "after compaction": compacted, "empty (the floor)": empty}


def time_mount(repo: Path, vault: Path, mnt: Path, passfile: Path) -> tuple[float, float]:
    """(until the command returned, until a first stat of a file answered), seconds.

    In the empty vault, the stat is of the mount's root (one request too).
    """
    probe = mnt if vault.name == "empty" else mnt / FIRST_FILE
    cli = [sys.executable, "-m", "fusefs"]
    # Each vault remembers how far it got in a state directory of its own:
    # the compacted vault is a copy of the other (same vault id), behind it.
    env = {**os.environ, "FUSEFS_STATE_DIR": f"{vault}.state"}
    t = time.perf_counter()
    subprocess.run(
        [*cli, "mount", vault, mnt, "--passfile", passfile], check=True, cwd=repo, env=env
    )
    mounted = time.perf_counter() - t
    os.stat(probe)
    first_stat = time.perf_counter() - t
    subprocess.run([*cli, "umount", mnt], check=True, cwd=repo)
    return mounted, first_stat


def gocryptfs_tree(root: Path, keep: Path, files: int) -> tuple[Path, Path, Path] | None:
    """(cipher dir, mount point, password file) of a gocryptfs tree of ``files``
    files, built if missing; ``None`` without gocryptfs."""
    if shutil.which("gocryptfs") is None:
        print("gocryptfs not installed: skipped (apt-get install gocryptfs)", file=sys.stderr)
        return None
    cipher, mnt, pw = keep / f"gc.cipher.{files}", root / "gc.mnt", root / "gc.pass"
    mnt.mkdir()
    pw.write_bytes(PASSWORD + b"\n")
    if not cipher.exists():
        building = keep / "gc.building"
        building.mkdir()
        subprocess.run(["gocryptfs", "-q", "-init", "-passfile", pw, building], **GC_QUIET)
        subprocess.run(["gocryptfs", "-q", "-passfile", pw, building, mnt], **GC_QUIET)
        for d in range(0, files, 1000):
            sub = mnt / f"dir{d // 1000:05d}"
            sub.mkdir()
            for i in range(d, min(d + 1000, files)):
                (sub / f"file-{i:07d}.txt").write_bytes(b"content of file %d\n" % i)
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        building.rename(cipher)
    return cipher, mnt, pw


def time_gocryptfs(cipher: Path, mnt: Path, pw: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["gocryptfs", "-q", "-passfile", pw, cipher, mnt], **GC_QUIET)
    os.stat(mnt / FIRST_FILE)
    took = time.perf_counter() - t
    subprocess.run(["fusermount3", "-u", mnt], check=True)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    ap.add_argument("--keep", type=Path, help="build the vaults here once and reuse them")
    ap.add_argument(
        "--repo", type=Path, action="append", help="fusefs checkout to time (repeatable)"
    )
    ap.add_argument("--no-peer", action="store_true", help="skip gocryptfs")
    args = ap.parse_args()
    repos = [r.resolve() for r in args.repo or [Path(__file__).resolve().parent.parent]]
    root = Path(tempfile.mkdtemp(prefix="bench_mount.", dir=args.dir))
    cleanup = [root]
    try:
        mnt, passfile = root / "mnt", root / "pass"
        mnt.mkdir()
        passfile.write_bytes(PASSWORD + b"\n")
        keep = args.keep or root
        keep.mkdir(parents=True, exist_ok=True)
        # Every mount starts a log file of its own, so a kept vault would
        # grow one per run over invocations: each invocation mounts fresh
        # copies, on the kept vaults' file system (with state directories
        # of their own beside them), removed at the end.
        work = Path(tempfile.mkdtemp(prefix="run.", dir=keep))
        cleanup.append(work)
        built = {}
        for label, vault in vaults(keep, args.files).items():
            built[label] = work / vault.name
            shutil.copytree(vault, built[label], symlinks=True)
        for repo in repos:
            # As an installed package has them (pip compiles at install, and
            # Python caches what it imports unless PYTHONDONTWRITEBYTECODE is
            # set, as in some sandboxes): without, each mount compiled ~35 ms
            # of fusefs sources that users never compile twice.
            subprocess.run([sys.executable, "-m", "compileall", "-q", repo / "fusefs"], check=True)
        gc = None if args.no_peer else gocryptfs_tree(root, keep, args.files)
        times: dict[tuple[str, Path], list[tuple[float, float]]] = {}
        peer: list[float] = []
        for _ in range(args.runs):  # each round: every vault, checkout and the peer
            for label, vault in built.items():
                for repo in repos:
                    result = time_mount(repo, vault, mnt, passfile)
                    times.setdefault((label, repo), []).append(result)
            if gc is not None:
                peer.append(time_gocryptfs(*gc))
        rows = []
        for (label, repo), results in times.items():
            name = f"fusefs {repo.name}, {label}" if len(repos) > 1 else f"fusefs, {label}"
            rows.append((name, [r[0] for r in results], [r[1] for r in results]))
        print(f"\nmount time of a vault with {args.files:,} files ({args.runs} runs)")
        print(f"{'':<40}{'mount returns (s)':>22}{'+ first stat (s)':>22}")
        print(f"{'':<40}{'fastest / median':>22}{'fastest / median':>22}")
        for label, ready, first in rows:
            print(
                f"{label:<40}{min(ready):>12.3f} / {statistics.median(ready):<7.3f}"
                f"{min(first):>12.3f} / {statistics.median(first):<7.3f}"
            )
        if peer:
            print(f"{'gocryptfs':<40}{'':>22}{min(peer):>12.3f} / {statistics.median(peer):<7.3f}")
    finally:
        subprocess.run(["fusermount3", "-u", "-q", root / "mnt"], capture_output=True)
        subprocess.run(["fusermount3", "-u", "-q", root / "gc.mnt"], capture_output=True)
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
