"""fusefs.fs's handler decorators, off a mount: which errno each exception becomes.

The handlers of :class:`fusefs.fs.VaultOperations` are called directly inside
``trio.run`` over a stand-in for the vault: a tiny class whose every method
raises the exception under test. It stands in for the *vault* only, to test
the Python adapter's mapping; the engine itself is tested elsewhere.
"""

from __future__ import annotations

import errno
import inspect
import logging
import types
from collections.abc import Awaitable, Callable
from typing import Any

import pyfuse3
import pytest
import trio

from fusefs import _native, fs
from fusefs.requestloop import InFlight

CTX = types.SimpleNamespace(uid=0, gid=0, pid=1, umask=0o022)


class RaisingVault:
    """Every vault method raises ``exc``; the calls are recorded."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*_args: Any, **_kwargs: Any) -> Any:
            self.calls.append(name)
            raise self.exc

        return call


def run_handler(
    exc: BaseException, call: Callable[[fs.VaultOperations], Awaitable[Any]]
) -> tuple[BaseException | None, fs.VaultOperations]:
    """What ``call(ops)`` raised (None if nothing), over a vault raising ``exc``."""
    box: list[Any] = []

    async def main() -> None:
        ops = fs.VaultOperations(RaisingVault(exc), "/nonexistent-vault", in_flight=InFlight())  # type: ignore[arg-type]
        box.append(ops)
        try:
            await call(ops)
        except BaseException as e:  # noqa: BLE001 - the point of the test
            box.append(e)
        else:
            box.append(None)

    trio.run(main)
    return box[1], box[0]


def fuse_errno(exc: BaseException, call: Callable[[fs.VaultOperations], Awaitable[Any]]) -> int:
    raised, _ = run_handler(exc, call)
    assert type(raised) is pyfuse3.FUSEError, repr(raised)
    return raised.errno


def getattr_(ops: fs.VaultOperations) -> Awaitable[Any]:
    return ops.getattr(5, CTX)


def engine_error(cls: type[BaseException], message: str = "engine says no") -> BaseException:
    return cls(message)


@pytest.mark.parametrize(
    ("exc", "want"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file"), errno.ENOENT),
        (PermissionError(errno.EACCES, "Permission denied"), errno.EACCES),
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (OSError(errno.ENOTEMPTY, "Directory not empty"), errno.ENOTEMPTY),
        (OSError(errno.EIO, "Input/output error: segment failed authentication"), errno.EIO),
        (OSError("no errno at all"), errno.EIO),
        (pyfuse3.FUSEError(errno.ENOTDIR), errno.ENOTDIR),
        (engine_error(_native.IntegrityError), errno.EIO),
        (engine_error(_native.WrongKeyError), errno.EIO),
        (engine_error(_native.FusefsError), errno.EIO),
        (RuntimeError("a bug"), errno.EIO),
        (KeyError("ino"), errno.EIO),
        (AssertionError("invariant"), errno.EIO),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_exception_becomes_its_errno(exc: BaseException, want: int) -> None:
    assert fuse_errno(exc, getattr_) == want


def test_an_engine_error_with_an_errno_becomes_that_errno() -> None:
    exc = _native.StreamIOError("engine I/O")
    try:
        exc.errno = errno.EROFS
    except AttributeError:
        pytest.skip("the engine's errors do not take an errno from Python")
    assert fuse_errno(exc, getattr_) == errno.EROFS


def test_refusals_are_not_logged_and_eio_and_the_unexpected_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="fusefs.fs"):
        fuse_errno(FileNotFoundError(errno.ENOENT, "No such file"), getattr_)
        fuse_errno(pyfuse3.FUSEError(errno.ENOTDIR), getattr_)
    assert caplog.records == []

    with caplog.at_level(logging.DEBUG, logger="fusefs.fs"):
        fuse_errno(OSError(errno.EIO, "segment failed authentication"), getattr_)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is None
    # The vault here cannot name the inode's path (a mount's can: /f in
    # test_mount_faults), so the line names the inode.
    assert record.getMessage() == "getattr of inode 5: " + str(
        OSError(errno.EIO, "segment failed authentication")
    )
    caplog.clear()

    for exc in (RuntimeError("a bug"), engine_error(_native.IntegrityError)):
        with caplog.at_level(logging.DEBUG, logger="fusefs.fs"):
            fuse_errno(exc, getattr_)
        [record] = caplog.records
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None and record.exc_info[1] is exc
        assert record.getMessage().startswith("getattr(5, ") and "failed" in record.getMessage()
        caplog.clear()


def test_mapping_holds_for_handlers_of_every_kind() -> None:
    """Inline calls, calls in a worker thread, and calls behind a check."""
    big = fs.THREAD_MIN_BYTES
    calls: dict[str, Callable[[fs.VaultOperations], Awaitable[Any]]] = {
        "lookup": lambda ops: ops.lookup(1, b"name", CTX),
        "mkdir": lambda ops: ops.mkdir(1, b"d", 0o755, CTX),  # getattr of the parent first
        "unlink": lambda ops: ops.unlink(1, b"f", CTX),
        "rename": lambda ops: ops.rename(1, b"a", 1, b"b", 0, CTX),
        "opendir": lambda ops: ops.opendir(1, CTX),
        "readdir": lambda ops: ops.readdir(1, 0, None),
        "open": lambda ops: ops.open(7, 0, CTX),
        "read small": lambda ops: ops.read(7, 0, 4096),
        "read in a thread": lambda ops: ops.read(7, 0, big),
        "write in a thread": lambda ops: ops.write(7, 0, bytes(big)),
        "fsync in a thread": lambda ops: ops.fsync(7, False),
        "release": lambda ops: ops.release(7),
        "getxattr": lambda ops: ops.getxattr(7, b"user.x", CTX),
        "control sync": lambda ops: ops.getxattr(1, b"fusefs.sync", CTX),
    }
    for what, call in calls.items():
        assert fuse_errno(OSError(errno.EROFS, "Read-only"), call) == errno.EROFS, what
        assert fuse_errno(RuntimeError("bug"), call) == errno.EIO, what


def test_work_in_a_thread_is_counted_in_flight_while_out() -> None:
    seen: list[int] = []
    in_flight = InFlight()

    class SlowVault:
        def read(self, fh: int, off: int, size: int) -> bytes:
            seen.append(in_flight.count)
            raise OSError(errno.EIO, "bad segment")

    async def main() -> None:
        ops = fs.VaultOperations(SlowVault(), "/v", in_flight=in_flight)  # type: ignore[arg-type]
        with pytest.raises(pyfuse3.FUSEError):
            await ops.read(7, 0, fs.THREAD_MIN_BYTES)

    trio.run(main)
    assert seen == [1] and in_flight.count == 0


def test_handler_counts_each_request() -> None:
    _, ops = run_handler(RuntimeError("bug"), getattr_)
    assert ops.ops["getattr"] == 1


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("a bug"),
        OSError(errno.EIO, "I/O"),
        pyfuse3.FUSEError(errno.ENOENT),
        engine_error(_native.IntegrityError),
    ],
    ids=lambda v: type(v).__name__,
)
def test_forget_never_raises(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    # forget hands the kernel's counts to the vault; a failing vault must not
    # end the mount.
    with caplog.at_level(logging.DEBUG, logger="fusefs.fs"):
        raised, ops = run_handler(exc, lambda ops: ops.forget([(5, 1)]))
    assert raised is None
    assert ops.vault.calls == ["forget"]  # type: ignore[attr-defined]
    assert ops.ops["forget"] == 1
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.exc_info[1] is exc
    assert record.getMessage() == "forget([(5, 1)],) failed (ignored: forget cannot fail)"


def test_forget_lets_cancellation_through() -> None:
    @fs.forget_handler
    async def forget(self: fs.VaultOperations, inode_list: list[tuple[int, int]]) -> None:
        await trio.sleep_forever()

    async def main() -> None:
        ops = fs.VaultOperations(RaisingVault(RuntimeError()), "/v")  # type: ignore[arg-type]
        with trio.move_on_after(0.01) as scope:
            await forget(ops, [(5, 1)])
        assert scope.cancelled_caught

    trio.run(main)


def test_every_request_handler_is_wrapped() -> None:
    """Each pyfuse3.Operations coroutine VaultOperations defines maps its errors."""
    names = [
        name
        for name, value in vars(fs.VaultOperations).items()
        if inspect.iscoroutinefunction(value) and hasattr(pyfuse3.Operations, name)
    ]
    assert len(names) >= 25, names  # lookup ... access: the test sees them
    for name in names:
        wrapper = vars(fs.VaultOperations)[name]
        want = "never raises" if name == "forget" else "errno"
        assert getattr(wrapper, "fusefs_handler", None) == want, name


class AbsentVault:
    """A vault in which no name and no extended attribute exists."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def find_entry(self, parent: int, name: bytes) -> None:
        self.calls.append("find_entry")

    def find_xattr(self, ino: int, name: bytes) -> None:
        self.calls.append("find_xattr")


