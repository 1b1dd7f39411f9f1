"""``fusefs stats`` and ``fusefs umount`` against a live mount: idle time,
rates, compaction in words, finding a mount by its vault, and an unmount
whose daemon dies before finishing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mounting import REPO, Vault, daemon_pid, is_mounted

from fusefs import mounttable

EXIT_IO, EXIT_MOUNT = 5, 7


def stats(v: Vault, *where: object) -> dict:  # type: ignore[type-arg]
    from mounting import fusefs

    done = fusefs("stats", *(where or (v.mnt,)), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_stats_do_not_count_as_use(mounted: Vault) -> None:
    (mounted.mnt / "f").write_bytes(b"x" * 100_000)
    first = stats(mounted)
    time.sleep(1.2)
    os.statvfs(mounted.mnt)  # as df does
    second = stats(mounted)
    # Before, "idle" was always 0.0: the stats request itself was the last one.
    assert second["idle_seconds"] >= 1.1, second["idle_seconds"]
    rates = second["rates"]
    assert 1.1 <= rates["seconds"] < 30
    assert rates["fuse_bytes_written_per_second"] == 0  # nothing written since `first`
    assert first["rates"]["fuse_bytes_written_per_second"] > 0
    assert second["engine"]["compacting_now"] is False
    assert second["engine"]["last_compaction_seconds_ago"] is None


def test_polling_stats_does_not_keep_an_idle_mount_alive(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount("--idle", "2s")
    pid = daemon_pid(v.mnt)
    deadline = time.monotonic() + 20
    while is_mounted(v.mnt) and time.monotonic() < deadline:
        subprocess.run(
            [sys.executable, "-m", "fusefs", "stats", str(v.mnt)], cwd=REPO, capture_output=True
        )
        os.statvfs(v.mnt) if is_mounted(v.mnt) else None
        time.sleep(0.3)
    assert not is_mounted(v.mnt), "stats polling kept the --idle mount alive"
    assert pid is not None


def test_stats_and_umount_find_the_mount_of_a_vault(mounted: Vault) -> None:
    from mounting import fusefs

    assert stats(mounted, mounted.dir)["vault"] == str(mounted.dir)
    done = fusefs("umount", mounted.dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Unmounted {mounted.mnt} ({mounted.dir}).\n"
    assert not is_mounted(mounted.mnt)
    for command in ("stats", "umount"):
        done = fusefs(command, mounted.dir)
        assert done.returncode == EXIT_MOUNT
        assert done.stderr == f"fusefs: error: the vault {mounted.dir} is not mounted\n"


def test_the_mount_table_names_owner_and_vault(mounted: Vault) -> None:
    entry = mounttable.find(str(mounted.mnt))
    assert entry is not None and entry.is_fusefs
    assert (entry.source, entry.owner_uid) == (str(mounted.dir), os.getuid())
    assert [e.point for e in mounttable.mounts_of_vault(str(mounted.dir))] == [str(mounted.mnt)]
    assert mounttable.find(str(mounted.dir)) is None


def test_umount_fails_when_the_daemon_dies_before_finishing(vault_factory) -> None:  # type: ignore[no-untyped-def]
    """The daemon is killed after the kernel unmounted, while it compacts:
    `fusefs umount` must not say all went well."""
    v: Vault = vault_factory(segment_size="64K")
    v.mount()
    # Half of every pack dead: compaction at unmount copies the other half.
    for i in range(160):
        (v.mnt / f"f{i}").write_bytes(os.urandom(1 << 20))
    os.sync()
    for i in range(0, 160, 2):
        os.unlink(v.mnt / f"f{i}")
    pid = daemon_pid(v.mnt)
    assert pid is not None
    for _attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "fusefs", "umount", "--compact", str(v.mnt)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killed = False
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if not is_mounted(v.mnt):  # unmounted: the daemon is compacting now
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.001)
        out, err = proc.communicate(timeout=60)
        # A process of another test may still pass through the mount for an
        # instant (the unmount is refused as busy): try again.
        if "is busy" not in err:
            break
        time.sleep(0.5)
    if not killed:
        pytest.fail(f"the daemon finished before it could be killed: {out} {err}")
    assert proc.returncode == EXIT_IO, (out, err)
    assert out == ""
    assert err.startswith(f"fusefs: error: {v.mnt} is unmounted, but its daemon (pid {pid})")
    assert "ended before finishing" in err and err.count("\n") == 1
    # The vault still opens, with every file that was not deleted.
    v.mount()
    assert sorted(os.listdir(v.mnt)) == sorted(f"f{i}" for i in range(1, 160, 2))


def test_the_mount_says_what_opening_recovered(vault_factory) -> None:  # type: ignore[no-untyped-def]
    """A file unlinked while open when the daemon was killed is reclaimed by
    the next mount, which says so in its log and in stats."""
    from mounting import force_cleanup, fusefs

    v: Vault = vault_factory()
    v.mount()
    f = open(v.mnt / "doomed", "wb")  # noqa: SIM115 - held open across the kill
    try:
        f.write(b"x" * 100_000)
        f.flush()
        os.fsync(f.fileno())
        os.unlink(v.mnt / "doomed")
        subprocess.run(["sync"], check=True)
        done = fusefs("umount", v.mnt)  # busy: the file is open
        assert done.returncode != 0
        pid = daemon_pid(v.mnt)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    finally:
        try:
            f.close()
        except OSError:
            pass
    force_cleanup(v.mnt, {pid})
    v.mount()
    text = fusefs("stats", v.mnt).stdout
    assert "at mount:        opening reclaimed 1 orphaned inode (unlinked while open)" in text
    assert "opening reclaimed 1 orphaned inode" in v.log.read_text()
    assert stats(v)["opened"]["orphans_reclaimed"] != []
