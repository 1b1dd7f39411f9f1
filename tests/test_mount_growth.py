"""Bounded growth at mount level (issue 13): many short mounts, a mix of
clean unmounts, SIGKILL'd daemons and read-only mounts, each rewriting a
little; then one mount idle long enough to compact. Without ``--compact``
anywhere, the vault must then hold at most its live data plus a tenth,
one pack and a small constant, and only a few log files: the files of past
mounts are folded in.

30 short mounts by default (about a minute); ``FUSEFS_STRESS=1`` runs 153,
as in the issue's report.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from mounting import Vault, daemon_pid, fusefs, vault_files

from fusefs import control

STRESS = os.environ.get("FUSEFS_STRESS") == "1"
MOUNTS = 153 if STRESS else 30
MIB = 1 << 20
#: The engine's pack size limit (EngineOptions::default): the one pack of
#: dead space the bound allows.
PACK = 64 * MIB
#: Log and snapshot bytes, the config, the lock: small and not growing.
SMALL = 2 * MIB
FILES = [f"live{i}" for i in range(4)]


def _disk(vault_dir: Path) -> tuple[int, int]:
    """Bytes of every file in the vault directory, and the number of log files."""
    total = sum(p.stat().st_size for p in vault_dir.rglob("*") if p.is_file())
    return total, len(list((vault_dir / "log").iterdir()))


def _stats(v: Vault) -> dict[str, Any]:
    done = fusefs("stats", v.mnt, "--json", check=True)
    engine: dict[str, Any] = json.loads(done.stdout)["engine"]
    return engine


def _write_round(v: Vault, rng: random.Random, files: dict[str, bytes]) -> None:
    """Rewrite every live file (its old frames die) and a scratch file that
    is deleted again, all fsync'd."""
    for name in FILES:
        files[name] = rng.randbytes(MIB)
        with open(v.mnt / name, "wb") as f:
            f.write(files[name])
            os.fsync(f.fileno())
    (v.mnt / "scratch").write_bytes(rng.randbytes(MIB))
    os.unlink(v.mnt / "scratch")
    fd = os.open(v.mnt, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _kill_daemon(v: Vault) -> None:
    pid = daemon_pid(v.mnt)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert control.wait_for_exit(pid, 10)
    v.umount()  # detaches the dead mount


def test_short_killed_and_read_only_mounts_stay_bounded_after_one_idle_mount(
    vault_factory,  # type: ignore[no-untyped-def]
) -> None:
    v: Vault = vault_factory()
    rng = random.Random(13)
    files: dict[str, bytes] = {}
    for k in range(MOUNTS):
        kind = ("clean", "killed", "read-only")[k % 3] if k else "clean"
        v.mount(*(["--read-only"] if kind == "read-only" else []))
        if kind == "read-only":
            for name, data in files.items():
                assert (v.mnt / name).read_bytes() == data, f"mount {k}: {name}"
        else:
            _write_round(v, rng, files)
            if kind == "killed":
                (v.mnt / "unsynced").write_bytes(b"maybe")  # no fsync: may be lost
        if kind == "killed":
            _kill_daemon(v)
        else:
            v.umount()
    live = sum(len(d) for d in files.values())
    bound = live + live // 10 + PACK + SMALL
    before, logs_before = _disk(v.dir)
    # Not a vacuous bound: the short mounts alone went far past it.
    assert before > bound + 8 * MIB, (before, bound)
    # (Short mounts fold the log files once 16 are there, as busy as they are.)
    assert logs_before > 3, logs_before

    # One mount left idle until it has compacted on its own: a cycle once
    # it has been idle for 10 s (the policy's idle time): within 25 s.
    v.mount()
    started = time.monotonic()
    while True:
        engine = _stats(v)
        done = engine.get("last_compaction_seconds_ago") is not None
        if done and not engine.get("compacting_now") and _disk(v.dir)[0] <= bound:
            break
        assert time.monotonic() - started < 25, (
            f"not within the bound after 25 s: {_disk(v.dir)[0] / MIB:.1f} MiB on disk, "
            f"bound {bound / MIB:.1f} MiB, engine {engine}"
        )
        time.sleep(1)
    v.umount()  # no --compact

    after, logs_after = _disk(v.dir)
    assert after <= bound, f"{after / MIB:.1f} MiB on disk > {bound / MIB:.1f} MiB"
    assert logs_after <= 3, f"{logs_after} log files left"
    got = vault_files(v.dir, v.passfile.read_text().strip().encode())
    got.pop("unsynced", None)
    assert got == files
