"""Bad things under a mount: a full disk, a tampered vault, a daemon that cannot start."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mounting import Vault, fusefs, is_mounted

EXIT_INTEGRITY, EXIT_IO, EXIT_MOUNT = 4, 5, 7


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 24 MiB tmpfs: the vault's disk, to fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_full_disk_gives_enospc_and_the_mount_survives(small_disk: Path, vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    shutil.move(v.dir, small_disk / "vault")  # the vault lives on the small disk
    v.dir = small_disk / "vault"
    v.mount()
    kept = os.urandom(1 << 20)
    (v.mnt / "kept").write_bytes(kept)
    _fsync(v.mnt / "kept")
    # Something else fills the disk.
    with pytest.raises(OSError), open(small_disk / "filler", "wb") as f:
        while True:
            f.write(bytes(1 << 20))
    with pytest.raises(OSError) as e:
        with open(v.mnt / "new", "wb") as f:
            f.write(os.urandom(4 << 20))
            f.flush()
            os.fsync(f.fileno())
    assert e.value.errno == errno.ENOSPC
    # What failed was reported to the writer (fsync); umount either
    # refuses, in one line, while the daemon still holds something it
    # cannot write, or finds everything acknowledged durable and unmounts.
    done = fusefs("umount", v.mnt)
    if done.returncode == EXIT_IO:
        assert "cannot be made durable" in done.stderr and len(done.stderr.splitlines()) == 1
        assert is_mounted(v.mnt)
        assert (v.mnt / "kept").read_bytes() == kept
    else:
        assert done.returncode == 0, done.stderr
        assert not is_mounted(v.mnt)
    # Space comes back: the mount works again (without a remount if it stayed).
    os.unlink(small_disk / "filler")
    if not is_mounted(v.mnt):
        v.mount()
    after = os.urandom(3 << 20)
    (v.mnt / "after").write_bytes(after)
    _fsync(v.mnt / "after")
    v.umount()
    v.mount()
    assert (v.mnt / "kept").read_bytes() == kept
    assert (v.mnt / "after").read_bytes() == after


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_tampered_pack_reads_as_eio(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "f").write_bytes(os.urandom(2 << 20))
    v.umount()
    packs = sorted((v.dir / "packs").rglob("*.pack"), key=lambda p: p.stat().st_size)
    _flip_middle_byte(packs[-1])
    v.mount()
    with pytest.raises(OSError) as e:
        (v.mnt / "f").read_bytes()
    assert e.value.errno == errno.EIO
    assert os.listdir(v.mnt) == ["f"]  # the rest of the mount works
    v.umount()
    assert "read of /f (inode 2): " in v.log.read_text()  # the log names the file
    # fsck names the file and the damaged bytes (exit 4: findings left).
    v.expect_damage = True
    done = fusefs("fsck", v.dir, "--passfile", v.passfile)
    assert done.returncode == 4, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("frame: /f (inode 2): bytes "), line


def test_tampered_log_refuses_to_mount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    for i in range(50):
        (v.mnt / f"f{i}").write_text("x" * i)
    v.umount()
    logs = sorted((v.dir / "log").glob("*.ulog"), key=lambda p: p.stat().st_size)
    # Damaged in one copy: the mount mends it from the other.
    _flip_middle_byte(logs[-1])
    v.mount()
    assert len(list(v.mnt.iterdir())) == 50
    v.umount()
    assert (v.dir / "log" / logs[-1].name).read_bytes() == (
        v.dir / "mirror/log" / logs[-1].name
    ).read_bytes()
    # Damaged in both: the mount refuses in one line, naming what salvages it.
    _flip_middle_byte(logs[-1])
    _flip_middle_byte(v.dir / "mirror/log" / logs[-1].name)
    v.expect_damage = True
    done = v.mount(check=False)
    assert done.returncode == EXIT_INTEGRITY, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fusefs: error: ")
    assert "fsck --repair" in lines[0]
    assert not is_mounted(v.mnt)
    done = fusefs("fsck", v.dir, "--passfile", v.passfile)
    assert done.returncode == 8 and done.stderr.count("\n") == 1, done.stderr
    done = fusefs("fsck", v.dir, "--passfile", v.passfile, "--repair")
    assert done.returncode == 1, done.stdout + done.stderr
    v.expect_damage = False
    v.mount()


def test_tampered_config_refuses_to_mount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    conf = v.dir / "fusefs.conf"
    good = conf.read_text()
    conf.write_text(good.replace('"segment_size": 65536', '"segment_size": 131072'))
    # Edited in one copy: the mount unlocks the other and restores the config.
    v.mount()
    v.umount()
    assert conf.read_text() == good
    # Edited in both: refused.
    for c in (conf, v.dir / "mirror/fusefs.conf"):
        c.write_text(good.replace('"segment_size": 65536', '"segment_size": 131072'))
    v.expect_damage = True
    done = v.mount(check=False)
    assert done.returncode == EXIT_INTEGRITY, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not is_mounted(v.mnt)
    done = fusefs("info", v.dir)  # info reads the public fields; the MAC needs the key
    assert done.returncode in (0, EXIT_INTEGRITY)
