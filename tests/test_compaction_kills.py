"""SIGKILL at random points of a compaction, in real processes: ``fusefs
compact`` of an unmounted vault, and the daemon while it compacts at
``fusefs umount --compact``. After each kill, ``fusefs fsck`` finds nothing
and every file (all of them fsync'd before the compaction began) reads as
it was written; then a compaction runs to its end.

The vault compacted is a copy of one template: four mounts each wrote files
and deleted half of the previous mount's, so a compaction rewrites several
packs and folds four log files. The kill delays are drawn over the whole
duration of an unkilled run (process start and open included). A few kills
by default (CI); ``FUSEFS_STRESS=1`` runs many more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mounting import REPO, Vault, daemon_pid, fusefs, is_mounted, vault_files
from support import put_back

from fusefs import control

STRESS = os.environ.get("FUSEFS_STRESS") == "1"
KILLS = 40 if STRESS else 5
MIB = 1 << 20


def _template(vault_factory) -> tuple[Vault, dict[str, bytes]]:  # type: ignore[no-untyped-def]
    """A vault with dead space in several packs and several log files."""
    v: Vault = vault_factory("template", segment_size="64K")
    rng = random.Random(7)
    files: dict[str, bytes] = {}
    for mount in range(4):
        v.mount()
        for i in range(8):
            name = f"m{mount}f{i}"
            files[name] = rng.randbytes(MIB + rng.randrange(MIB))
            (v.mnt / name).write_bytes(files[name])
        if mount > 0:
            for i in range(0, 8, 2):
                name = f"m{mount - 1}f{i}"
                os.unlink(v.mnt / name)
                del files[name]
        v.umount()  # makes everything durable
    return v, files


def _copy(template: Vault, dst: Path) -> None:
    put_back(template.dir, dst)


def _check(v: Vault, files: dict[str, bytes], what: str) -> None:
    """fsck clean, every file as written; then a compaction to the end,
    and clean again."""
    done = fusefs("fsck", v.dir, "--passfile", v.passfile, "-q")
    assert done.returncode == 0, f"{what}: fsck: {done.stdout} {done.stderr}"
    assert vault_files(v.dir, v.passfile.read_text().strip().encode()) == files, what
    done = fusefs("compact", v.dir, "--passfile", v.passfile, "--dead-ratio", "0.3", "-q")
    assert done.returncode == 0, f"{what}: compact after the kill: {done.stderr}"
    done = fusefs("fsck", v.dir, "--passfile", v.passfile, "-q")
    assert done.returncode == 0, f"{what}: fsck after compacting: {done.stdout} {done.stderr}"


def _compact(v: Vault) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fusefs", "compact", str(v.dir), "--passfile", str(v.passfile)]
        + ["--dead-ratio", "0.3", "--json"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _umount_compact(v: Vault) -> subprocess.Popen[str]:
    """``fusefs umount --compact``, running, once the kernel has unmounted
    (the daemon compacts now). The release of a file closed just before
    is asynchronous: an unmount refused as busy is tried again."""
    for _attempt in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-m", "fusefs", "umount", "--compact", str(v.mnt)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while is_mounted(v.mnt) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        if not is_mounted(v.mnt):
            return proc
        out, err = proc.communicate(timeout=60)
        assert "is busy" in err, f"umount --compact failed: {out} {err}"
        time.sleep(0.2)
    raise AssertionError(f"{v.mnt} stayed busy")


def test_sigkill_of_fusefs_compact_anywhere_loses_nothing(vault_factory) -> None:  # type: ignore[no-untyped-def]
    template, files = _template(vault_factory)
    v: Vault = vault_factory("victim")
    # An unkilled run: it does real work, and how long it takes.
    _copy(template, v.dir)
    started = time.monotonic()
    proc = _compact(v)
    out, err = proc.communicate(timeout=120)
    duration = time.monotonic() - started
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["packs"]["packs_deleted"] >= 2, report
    assert report["log"]["log_files_deleted"] >= 4, report
    _check(v, files, "unkilled")
    rng = random.Random(int(os.environ.get("FUSEFS_SEED", "1")))
    killed = 0
    for k in range(KILLS):
        delay = rng.uniform(0, duration)
        what = f"kill {k} after {delay:.3f} s of {duration:.3f} s"
        _copy(template, v.dir)
        proc = _compact(v)
        time.sleep(delay)
        killed += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        _check(v, files, what)
    assert killed > 0, "every run had finished before its kill"


def test_sigkill_of_the_daemon_compacting_at_unmount_loses_nothing(vault_factory) -> None:  # type: ignore[no-untyped-def]
    template, files = _template(vault_factory)
    v: Vault = vault_factory("victim")
    rng = random.Random(int(os.environ.get("FUSEFS_SEED", "1")))
    duration = None
    killed = 0
    for k in range(KILLS + 1):
        _copy(template, v.dir)
        v.mount()
        # And one more file, fsync'd in this mount.
        data = rng.randbytes(300_000)
        with open(v.mnt / "fsynced", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        pid = daemon_pid(v.mnt)
        assert pid is not None
        proc = _umount_compact(v)
        unmounted = time.monotonic()
        if duration is None:
            # The first round is not killed: it must compact, and says how long.
            out, err = proc.communicate(timeout=120)
            duration = time.monotonic() - unmounted
            assert proc.returncode == 0 and "compacted" in out, (out, err)
            what = "unkilled"
        else:
            delay = rng.uniform(0, duration)
            what = f"kill {k} {delay:.3f} s after the unmount (compaction took {duration:.3f} s)"
            time.sleep(delay)
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass  # it had finished
            proc.communicate(timeout=60)
        assert control.wait_for_exit(pid, 10), f"{what}: the daemon is still there"
        assert not is_mounted(v.mnt), what
        _check(v, {**files, "fsynced": data}, what)
    assert killed > 0, "every daemon had finished before its kill"
