"""File-system semantics through a real mount, with plain ``os`` calls.

One mount serves the whole module (each test works in its own directory);
tests that need a remount make their own vault.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat
import threading
from pathlib import Path

import pytest
from mounting import Vault

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old: Path, new: Path, flags: int) -> None:
    if _libc.renameat2(AT_FDCWD, bytes(old), AT_FDCWD, bytes(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


@pytest.fixture
def d(shared_mount: Vault, request: pytest.FixtureRequest) -> Path:
    path = shared_mount.mnt / request.node.name
    path.mkdir()
    return path


def test_regular_file_round_trip(d: Path) -> None:
    data = os.urandom(300_000)
    (d / "f").write_bytes(data)
    assert (d / "f").read_bytes() == data
    assert (d / "f").stat().st_size == len(data)
    with open(d / "f", "r+b") as f:
        f.seek(70_000)
        f.write(b"X" * 100)
    assert (d / "f").read_bytes() == data[:70_000] + b"X" * 100 + data[70_100:]


def test_directories(d: Path) -> None:
    (d / "a" / "b" / "c").mkdir(parents=True)
    (d / "a" / "f").write_text("x")
    assert sorted(os.listdir(d / "a")) == ["b", "f"]
    assert (d / "a").stat().st_nlink == 3  # ".", "a" in d, ".." of b
    with pytest.raises(OSError) as e:
        os.rmdir(d / "a")
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileExistsError):
        os.mkdir(d / "a")
    with pytest.raises(NotADirectoryError):
        os.listdir(d / "a" / "f")
    os.rmdir(d / "a" / "b" / "c")
    assert os.listdir(d / "a" / "b") == []


def test_many_entries_listing_and_deletion_while_listing(d: Path) -> None:
    names = {f"entry-{i:05d}" for i in range(3000)}
    for n in names:
        (d / n).touch()
    assert set(os.listdir(d)) == names
    # Delete while reading the directory in chunks (what rm -rf does).
    seen = set()
    with os.scandir(d) as it:
        for i, entry in enumerate(it):
            seen.add(entry.name)
            if i % 2 == 0:
                os.unlink(entry.path)
    assert seen == names
    assert len(os.listdir(d)) == 1500


def test_symlinks(d: Path) -> None:
    (d / "target").write_text("t")
    os.symlink("target", d / "link")
    os.symlink("/nonexistent/dangling", d / "dangling")
    assert os.readlink(d / "link") == "target"
    assert (d / "link").read_text() == "t"
    assert stat.S_ISLNK(os.lstat(d / "link").st_mode)
    assert os.readlink(d / "dangling") == "/nonexistent/dangling"
    long_target = "x/" * 1000
    os.symlink(long_target, d / "long")
    assert os.readlink(d / "long") == long_target


def test_hard_links(d: Path) -> None:
    (d / "a").write_text("shared")
    os.link(d / "a", d / "b")
    assert os.stat(d / "a").st_ino == os.stat(d / "b").st_ino
    assert os.stat(d / "a").st_nlink == 2
    (d / "b").write_text("changed")
    assert (d / "a").read_text() == "changed"
    os.unlink(d / "a")
    assert os.stat(d / "b").st_nlink == 1
    assert (d / "b").read_text() == "changed"
    with pytest.raises(PermissionError):
        os.link(d, d / "dirlink")


def test_device_nodes_and_fifos(d: Path) -> None:
    os.mkfifo(d / "fifo", 0o640)
    assert stat.S_ISFIFO(os.stat(d / "fifo").st_mode)
    os.mknod(d / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    st = os.stat(d / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    os.mknod(d / "blk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    assert stat.S_ISBLK(os.stat(d / "blk").st_mode)
    # The mount is nodev: device nodes are metadata only.
    with pytest.raises(PermissionError):
        open(d / "null", "rb")


def test_xattrs(d: Path) -> None:
    f = d / "f"
    f.write_text("x")
    os.setxattr(f, "user.color", b"blue")
    os.setxattr(f, "user.empty", b"")
    os.setxattr(f, "trusted.t", b"root only")
    os.setxattr(f, "security.s", b"sec")
    assert os.getxattr(f, "user.color") == b"blue"
    assert os.getxattr(f, "user.empty") == b""
    assert os.getxattr(f, "trusted.t") == b"root only"
    assert set(os.listxattr(f)) == {"user.color", "user.empty", "trusted.t", "security.s"}
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.color", b"red", os.XATTR_CREATE)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.none", b"x", os.XATTR_REPLACE)
    assert e.value.errno == errno.ENODATA
    os.removexattr(f, "user.color")
    with pytest.raises(OSError) as e:
        os.getxattr(f, "user.color")
    assert e.value.errno == errno.ENODATA
    os.setxattr(d, "user.on-dir", b"v" * 4000)
    assert os.getxattr(d, "user.on-dir") == b"v" * 4000
    with pytest.raises(OSError) as e:
        os.setxattr(f, "bogus.name", b"x")
    assert e.value.errno == errno.EOPNOTSUPP


def test_chmod_chown_and_nanosecond_times(d: Path) -> None:
    f = d / "f"
    f.write_text("x")
    os.chmod(f, 0o4751)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o4751
    os.chown(f, 1234, 5678)
    st = os.stat(f)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.utime(f, ns=(1_000_000_123, 2_000_000_456))
    st = os.stat(f)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_123, 2_000_000_456)
    before = os.stat(f).st_ctime_ns
    os.utime(f)  # UTIME_NOW
    assert os.stat(f).st_mtime_ns >= before


def test_truncate_up_and_down_and_sparse_files(d: Path) -> None:
    f = d / "f"
    data = os.urandom(200_000)
    f.write_bytes(data)
    os.truncate(f, 100_001)
    assert f.read_bytes() == data[:100_001]
    os.truncate(f, 400_000)
    assert f.read_bytes() == data[:100_001] + bytes(299_999)
    sparse = d / "sparse"
    with open(sparse, "wb") as g:
        g.seek(10 * 2**20)
        g.write(b"end")
    assert sparse.stat().st_size == 10 * 2**20 + 3
    assert sparse.stat().st_blocks * 512 < 2**20  # holes cost nothing
    with open(sparse, "rb") as g:
        assert g.read(4096) == bytes(4096)
        g.seek(10 * 2**20 - 2)
        assert g.read() == b"\0\0end"


def test_files_larger_than_4_gib(d: Path) -> None:
    f = d / "big"
    with open(f, "wb") as g:
        g.seek(5 * 2**30)
        g.write(b"beyond 4 GiB")
    assert f.stat().st_size == 5 * 2**30 + 12
    with open(f, "rb") as g:
        g.seek(5 * 2**30)
        assert g.read() == b"beyond 4 GiB"
        g.seek(2**32 - 10)
        assert g.read(20) == bytes(20)


def test_fallocate_as_pyfuse3_allows(d: Path) -> None:
    # pyfuse3 has no fallocate handler: the kernel answers EOPNOTSUPP, and
    # glibc's posix_fallocate falls back to writing, so it still works.
    f = d / "f"
    f.write_bytes(b"abc")
    with open(f, "r+b") as g:
        os.posix_fallocate(g.fileno(), 0, 200_000)
        assert os.fstat(g.fileno()).st_size == 200_000
        with pytest.raises(OSError) as e:
            _fallocate(g.fileno(), 0, 0, 300_000)  # the system call itself
        assert e.value.errno == errno.EOPNOTSUPP
    assert f.read_bytes() == b"abc" + bytes(200_000 - 3)


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    if _libc.fallocate(fd, mode, ctypes.c_long(offset), ctypes.c_long(length)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_fallocate_keep_size_is_refused(d: Path) -> None:
    f = d / "f"
    f.write_bytes(b"abc")
    with open(f, "r+b") as g, pytest.raises(OSError) as e:
        _fallocate(g.fileno(), 1, 0, 1 << 20)  # FALLOC_FL_KEEP_SIZE
    assert e.value.errno == errno.EOPNOTSUPP
    assert f.stat().st_size == 3


def test_o_append(d: Path) -> None:
    f = d / "log"
    f.write_bytes(b"start\n")
    fds = [os.open(f, os.O_WRONLY | os.O_APPEND) for _ in range(2)]
    for i in range(50):
        os.write(fds[i % 2], b"line %d\n" % i)
    for fd in fds:
        os.close(fd)
    assert f.read_bytes() == b"start\n" + b"".join(b"line %d\n" % i for i in range(50))


def test_rename_variants(d: Path) -> None:
    (d / "a").write_text("A")
    (d / "b").write_text("B")
    os.rename(d / "a", d / "b")  # atomic replace
    assert (d / "b").read_text() == "A" and not (d / "a").exists()
    (d / "c").write_text("C")
    with pytest.raises(FileExistsError):
        renameat2(d / "c", d / "b", RENAME_NOREPLACE)
    renameat2(d / "c", d / "b", RENAME_EXCHANGE)
    assert (d / "b").read_text() == "C" and (d / "c").read_text() == "A"
    (d / "x" / "y").mkdir(parents=True)
    (d / "x" / "y" / "f").write_text("deep")
    (d / "z").mkdir()
    os.rename(d / "x" / "y", d / "z" / "y")  # a directory across parents
    assert (d / "z" / "y" / "f").read_text() == "deep"
    assert os.stat(d / "x").st_nlink == 2 and os.stat(d / "z").st_nlink == 3
    with pytest.raises(OSError) as e:
        os.rename(d / "z", d / "z" / "y" / "inside")
    assert e.value.errno == errno.EINVAL
    (d / "empty").mkdir()
    os.rename(d / "z", d / "empty")  # replaces an empty directory
    assert (d / "empty" / "y" / "f").read_text() == "deep"
    (d / "full").mkdir()
    (d / "full" / "f").touch()
    with pytest.raises(OSError) as e:
        os.rename(d / "empty", d / "full")
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(IsADirectoryError):
        os.rename(d / "b", d / "full")
    with pytest.raises(NotADirectoryError):
        os.rename(d / "full", d / "b")


def test_unlinked_open_file_stays_readable(d: Path) -> None:
    f = d / "f"
    data = os.urandom(150_000)
    f.write_bytes(data)
    with open(f, "r+b") as g:
        os.unlink(f)
        assert not f.exists()
        assert g.read() == data
        g.write(b"more")
        g.seek(0)
        assert g.read() == data + b"more"
        assert os.fstat(g.fileno()).st_nlink == 0


def test_names_up_to_255_bytes(d: Path) -> None:
    (d / ("n" * 255)).write_text("ok")
    assert (d / ("n" * 255)).read_text() == "ok"
    with pytest.raises(OSError) as e:
        (d / ("n" * 256)).write_text("too long")
    assert e.value.errno == errno.ENAMETOOLONG
    utf8 = "é" * 127  # 254 bytes
    (d / utf8).touch()
    assert utf8 in os.listdir(d)


def test_statfs(shared_mount: Vault) -> None:
    st = os.statvfs(shared_mount.mnt)
    assert st.f_namemax == 255
    assert st.f_bsize > 0 and st.f_blocks > 0 and st.f_bavail <= st.f_blocks
    assert st.f_files > st.f_ffree >= 0


def test_concurrent_readers_and_writers(d: Path) -> None:
    errors: list[BaseException] = []
    blobs = {i: os.urandom(100_000 + i) for i in range(8)}

    def writer(i: int) -> None:
        try:
            for _ in range(5):
                (d / f"f{i}").write_bytes(blobs[i])
                assert (d / f"f{i}").read_bytes() == blobs[i]
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    shared = d / "shared"
    shared.write_bytes(os.urandom(1 << 20))
    expected = shared.read_bytes()

    def reader() -> None:
        try:
            for _ in range(10):
                assert shared.read_bytes() == expected
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_mmap_shared_writes(d: Path) -> None:
    f = d / "mapped"
    f.write_bytes(bytes(300_000))
    with open(f, "r+b") as g:
        m = mmap.mmap(g.fileno(), 0)
        m[1000:1005] = b"hello"
        m[250_000:250_003] = b"end"
        m.flush()
        m.close()
    data = f.read_bytes()
    assert data[1000:1005] == b"hello" and data[250_000:250_003] == b"end"


def test_fsync_and_fdatasync(d: Path) -> None:
    fd = os.open(d / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"durable")
    os.fsync(fd)
    os.write(fd, b" again")
    os.fdatasync(fd)
    os.close(fd)
    dfd = os.open(d, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    assert (d / "f").read_bytes() == b"durable again"


def test_new_files_take_callers_ids_and_mode(d: Path) -> None:
    os.chmod(d, 0o777)
    pid = os.fork()
    if pid == 0:  # child: become an ordinary user, create things
        try:
            os.chdir(d)  # pytest's temporary directories are private to root
            os.setgid(4321)
            os.setuid(1234)
            os.umask(0o027)
            fd = os.open("mine", os.O_CREAT | os.O_WRONLY, 0o666)
            os.close(fd)
            os.mkdir("mydir", 0o777)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    st = os.stat(d / "mine")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o640)
    st = os.stat(d / "mydir")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 4321, 0o750)


def test_kernel_enforces_permissions(d: Path) -> None:
    secret = d / "secret"
    secret.write_text("root only")
    os.chmod(secret, 0o600)
    os.chmod(d, 0o755)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(d)
            os.setuid(1234)
            try:
                open("secret").read()
            except PermissionError:
                os._exit(0)
            os._exit(2)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_inode_numbers_and_data_survive_remount(vault_factory) -> None:  # type: ignore[no-untyped-def]
    v: Vault = vault_factory()
    v.mount()
    (v.mnt / "dir").mkdir()
    (v.mnt / "dir" / "f").write_bytes(b"persist" * 1000)
    os.symlink("dir/f", v.mnt / "link")
    os.setxattr(v.mnt / "dir" / "f", "user.k", b"v")
    inos = {p: os.lstat(v.mnt / p).st_ino for p in ("dir", "dir/f", "link")}
    v.remount()
    assert {p: os.lstat(v.mnt / p).st_ino for p in inos} == inos
    assert (v.mnt / "dir" / "f").read_bytes() == b"persist" * 1000
    assert os.getxattr(v.mnt / "dir" / "f", "user.k") == b"v"
    assert os.readlink(v.mnt / "link") == "dir/f"


def test_deleting_written_files_leaves_no_writeback_error(d: Path) -> None:
    # The kernel writes back the times of a deleted file after it is gone;
    # that must not surface as a writeback error (syncfs, and so umount).
    for i in range(20):
        (d / f"f{i}").write_bytes(b"x" * 5000)
    for i in range(20):
        (d / f"f{i}").read_bytes()
        os.unlink(d / f"f{i}")
    fd = os.open(d, os.O_RDONLY)
    try:
        assert _libc.syncfs(fd) == 0, os.strerror(ctypes.get_errno())
    finally:
        os.close(fd)
