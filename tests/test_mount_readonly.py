"""A read-only mount writes nothing to the vault (not even after a crash
left a torn log tail and a stray pack for the next open to clean up), so
a vault the user may not write (read-only media, a backup, another
user's copy) mounts read-only; and ``fusefs fsck`` of a mounted vault
checks it read-only beside the daemon."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import FAST_KDF, PASSWORD, Vault, fuse_unavailable, fusefs, is_mounted
from users import User, ordinary_users, why_no_users

REPO = Path(__file__).resolve().parents[1]
CLEAN, ERRORS_LEFT, OPERATIONAL = 0, 4, 8


def tree(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file and directory under ``root``: bytes, mode and mtime."""
    out: dict[str, tuple[bytes, int, int]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() else b""
        out[str(p.relative_to(root))] = (data, st.st_mode, st.st_mtime_ns)
    return out


def fsck(v: Vault, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fusefs", "fsck", str(v.dir), "--passfile", str(v.passfile), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_a_read_only_mount_leaves_every_byte_of_the_vault_as_it_was(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "a.txt").write_text("hello\n")
    (v.mnt / "d").mkdir()
    (v.mnt / "d" / "big").write_bytes(os.urandom(300_000))
    big = (v.mnt / "d" / "big").read_bytes()
    v.umount()
    # What a crash leaves for the next open to clean up.
    last = sorted((v.dir / "log").glob("*.ulog"))[-1]
    with open(last, "ab") as f:
        f.write(b"\x55" * 41)  # a torn tail
    (v.dir / "packs" / "00000000000000ff.pack").write_bytes(b"stray")
    before = tree(v.dir)

    done = v.mount("--read-only")
    assert "(read-only)" in done.stdout, done.stdout
    assert (v.mnt / "a.txt").read_text() == "hello\n"
    assert (v.mnt / "d" / "big").read_bytes() == big
    with pytest.raises(OSError) as e:
        (v.mnt / "new").write_text("x")
    assert e.value.errno == errno.EROFS
    v.umount()
    assert tree(v.dir) == before, "a read-only mount changed the vault"
    assert "a torn log tail of 41 bytes was passed over (read-only" in v.log.read_text()

    # The next read-write open does the cleaning up (and the fsck at the
    # fixture's cleanup then finds nothing).
    v.mount()
    assert (v.mnt / "a.txt").read_text() == "hello\n"
    v.umount()
    assert not (v.dir / "packs" / "00000000000000ff.pack").exists()
    assert last.stat().st_size == len(before[str(last.relative_to(v.dir))][0]) - 41


def test_fsck_of_a_mounted_vault_checks_it_read_only(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "docs").mkdir()
    (v.mnt / "docs" / "report").write_bytes(os.urandom(200_000))
    os.sync()  # the daemon's records durable, as an fsync would make them
    fd = os.open(v.mnt / "docs" / "report", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    logs_before = sorted(p.name for p in (v.dir / "log").iterdir())

    done = fsck(v)
    assert done.returncode == CLEAN, done.stderr
    assert done.stdout == ""
    assert "fusefs: the vault is in use: checked read-only beside it (best effort)" in done.stderr
    assert "clean: " in done.stderr and "frames verified" in done.stderr
    done = fsck(v, "--json")
    report = json.loads(done.stdout)
    assert (done.returncode, report["mounted"], report["findings"]) == (CLEAN, True, [])
    # Written and not yet synced: its frames may be in a pack its records
    # do not reach yet. Not a finding.
    (v.mnt / "unsynced").write_bytes(os.urandom(300_000))
    done = fsck(v)
    assert done.returncode == CLEAN, done.stdout + done.stderr
    # The check wrote nothing: no log file of its own, and the mount goes on.
    assert sorted(p.name for p in (v.dir / "log").iterdir()) == logs_before
    assert is_mounted(v.mnt)
    (v.mnt / "after").write_text("still writable\n")

    done = fsck(v, "--repair")
    assert done.returncode == OPERATIONAL
    assert done.stderr.strip().endswith(
        "unmount it to repair (without --repair it is checked read-only)"
    )
    assert done.stderr.count("\n") == 1

    # Damage the mounted vault's data: found (three looks agree), named by path.
    [pack] = [p for p in (v.dir / "packs").glob("*.pack") if p.stat().st_size > 100_000]
    data = bytearray(pack.read_bytes())
    data[64 + 100_000] ^= 0x40  # inside /docs/report's frames, the pack's first
    pack.write_bytes(data)
    v.expect_damage = True
    done = fsck(v)
    assert done.returncode == ERRORS_LEFT, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("frame: /docs/report (inode "), line
    v.umount()


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    reason = fuse_unavailable() or why_no_users()
    if reason is not None:
        pytest.skip(reason)
    with ordinary_users(1) as [made]:
        yield made


def test_an_ordinary_user_mounts_a_vault_they_may_not_write(user: User) -> None:
    vault, mnt = user.home / "frozen", user.home / "frozen.mnt"
    done = user.sh(f"printf '%s\\n' '{PASSWORD}' > pw; mkdir -p {mnt}")
    assert done.returncode == 0, done.stderr
    done = user.fusefs("init", vault, "--passfile", user.home / "pw", "-q", *FAST_KDF)
    assert done.returncode == 0, done.stderr
    done = user.fusefs("mount", vault, mnt, "--passfile", user.home / "pw", "-q")
    assert done.returncode == 0, done.stderr
    try:
        assert user.sh(f"echo kept > {mnt}/a.txt").returncode == 0
    finally:
        user.fusefs("umount", mnt)
    # As on read-only media: nothing in the vault may be written by them.
    subprocess.run(["chmod", "-R", "a-w", str(vault)], check=True)
    before = tree(vault)
    try:
        done = user.fusefs("mount", vault, mnt, "--passfile", user.home / "pw", "-q")
        assert done.returncode != 0
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        done = user.fusefs("mount", vault, mnt, "--passfile", user.home / "pw", "-q", "--read-only")
        assert done.returncode == 0, done.stderr
        try:
            done = user.sh(f"cat {mnt}/a.txt")
            assert (done.returncode, done.stdout) == (0, "kept\n"), done.stderr
        finally:
            assert user.fusefs("umount", mnt).returncode == 0
        assert tree(vault) == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(vault)], check=True)
        if is_mounted(mnt):
            fusefs("umount", mnt)
