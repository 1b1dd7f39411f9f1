"""Inode lifetimes through a real mount: an inode whose last name is gone
lives while the kernel still refers to it (an ``O_PATH`` descriptor, a
current directory, a reader between lookup and open), as on ext4; and
readdir lists ``.`` and ``..``.

One mount serves the module (each test works in its own directory); the
tests of space and of unmounting make their own vault.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mounting import Vault

from fusefs import control

_libc = ctypes.CDLL(None, use_errno=True)
SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61}.get(platform.machine())
DT_DIR = 4


@pytest.fixture
def d(shared_mount: Vault, request: pytest.FixtureRequest) -> Path:
    path = shared_mount.mnt / request.node.name
    path.mkdir()
    return path


def getdents(path: Path, bufsize: int = 32768) -> list[tuple[bytes, int, int]]:
    """(name, d_ino, d_type) of every entry, straight from getdents64: what
    ``os.scandir`` hides (the dots) and the inode numbers readdir gave."""
    if SYS_GETDENTS64 is None:
        pytest.skip(f"no getdents64 number for {platform.machine()}")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(bufsize)
    out = []
    try:
        while True:
            n = _libc.syscall(SYS_GETDENTS64, fd, buf, bufsize)
            if n < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            if n == 0:
                return out
            pos = 0
            while pos < n:
                ino, _off, reclen, dtype = struct.unpack_from("<QqHB", buf.raw, pos)
                name = buf.raw[pos + 19 : pos + reclen].split(b"\0", 1)[0]
                out.append((name, ino, dtype))
                pos += reclen
    finally:
        os.close(fd)


def test_o_path_file_outlives_unlink(d: Path) -> None:
    data = os.urandom(200_000)
    (d / "f").write_bytes(data)
    fd = os.open(d / "f", os.O_PATH)
    try:
        os.unlink(d / "f")
        # Let the kernel's cached attributes go: fstat must reach the daemon.
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        st = os.fstat(fd)
        assert (st.st_size, st.st_nlink) == (len(data), 0)
        with open(f"/proc/self/fd/{fd}", "rb") as f:
            assert f.read() == data
    finally:
        os.close(fd)
    assert not (d / "f").exists()


def test_o_path_file_outlives_rename_over_it(d: Path) -> None:
    (d / "doc").write_bytes(b"old contents")
    (d / "doc.tmp").write_bytes(b"new")
    fd = os.open(d / "doc", os.O_PATH)
    try:
        os.rename(d / "doc.tmp", d / "doc")
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        assert os.fstat(fd).st_nlink == 0
        with open(f"/proc/self/fd/{fd}", "rb") as f:
            assert f.read() == b"old contents"
    finally:
        os.close(fd)
    assert (d / "doc").read_bytes() == b"new"


def test_removed_current_directory_lists_empty(d: Path) -> None:
    (d / "gone").mkdir()
    script = (
        "import os, subprocess, sys\n"
        "os.chdir(sys.argv[1]); os.rmdir(sys.argv[1])\n"
        "st = os.stat('.')\n"
        "ls = subprocess.run(['ls', '-la', '.'], capture_output=True, text=True)\n"
        "print(os.listdir('.'), [e.name for e in os.scandir('.')], st.st_nlink,"
        " ls.returncode, repr(ls.stderr))\n"
        "open('x', 'w')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(d / "gone")], capture_output=True, text=True
    )
    # Creating in it fails as on ext4 (ENOENT); everything before worked.
    assert "FileNotFoundError" in done.stderr, done.stderr
    assert done.stdout.split() == ["[]", "[]", "0", "0", "''"]
    assert os.listdir(d) == []


#: A reader process: reopens and reads the file until the deadline, then
#: prints its count of opens and the failures it saw.
READER = """
import os, sys, time
path, deadline, sizes = sys.argv[1], float(sys.argv[2]), set(map(int, sys.argv[3:]))
opens, failures = 0, []
while time.time() < deadline:
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        failures.append(f'open: {e}')
        continue
    opens += 1
    if len(data) not in sizes or len(set(data)) != 1:
        failures.append(f'torn read of {len(data)} bytes')