def test_absent_names_and_attributes_are_answered_without_an_exception() -> None:
    vault = AbsentVault()
    box: list[Any] = []

    async def main() -> None:
        ops = fs.VaultOperations(vault, "/v", in_flight=InFlight())  # type: ignore[arg-type]
        box.append(await ops.lookup(1, b"new.txt", CTX))
        with pytest.raises(pyfuse3.FUSEError) as e:
            await ops.getxattr(7, b"security.capability", CTX)
        box.append(e.value.errno)

    trio.run(main)
    negative, code = box
    assert negative.st_ino == 0 and negative.entry_timeout == fs.CACHE_SECONDS
    assert code == errno.ENODATA
    assert vault.calls == ["find_entry", "find_xattr"]


@pytest.mark.parametrize(
    ("op", "args", "use"),
    [
        ("statfs", (CTX,), False),
        ("getattr", (fs.ROOT_INO, CTX), False),
        ("getxattr", (fs.ROOT_INO, b"fusefs.pid", CTX), False),
        ("getattr", (7, CTX), True),
        ("getxattr", (7, b"user.x", CTX), True),
        ("lookup", (1, b"x", CTX), True),
        ("release", (7,), True),
    ],
)
def test_only_passive_requests_leave_the_idle_time_running(
    op: str, args: tuple[Any, ...], use: bool
) -> None:
    def call(ops: fs.VaultOperations) -> Awaitable[Any]:
        ops.last_request = 0.0
        return getattr(ops, op)(*args)  # type: ignore[no-any-return]

    _, ops = run_handler(RuntimeError("whatever the vault says"), call)
    assert (ops.last_request > 0.0) is use


def test_an_entry_carries_every_attribute_of_the_vault(tmp_path: Any) -> None:
    v = _native.Vault.create(tmp_path / "v", b"pw", argon2_m_kib=64, argon2_t=1)
    try:
        f = v.create_file(fs.ROOT_INO, b"f", 0o640, 1234, 5678)
        v.write(f.ino, 0, b"x" * 5000)
        a = v.setattr(f.ino, atime_ns=-1_500_000_000, mtime_ns=2**62, ctime_ns=7)
        e = fs.VaultOperations(v, str(tmp_path / "v"), in_flight=InFlight()).entry(a)
    finally:
        v.close()
    got = (e.st_ino, e.st_mode, e.st_nlink, e.st_uid, e.st_gid, e.st_rdev, e.st_size)
    assert got == (a.ino, a.mode, a.nlink, 1234, 5678, 0, 5000)
    assert (e.st_blocks, e.st_atime_ns, e.st_mtime_ns, e.st_ctime_ns) == (
        a.blocks,
        -1_500_000_000,
        2**62,
        7,
    )
    assert e.st_blocks > 0 and e.generation == 0
    assert e.entry_timeout == e.attr_timeout == fs.CACHE_SECONDS and e.st_blksize == 65536
