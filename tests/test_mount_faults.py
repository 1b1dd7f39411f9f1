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
    # umount refuses rather than lose what the daemon holds.
    done = fusefs("umount", v.mnt)
    assert done.returncode == EXIT_IO, done.stderr
    assert "cannot be made durable" in done.stderr and len(done.stderr.splitlines()) == 1
    assert is_mounted(v.mnt)
    assert (v.mnt / "kept").read_bytes() == kept
    # Space comes back: the mount works again, without a remount.
    os.unlink(small_disk / "filler")
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
    logs = sorted((v.dir / "log").rglob("*.ulog"), key=lambda p: p.stat().st_size)
    _flip_middle_byte(logs[-1])
    v.expect_damage = True
    done = v.mount(check=False)
    assert done.returncode == EXIT_INTEGRITY, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fusefs: error: ")
    assert not is_mounted(v.mnt)
    # fsck cannot open it either (salvage is not built yet): one line, exit 8.
    done = fusefs("fsck", v.dir, "--passfile", v.passfile)
    assert done.returncode == 8 and done.stderr.count("\n") == 1, done.stderr


def test_tampered_config_refuses_to_mount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    conf = v.dir / "fusefs.conf"
    conf.write_text(conf.read_text().replace('"segment_size": 65536', '"segment_size": 131072'))
    v.expect_damage = True
    done = v.mount(check=False)
    assert done.returncode == EXIT_INTEGRITY, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not is_mounted(v.mnt)
    done = fusefs("info", v.dir)  # info reads the public fields; the MAC needs the key
    assert done.returncode in (0, EXIT_INTEGRITY)
