#!/usr/bin/env python3
"""Cost of crossing the binding: ``Vault.read`` and ``Vault.write`` from Python.

Times one call of each at 4 KiB, 128 KiB (the kernel's largest FUSE read)
and 1 MiB against one file of a fresh vault
(reads hit the decrypted-segment cache, so a read is mostly the binding's own
cost: the copy into Python's hands), ``--runs`` repetitions of ``--calls``
calls each, and prints the fastest and the median time per call. ``--native``
loads another build of the module (e.g. the one from before a change) in
place of ``fusefs._native``, to compare two builds on one machine:

    python3 scripts/bench_binding.py
    python3 scripts/bench_binding.py --native /tmp/before/_native.abi3.so

Measured 2026-12-06 on the project's 2-core VM (shared, so noisy), the
build before and after ``read`` returned a view of the engine's buffer and
``write`` stopped copying its argument, run alternately three times each
(``--calls 500``): fastest of all runs / median of the three medians, in µs.

=============  ===============  ===============
call           before           after
=============  ===============  ===============
read 4 KiB     0.74 / 0.79      0.77 / 0.94
read 128 KiB   24.3 / 25.1      20.9 / 24.6
read 1 MiB     322 / 340        290 / 314
write 4 KiB    126 / 139        127 / 178
write 128 KiB  120 / 122        70 / 78
write 1 MiB    539 / 553        463 / 517
=============  ===============  ===============

A 4 KiB read or write is the same within the noise (a write is mostly
sealing a segment); from 128 KiB (the most the kernel asks of a FUSE read)
the copy the binding no longer makes shows, the more so as glibc serves
buffers of 128 KiB and more with fresh mappings.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

SIZES = {"4 KiB": 4096, "128 KiB": 128 << 10, "1 MiB": 1 << 20}


def load_native(path: str | None) -> ModuleType:
    if path is None:
        from fusefs import _native

        return _native
    loader = importlib.machinery.ExtensionFileLoader("fusefs._native", path)
    spec = importlib.util.spec_from_file_location("fusefs._native", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def per_call(fn: Any, calls: int, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return min(times), statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--native", help="path of the _native module to load")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()
    native = load_native(args.native)
    with tempfile.TemporaryDirectory() as tmp:
        v = native.Vault.create(Path(tmp) / "v", b"bench", argon2_m_kib=256, argon2_t=1)
        ino = v.create_file(native.ROOT_INO, b"f", 0o600, 0, 0).ino
        v.write(ino, 0, bytes(2 << 20))
        for label, size in SIZES.items():
            data = bytes(range(256)) * (size // 256)
            v.read(ino, 0, size)  # warm the cache
            best, median = per_call(lambda s=size: v.read(ino, 0, s), args.calls, args.runs)
            print(f"read  {label:>7}: best {best * 1e6:9.2f} µs, median {median * 1e6:9.2f} µs")
            calls = max(args.calls // 10, 10)
            best, median = per_call(lambda d=data: v.write(ino, 0, d), calls, args.runs)
            print(f"write {label:>7}: best {best * 1e6:9.2f} µs, median {median * 1e6:9.2f} µs")
        v.close()


if __name__ == "__main__":
    main()
