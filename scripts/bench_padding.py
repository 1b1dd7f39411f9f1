#!/usr/bin/env python3
"""What vault format 2's padding costs in space: the same trees written
through this build and through another (``--native``, e.g. a build of
format 1), and the bytes each vault then takes, by kind of file.

    python3 scripts/bench_padding.py --native /tmp/before.so --dir /var/tmp/pad

Trees: 10,000 files of 1 KB in 100 directories; 100 files of 1 MiB; one
file grown by 2,000 appends of 100 bytes, each fsync'd (a log); 1,000
files of random sizes up to 64 KiB. Sizes are of the files' lengths
(``du --apparent-size``), after a clean close. Not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
from pathlib import Path

from bench_fsync import load  # this directory: scripts/


def small_files(v: object, root: int) -> None:
    data = random.Random(1)
    for d in range(100):
        dino = v.mkdir(root, f"d{d}".encode(), 0o755, 0, 0).ino  # type: ignore[attr-defined]
        for f in range(100):
            a = v.create_file(dino, f"file-{f}.txt".encode(), 0o644, 0, 0)  # type: ignore[attr-defined]
            v.write(a.ino, 0, data.randbytes(1000))  # type: ignore[attr-defined]


def big_files(v: object, root: int) -> None:
    for f in range(100):
        a = v.create_file(root, f"big{f}".encode(), 0o644, 0, 0)  # type: ignore[attr-defined]
        v.write(a.ino, 0, os.urandom(1 << 20))  # type: ignore[attr-defined]


def appends(v: object, root: int) -> None:
    a = v.create_file(root, b"log", 0o644, 0, 0)  # type: ignore[attr-defined]
    for k in range(2000):
        v.write(a.ino, k * 100, os.urandom(100))  # type: ignore[attr-defined]
        v.fsync(a.ino)  # type: ignore[attr-defined]


def mixed(v: object, root: int) -> None:
    rng = random.Random(2)
    for f in range(1000):
        a = v.create_file(root, f"m{f}".encode(), 0o644, 0, 0)  # type: ignore[attr-defined]
        v.write(a.ino, 0, rng.randbytes(rng.randint(1, 65536)))  # type: ignore[attr-defined]


TREES = {
    "10,000 x 1 KB": small_files,
    "100 x 1 MiB": big_files,
    "2,000 fsync'd appends": appends,
    "1,000 x up to 64 KiB": mixed,
}


def sizes(vault: Path) -> dict[str, int]:
    out = {"packs": 0, "log": 0, "snap": 0, "mirror": 0}
    for p in vault.rglob("*"):
        if p.is_file():
            top = p.relative_to(vault).parts[0]
            if top in out:
                out[top] += p.stat().st_size
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--native", required=True, help="the other build of _native")
    a = p.parse_args()
    builds = {"this build": load(None), "--native": load(a.native)}
    print("| tree | build | packs | log | snapshots | mirror | total |")
    print("|---|---|---|---|---|---|---|")
    for tree, make in TREES.items():
        for name, native in builds.items():
            where = Path(tempfile.mkdtemp(dir=a.dir))
            vault = where / "v"
            with native.Vault.create(vault, b"pw", argon2_m_kib=64, argon2_t=1) as v:
                make(v, native.ROOT_INO)
            s = sizes(vault)
            total = sum(s.values())
            row = " | ".join(f"{s[k] / 1e6:.2f} MB" for k in ("packs", "log", "snap", "mirror"))
            print(f"| {tree} | {name} | {row} | {total / 1e6:.2f} MB |")
            shutil.rmtree(where)


if __name__ == "__main__":
    main()
