#!/usr/bin/env python3
"""What an fsync costs the engine: create a file, write 4 KiB, fsync, N times.

Each fsync makes the pack frame and the log records durable; since the
metadata copies (FORMAT.md §10) every log batch is written twice (the copy
is synced when its file closes, not at each fsync). ``--native`` loads
another build of the module in place of ``fusefs._native`` (e.g. the one
from before a change); runs of the builds alternate, the vault directory is
given (``--dir``: a disk, and a tmpfs), and the fastest and median time per
operation of ``--runs`` runs are printed for each build:

    python3 scripts/bench_fsync.py --dir /var/tmp/bench --native /tmp/before.so

Not a test: timings on shared VMs are noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import time
from types import ModuleType


def load(path: str | None) -> ModuleType:
    if path is None:
        from fusefs import _native

        return _native
    spec = importlib.util.spec_from_file_location("fusefs._native", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_run(native: ModuleType, where: str, count: int) -> float:
    """Seconds per create + 4 KiB write + fsync."""
    path = os.path.join(where, "vault")
    shutil.rmtree(path, ignore_errors=True)
    v = native.Vault.create(path, b"pw", argon2_m_kib=64, argon2_t=1)
    data = os.urandom(4096)
    try:
        d = v.mkdir(1, b"d", 0o755, 0, 0).ino
        start = time.perf_counter()
        for i in range(count):
            f = v.create_file(d, b"f%06d" % i, 0o644, 0, 0).ino
            v.write(f, 0, data)
            v.fsync(f)
        return (time.perf_counter() - start) / count
    finally:
        v.close()
        shutil.rmtree(path, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", action="append", required=True, help="where the vault goes (repeat)")
    p.add_argument("--native", help="another build of _native to compare")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--count", type=int, default=1000)
    a = p.parse_args()
    builds = {"this build": load(None)}
    if a.native:
        builds["--native"] = load(a.native)
    for where in a.dir:
        os.makedirs(where, exist_ok=True)
        times: dict[str, list[float]] = {name: [] for name in builds}
        for native in builds.values():  # touch what the runs use once
            one_run(native, where, a.count // 10)
        for _ in range(a.runs):
            for name, native in builds.items():
                times[name].append(one_run(native, where, a.count))
        print(f"{where}: create + write 4 KiB + fsync, µs per operation ({a.runs} runs)")
        for name, t in times.items():
            fastest, median = min(t) * 1e6, statistics.median(t) * 1e6
            print(f"  {name:12} fastest {fastest:8.0f}   median {median:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