print(opens, len(failures), failures[:3])
"""


def test_atomic_saves_never_hide_the_file_from_readers(d: Path) -> None:
    """An editor's save (write tmp; fsync; rename over; fsync dir) in a loop,
    reader processes reopening the file all the while: every open finds it,
    whole (on ext4 none fails; before lifetimes, some got ENOENT)."""
    path, tmp = d / "config", d / "config.tmp"
    versions = [bytes([i]) * (1000 + i) for i in range(8)]
    path.write_bytes(versions[0])
    deadline = time.time() + 8
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(path), str(deadline)]
            + [str(len(v)) for v in versions],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        saves = 0
        while time.time() < deadline:
            saves += 1
            with open(tmp, "wb") as f:
                f.write(versions[saves % len(versions)])
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
            os.fsync(dfd)
    finally:
        os.close(dfd)
    results = [r.communicate(timeout=30)[0].split(maxsplit=2) for r in readers]
    opens = sum(int(r[0]) for r in results)
    failed = [r for r in results if r[1] != "0"]
    assert saves > 50 and opens > 1000, f"{saves} saves, {opens} reopens"
    assert failed == [], f"{failed} ({saves} saves, {opens} reopens)"


def test_listings_show_dot_and_dotdot(d: Path) -> None:
    (d / "sub").mkdir()
    (d / "f").write_text("x")
    names = subprocess.run(
        ["ls", "-a", str(d)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert names == [".", "..", "f", "sub"]
    entries = {name: (ino, t) for name, ino, t in getdents(d / "sub")}
    assert entries == {
        b".": (os.stat(d / "sub").st_ino, DT_DIR),
        b"..": (os.stat(d).st_ino, DT_DIR),
    }


def test_root_dotdot_is_the_root(shared_mount: Vault) -> None:
    entries = {name: ino for name, ino, _ in getdents(shared_mount.mnt)}
    root = os.stat(shared_mount.mnt).st_ino
    assert entries[b"."] == entries[b".."] == root


def test_long_listing_in_small_reads_neither_skips_nor_repeats(d: Path) -> None:
    names = {f"entry-{i:04d}-{'x' * (i % 40)}".encode() for i in range(1500)}
    for n in names:
        (d / os.fsdecode(n)).touch()
    # Small reads: many readdir requests, each resuming at the last offset,
    # some at the dots' offsets.
    for bufsize in (512, 32768):
        listed = [name for name, _, _ in getdents(d, bufsize)]
        assert listed[:2] == [b".", b".."]
        assert sorted(listed[2:]) == sorted(names)
        assert len(listed) == len(names) + 2


def stored_bytes(mnt: Path) -> int:
    return int(control.stats(str(mnt))["engine"]["stored_bytes"])


def test_space_of_an_unlinked_file_returns_once_the_kernel_forgets(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    data = os.urandom(1 << 20)
    (v.mnt / "big").write_bytes(data)
    fd = os.open(v.mnt / "big", os.O_PATH)
    os.unlink(v.mnt / "big")
    os.sync()
    assert stored_bytes(v.mnt) >= len(data), "the kernel still holds it"
    os.close(fd)
    deadline = time.monotonic() + 10
    while stored_bytes(v.mnt) > 0 and time.monotonic() < deadline:
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        time.sleep(0.1)
    assert stored_bytes(v.mnt) == 0
    assert control.stats(str(v.mnt))["engine"]["inodes"] == 1  # the root


def test_unmount_leaves_no_nameless_inode_behind(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    for i in range(20):
        (v.mnt / f"f{i}").write_bytes(b"y" * 5000)
        os.stat(v.mnt / f"f{i}")
        os.unlink(v.mnt / f"f{i}")
    (v.mnt / "kept").write_bytes(b"kept")
    v.umount()
    v.mount()
    try:
        stats = control.stats(str(v.mnt))
        assert stats["engine"]["stored_bytes"] == 4
        assert stats["engine"]["inodes"] == 2  # the root and kept
        assert (v.mnt / "kept").read_bytes() == b"kept"
    finally:
        v.umount()
