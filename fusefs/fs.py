"""The FUSE file system: kernel requests mapped onto the vault engine.

:class:`VaultOperations` is the ``pyfuse3.Operations`` of a mount. Each
handler translates one kernel request into one call of :class:`fusefs.Vault`
(inode numbers are the engine's, stable across mounts; a file handle is the
inode number, since the engine counts open handles per inode).

Lifetimes: every reply that hands the kernel an entry (lookup, create,
mknod, mkdir, symlink, link, and each readdirplus entry it accepts) counts
one lookup in the engine (:meth:`VaultOperations.counted`), and ``forget``
takes them back; an inode whose last name is gone lives until the kernel
has forgotten it and no handle is open, as on ext4 (an ``O_PATH``
descriptor, a current directory, a reader between lookup and open of a file
that an atomic save just replaced). ``.`` and ``..`` are listed but not
counted: the kernel does not count them.

Errors: a handler never lets an exception escape into pyfuse3 (:func:`handler`).
``OSError`` becomes its errno (the engine raises ``OSError(errno)`` for every
refusal and ``EIO`` for data that fails authentication); anything else is
logged with its traceback and becomes ``EIO``. ``forget`` cannot answer with an
error at all, so it logs and returns (:func:`forget_handler`).

Threads: the engine releases the GIL for crypto and I/O. Work big enough to
pay for a thread hop (large reads and writes, slow syncs) runs in trio worker
threads, so requests overlap on both cores; quick metadata calls run inline
on the trio thread, where a hop would cost more than the call. An fsync runs
inline while the vault's syncs are quick (:mod:`fusefs.syncplace`).

Caching: every change reaches the vault through this mount, so the kernel's
caches can be trusted for long: entries, negative entries and attributes
live for :data:`CACHE_SECONDS`, file data is kept across opens
(``keep_cache``), the writeback cache is on, and readdirplus returns
attributes with the names.

Times: with the writeback cache the kernel keeps mtime, ctime and size of
regular files and sends its times in ``setattr`` (at close, fsync, syncfs and
writeback; ``update_ctime`` included), so the engine stores exactly those and
stamps none of its own for them (``Vault.file_times = "kernel"``, set at
INIT; see rustlib/core/src/vault/times.rs for what the kernel sends when).
Directories, symlinks and special files keep the engine's times.

Requests the kernel need not send: there is no ``flush`` handler, so the
first FLUSH is answered ENOSYS and the kernel sends none after it. ``close``
still writes the file's dirty pages back and reports their errors (the
kernel does that before FLUSH, and does it without FLUSH too); what goes is
one round trip per ``close`` that would have done nothing here.

What pyfuse3 3.5 does not pass on (the kernel answers these itself):
``fallocate`` gets ``EOPNOTSUPP``, so glibc's ``posix_fallocate`` falls back
to writing zeros and ``fallocate(1) --keep-size`` fails; ``lseek`` with
``SEEK_DATA``/``SEEK_HOLE`` uses the generic implementation (all data, hole
at end of file); ``copy_file_range`` falls back to reads and writes.

Control interface: extended attributes of the root directory whose names
start with ``fusefs.`` (a prefix no kernel namespace uses) are not stored;
they are the channel of ``fusefs stats`` and ``fusefs umount`` to the
daemon, answered by :mod:`fusefs.control_server`. They are never listed.
Polling them, or ``statfs``, does not count as use for ``--idle``.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pyfuse3
import trio

from fusefs import control
from fusefs.control_server import MAYBE_PASSIVE_OPS, ControlServer, is_passive
from fusefs.errors import FusefsError
from fusefs.requestloop import InFlight
from fusefs.syncplace import SyncPlacement

if TYPE_CHECKING:
    from fusefs._native import Attr, Vault

log = logging.getLogger("fusefs.fs")

ROOT_INO = pyfuse3.ROOT_INODE
#: Lifetime of kernel-cached entries and attributes (seconds).
CACHE_SECONDS = 60.0
#: Reads and writes at least this big run in a worker thread.
THREAD_MIN_BYTES = 128 * 1024
#: Directory entries fetched from the engine per batch.
READDIR_BATCH = 512
#: readdir offsets taken by ``.`` and ``..`` before the engine's cookies.
DOTS = 2
#: Block size reported by statfs.
BLOCK_SIZE = 4096

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
XATTR_NAMESPACES = (b"user.", b"trusted.", b"security.")
#: Damage ``fusefs fsck --repair`` recorded in a file (crypto_core::fsck::damage).
DAMAGE_XATTR = b"fusefs.damaged"

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def handler(method: F) -> F:
    """Wrap a request handler: count it, note activity, and map exceptions to errnos.

    What reaches pyfuse3 is only ever ``FUSEError``: an ``OSError`` becomes
    its errno (logged when that is EIO), an engine error (``FusefsError``)
    its errno or EIO, logged with its traceback, and anything else is logged
    with its traceback and becomes EIO.
    """
    name = method.__name__
    # Most requests are use whatever their arguments: only these look at them.
    maybe_passive = name in MAYBE_PASSIVE_OPS

    @functools.wraps(method)
    async def wrapper(self: VaultOperations, *args: Any) -> Any:
        self.ops[name] += 1
        if not (maybe_passive and is_passive(name, args)):
            self.last_request = time.monotonic()
        try:
            return await method(self, *args)
        except pyfuse3.FUSEError:
            raise
        except OSError as e:
            code = e.errno or errno.EIO
            if code == errno.EIO:
                log.error("%s of %s: %s", name, self.describe(args), e)
            raise pyfuse3.FUSEError(code) from None
        except FusefsError as e:
            # The engine raises OSError for what the kernel should see; one of
            # its own errors here is unexpected.
            log.exception("%s%r failed", name, args[:2])
            raise pyfuse3.FUSEError(getattr(e, "errno", None) or errno.EIO) from None
        except Exception:
            log.exception("%s%r failed", name, args[:2])
            raise pyfuse3.FUSEError(errno.EIO) from None

    wrapper.fusefs_handler = "errno"  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def forget_handler(method: F) -> F:
    """Wrap ``forget``: count it, note activity, and never raise.

    FORGET has no reply to carry an error, so pyfuse3 does not catch what
    ``forget`` raises: an exception, ``FUSEError`` included, would end the
    whole mount. It is logged with its traceback instead.
    """
    name = method.__name__

    @functools.wraps(method)
    async def wrapper(self: VaultOperations, *args: Any) -> None:
        self.ops[name] += 1
        self.last_request = time.monotonic()
        try:
            await method(self, *args)
        except Exception:
            log.exception("%s%r failed (ignored: forget cannot fail)", name, args[:1])

    wrapper.fusefs_handler = "never raises"  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


class VaultOperations(pyfuse3.Operations):
    """pyfuse3 request handlers over one open vault."""

    supports_dot_lookup = False
    enable_writeback_cache = True
    enable_acl = False

    def __init__(
        self,
        vault: Vault,
        vault_dir: str,
        *,
        read_only: bool = False,
        in_flight: InFlight | None = None,
    ) -> None:
        super().__init__()
        self.vault = vault
        self.vault_dir = vault_dir
        self.read_only = read_only
        self.ops: Counter[str] = Counter()
        self.last_request = time.monotonic()
        self.started = time.time()
        self.bytes_read = 0
        self.bytes_written = 0
        #: Open file handles (for --idle: never unmount with files open).
        self.open_handles = 0
        self.owner_uid = os.getuid()
        self._limiter = trio.CapacityLimiter(8)
        #: Entered around work handed to a thread: the request loop's
        #: counter (it does not spin while such work is out).
        self.in_flight = InFlight() if in_flight is None else in_flight
        self.sync_placement = SyncPlacement()
        #: Set once the kernel's INIT request has been answered.
        self.initialized = trio.Event()
        #: Set at INIT with the writeback cache: the kernel keeps the times
        #: and size of regular files, and caches their other attributes.
        self.kernel_keeps_file_times = False
        self._blksize = 65536
        #: Answers ``fusefs stats``/``umount`` (root xattrs named ``fusefs.*``).
        self.control = ControlServer(self)

    def describe(self, args: tuple[Any, ...]) -> str:
        """What a request's arguments name, for a log line: the path of its
        inode (every handler's first argument is an inode or a file handle,
        which is the inode), e.g. ``/docs/a.txt (inode 5)``."""
        if not args or not isinstance(args[0], int):
            return repr(args[:2])
        try:
            path = self.vault.path_of(args[0])
        except Exception:  # noqa: BLE001 - a message must not fail
            path = None
        return f"{path} (inode {args[0]})" if path else f"inode {args[0]}"

    def init(self) -> None:
        # Called while answering INIT; the reply goes out right after, before
        # any task waiting for this event runs.
        if self.enable_writeback_cache:
            # The kernel keeps mtime and ctime of regular files and sends them
            # in setattr (see setattr); the engine must not stamp its own.
            self.vault.file_times = "kernel"
            self.kernel_keeps_file_times = True
        self.initialized.set()

    # --- attributes ------------------------------------------------------------

    def entry(self, a: Attr) -> pyfuse3.EntryAttributes:
        """The reply's attributes of ``a``. Every reply that carries
        attributes builds one (most of an untar's requests): the fields come
        in one tuple (``Attr.stat``), not eleven attribute reads, and
        ``generation`` keeps its 0 from the constructor."""
        e = pyfuse3.EntryAttributes()
        (
            e.st_ino,
            e.st_mode,
            e.st_nlink,
            e.st_uid,
            e.st_gid,
            e.st_rdev,
            e.st_size,
            e.st_blocks,
            e.st_atime_ns,
            e.st_mtime_ns,
            e.st_ctime_ns,
        ) = a.stat
        e.entry_timeout = CACHE_SECONDS
        e.attr_timeout = CACHE_SECONDS
        e.st_blksize = self._blksize
        return e

    def counted(self, a: Attr) -> pyfuse3.EntryAttributes:
        """The entry of a reply that the kernel will count as one lookup of
        ``a.ino``: counted in the engine too, so the inode outlives its names
        for as long as the kernel may still ask for it."""
        self.vault.remember(a.ino)
        return self.entry(a)

    async def _thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self.in_flight:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _sync(self, fn: Callable[..., Any], *args: Any) -> None:
        """A sync, on this thread while syncs are quick (:mod:`fusefs.syncplace`)."""
        if self.sync_placement.inline:
            self.sync_placement.timed(fn, *args)
        else:
            await self._thread(self.sync_placement.timed, fn, *args)

    # --- lookup and attributes ---------------------------------------------------

    @handler
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if len(name) > 255:
            # As ext4 and tmpfs: a name that can never exist is too long, not absent.
            raise pyfuse3.FUSEError(errno.ENAMETOOLONG)
        # (find_entry, not lookup: the absent name, which the kernel asks about
        # before every create, costs no exception.)
        found = self.vault.find_entry(parent_inode, name)
        if found is not None:
            return self.counted(found)
        # A negative entry: the kernel remembers the name is absent.
        e = pyfuse3.EntryAttributes()
        e.st_ino = 0
        e.entry_timeout = CACHE_SECONDS
        return e

    @handler
    async def getattr(
        self, inode: int, ctx: pyfuse3.RequestContext | None = None
    ) -> pyfuse3.EntryAttributes:
        # For a regular file the kernel already knows, it keeps its own size,
        # mtime and ctime (writeback cache: fuse_get_cache_mask) and takes the
        # rest, st_blocks included, from here. Its times reach the engine
        # through setattr, so what it shows is what is stored once they have.
        return self.entry(self.vault.getattr(inode))

    @handler
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        kwargs: dict[str, int] = {}
        if fields.update_mode:
            kwargs["mode"] = attr.st_mode & 0o7777
        if fields.update_uid:
            kwargs["uid"] = attr.st_uid
        if fields.update_gid:
            kwargs["gid"] = attr.st_gid
        if fields.update_atime:
            kwargs["atime_ns"] = attr.st_atime_ns
        if fields.update_mtime:
            kwargs["mtime_ns"] = attr.st_mtime_ns
        if fields.update_ctime:
            # Sent for regular files under the writeback cache only: the
            # kernel's own ctime (the engine stamps it for everything else).
            kwargs["ctime_ns"] = attr.st_ctime_ns
        # An inode the kernel sends SETATTR for is one it still holds a
        # lookup of, so the engine still has it (unlinked or not): no
        # ENOENT to paper over (there was one when lifetimes ignored lookups).
        if fields.update_size:
            kwargs["size"] = attr.st_size
            call = functools.partial(self.vault.setattr, inode, **kwargs)
            return self.entry(await self._thread(call))
        return self.entry(self.vault.setattr(inode, **kwargs))

    @forget_handler
    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        # The engine reclaims those left without name, handle or lookup.
        self.vault.forget(list(inode_list))

    # --- namespace -----------------------------------------------------------------

    def _new_group(self, parent_inode: int, ctx: pyfuse3.RequestContext) -> tuple[int, int]:
        """(group, extra mode bits) of a new entry in ``parent_inode``.

        As ext4 and tmpfs do (FUSE leaves it to the file system): in a
        set-group-ID directory a new entry gets the directory's group, and a
        new subdirectory its set-group-ID bit too.
        """
        parent = self.vault.getattr(parent_inode)
        if parent.mode & stat.S_ISGID:
            return parent.gid, stat.S_ISGID
        return ctx.gid, 0

    @handler
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return self.vault.readlink(inode)

    @handler
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        gid, _ = self._new_group(parent_inode, ctx)
        return self.counted(self.vault.mknod(parent_inode, name, mode, ctx.uid, gid, rdev))

    @handler
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        gid, setgid = self._new_group(parent_inode, ctx)
        return self.counted(self.vault.mkdir(parent_inode, name, mode | setgid, ctx.uid, gid))

    @handler
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        gid, _ = self._new_group(parent_inode, ctx)
        return self.counted(self.vault.symlink(parent_inode, name, target, ctx.uid, gid))

    @handler
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self.counted(self.vault.link(inode, new_parent_inode, new_name))

    @handler
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.vault.unlink(parent_inode, name)

    @handler
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.vault.rmdir(parent_inode, name)

    @handler
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise pyfuse3.FUSEError(errno.EINVAL)  # RENAME_WHITEOUT: overlayfs only
        self.vault.rename(
            parent_inode_old,
            name_old,
            parent_inode_new,
            name_new,
            noreplace=bool(flags & RENAME_NOREPLACE),
            exchange=bool(flags & RENAME_EXCHANGE),
        )

    # --- directories -----------------------------------------------------------------

    @handler
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        if not stat.S_ISDIR(self.vault.getattr(inode).mode):
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    @handler
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        # Offsets: 1 after ".", 2 after "..", and DOTS + the engine's stable
        # directory cookie after an entry, so entries added or removed
        # between calls never make a listing skip or repeat the rest.
        if start_id < DOTS:
            dots = ((b".", fh), (b"..", self.vault.parent(fh)))
            for offset in range(start_id, DOTS):
                name, ino = dots[offset]
                if not pyfuse3.readdir_reply(token, name, _dot_entry(ino), offset + 1):
                    return
        offset = max(start_id, DOTS) - DOTS
        while True:
            batch = self.vault.readdirplus(fh, offset, READDIR_BATCH)
            if not batch:
                return
            accepted: list[int] = []
            full = False
            for name, attr, next_offset in batch:
                if not pyfuse3.readdir_reply(token, name, self.entry(attr), next_offset + DOTS):
                    full = True
                    break
                accepted.append(attr.ino)
                offset = next_offset
            # Each entry the kernel took is one lookup of it (pyfuse3's readdir contract).
            self.vault.remember(*accepted)
            if full:
                return

    @handler
    async def releasedir(self, fh: int) -> None:
        return None

    @handler
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        # A directory's entries are log records: what an fsync makes durable.
        await self._sync(self.vault.fsync, fh)

    # --- files -------------------------------------------------------------------------

    @handler
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if flags & os.O_TRUNC:
            # libfuse asks for atomic O_TRUNC: the kernel passes it on instead
            # of sending a setattr, and only truncates its own cache.
            await self._thread(functools.partial(self.vault.setattr, inode, size=0))
        self.vault.open_file(inode)
        self.open_handles += 1
        # Every change goes through this mount, so cached pages stay valid.
        return pyfuse3.FileInfo(fh=inode, keep_cache=True)

    @handler
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        gid, _ = self._new_group(parent_inode, ctx)
        attr = self.vault.create_file(parent_inode, name, mode, ctx.uid, gid)
        self.vault.open_file(attr.ino)
        self.open_handles += 1
        return pyfuse3.FileInfo(fh=attr.ino, keep_cache=True), self.counted(attr)

    @handler
    async def read(self, fh: int, off: int, size: int) -> memoryview:  # type: ignore[override]
        # A view of the engine's buffer: pyfuse3 replies from any contiguous
        # buffer (PyObject_GetBuffer), though its stub says bytes.
        if size >= THREAD_MIN_BYTES:
            data: memoryview = await self._thread(self.vault.read, fh, off, size)
        else:
            data = self.vault.read(fh, off, size)
        self.bytes_read += len(data)
        return data

    @handler
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        if len(buf) >= THREAD_MIN_BYTES:
            blocks_changed = await self._thread(self.vault.write_noting_blocks, fh, off, buf)
        else:
            blocks_changed = self.vault.write_noting_blocks(fh, off, buf)
        self.bytes_written += len(buf)
        if blocks_changed and self.kernel_keeps_file_times:
            # The kernel keeps the st_blocks of our last reply and asks again
            # only after a close (fuse_flush invalidates it): tell it that
            # the stored blocks changed, so that stat of a file still open
            # shows them. Attributes only: this takes no lock a request holds.
            # (Not after rewrites: the notice and its GETATTR cost ~15% each.)
            pyfuse3.invalidate_inode(fh, attr_only=True)
        return len(buf)  # all of it, or the engine raised

    @handler
    async def release(self, fh: int) -> None:
        self.open_handles -= 1
        self.vault.release_file(fh)

    @handler
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self._sync(self.vault.fsync, fh)

    # --- extended attributes -----------------------------------------------------------

    @handler
    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        if inode == ROOT_INO and name.startswith(control.PREFIX):
            await self.control.set(name, value, ctx)
            return
        _check_xattr_name(name)
        self.vault.setxattr(inode, name, value)

    @handler
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        if inode == ROOT_INO and name.startswith(control.PREFIX):
            return await self.control.get(name, ctx)
        if name != DAMAGE_XATTR:  # what fsck --repair recorded: readable, not settable
            _check_xattr_name(name)
        # The kernel asks for security.capability before every write and
        # chown (FUSE has no SB_NOSEC to remember its absence): find_xattr
        # answers the absent attribute without an exception in between.
        value = self.vault.find_xattr(inode, name)
        if value is None:
            raise pyfuse3.FUSEError(errno.ENODATA)
        return value

    @handler
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return self.vault.listxattr(inode)

    @handler
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        _check_xattr_name(name)
        self.vault.removexattr(inode, name)

    # --- the file system as a whole ---------------------------------------------------------

    @handler
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        # Space is the vault directory's (ciphertext takes a little more than
        # the plaintext); the number of files is the vault's own.
        under = os.statvfs(self.vault_dir)
        usage = self.vault.statfs()
        scale = under.f_frsize / BLOCK_SIZE
        s = pyfuse3.StatvfsData()
        s.f_bsize = BLOCK_SIZE
        s.f_frsize = BLOCK_SIZE
        s.f_blocks = int(under.f_blocks * scale)
        s.f_bfree = int(under.f_bfree * scale)
        s.f_bavail = int(under.f_bavail * scale)
        free_files = under.f_ffree if under.f_files else 2**32
        s.f_files = usage.files + free_files
        s.f_ffree = free_files
        s.f_favail = free_files
        s.f_namemax = 255
        return s

    @handler
    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        return True  # mounted with default_permissions: the kernel checks


def _dot_entry(ino: int) -> pyfuse3.EntryAttributes:
    """A ``.`` or ``..`` entry of readdirplus: only its inode number and type
    reach getdents. The kernel neither counts it as a lookup nor takes its
    attributes (fs/fuse/readdir.c, fuse_direntplus_link), so none are read."""
    e = pyfuse3.EntryAttributes()
    e.st_ino = ino
    e.st_mode = stat.S_IFDIR
    return e


def _check_xattr_name(name: bytes) -> None:
    # Names outside the namespaces a regular file system stores (system.*
    # ACLs included: the mount does not enable POSIX ACLs) are refused as
    # ext4 and tmpfs refuse them.
    if not name.startswith(XATTR_NAMESPACES):
        raise pyfuse3.FUSEError(errno.EOPNOTSUPP)
