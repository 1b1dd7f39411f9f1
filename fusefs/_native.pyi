"""Type stubs for fusefs._native, the PyO3 binding of crypto-core."""

from collections.abc import Callable
from os import PathLike
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, final

__all__ = [
    "FusefsError",
    "WrongKeyError",
    "IntegrityError",
    "FormatError",
    "ResumeError",
    "ParamsError",
    "CancelledError",
    "StreamIOError",
    "Cipher",
    "Format",
    "EncryptParams",
    "ParallelismProfile",
    "Key",
    "TelemetrySnapshot",
    "encrypt_path",
    "decrypt_path",
    "encrypt_file",
    "decrypt_file",
    "Job",
    "spawn_encrypt_path",
    "spawn_decrypt_path",
    "HEADER_LEN",
    "FRAME_HEADER_LEN",
    "DEFAULT_SEGMENT_SIZE_V2",
    "DEFAULT_CHUNK_SIZE_V1",
    "MIN_SEGMENT_SIZE",
    "MAX_SEGMENT_SIZE",
    "DEFAULT_CHECKPOINT_BYTES",
    "VERSION",
    "Attr",
    "VaultUsage",
    "VaultTelemetry",
    "LogCompactionReport",
    "PackCompactionReport",
    "CompactionCycleReport",
    "Vault",
    "ROOT_INO",
    "vault_info",
    "change_vault_password",
    "allow_expensive_kdf",
    "kdf_floor_problem",
    "secret_memory_status",
]

class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes | None: ...

class _Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...

HEADER_LEN: int
FRAME_HEADER_LEN: int
DEFAULT_SEGMENT_SIZE_V2: int
DEFAULT_CHUNK_SIZE_V1: int
MIN_SEGMENT_SIZE: int
MAX_SEGMENT_SIZE: int
DEFAULT_CHECKPOINT_BYTES: int
VERSION: str

class FusefsError(Exception):
    kind: str
    errno: int | None
    filename: str | None
    strerror: str | None

class WrongKeyError(FusefsError): ...
class IntegrityError(FusefsError): ...
class FormatError(FusefsError): ...
class ResumeError(FusefsError): ...
class ParamsError(FusefsError): ...
class CancelledError(FusefsError): ...
class StreamIOError(FusefsError): ...

# PyO3 enums: their members are instances, compared with == (also with
# their int values), hashable; not enum.Enum subclasses.
@final
class Cipher:
    AES_256_GCM: ClassVar[Cipher]
    CHACHA20_POLY1305: ClassVar[Cipher]
    def __int__(self) -> int: ...
    @property
    def label(self) -> str: ...
    @staticmethod
    def from_label(label: str) -> Cipher: ...

@final
class Format:
    V1: ClassVar[Format]
    V2: ClassVar[Format]
    def __int__(self) -> int: ...

@final
class ParallelismProfile:
    @staticmethod
    def auto() -> ParallelismProfile: ...
    @staticmethod
    def single() -> ParallelismProfile: ...
    @staticmethod
    def fixed(threads: int) -> ParallelismProfile: ...
    @property
    def threads(self) -> int: ...

@final
class Key:
    @staticmethod
    def from_password(password: _Secret) -> Key: ...
    @staticmethod
    def from_raw(key: _Secret) -> Key: ...
    @property
    def is_password(self) -> bool: ...

@final
class EncryptParams:
    def __new__(
        cls,
        format: Format = ...,
        cipher: Cipher = ...,
        segment_size: int | None = None,
        compress: bool = False,
        compression_level: int = ...,
        argon2_m_kib: int = ...,
        argon2_t: int = ...,
        argon2_p: int = ...,
        checkpoint_bytes: int = ...,
    ) -> EncryptParams:
        """Defaults: format V2, AES-256-GCM, the format's segment size, zstd
        level 3 when ``compress``, Argon2id 32 MiB / 3 passes / 1 lane,
        checkpoints every ``DEFAULT_CHECKPOINT_BYTES``."""
    @property
    def format(self) -> Format: ...
    @property
    def cipher(self) -> Cipher: ...
    @property
    def segment_size(self) -> int: ...
    @property
    def compress(self) -> bool: ...
    @property
    def compression_level(self) -> int | None: ...
    @property
    def checkpoint_bytes(self) -> int: ...

@final
class TelemetrySnapshot:
    bytes_in: int
    bytes_out: int
    plaintext_bytes: int
    segments: int
    compressed_segments: int
    compression_ratio: float
    crypto_seconds: float
    io_seconds: float
    compression_seconds: float
    elapsed_seconds: float
    throughput_mib_s: float
    workers: int
    def to_dict(self) -> dict[str, Any]: ...

@final
class Job:
    def done(self) -> bool: ...
    def progress(self) -> tuple[int, int]: ...
    def cancel(self) -> None: ...
    def wait(self, timeout: float | None = None) -> TelemetrySnapshot | None: ...

_Path = str | PathLike[str]
#: A secret crosses as bytes or, wiped by the caller afterwards, a bytearray.
_Secret = bytes | bytearray

def encrypt_path(
    src: _Path,
    dst: _Path,
    key: Key,
    params: EncryptParams | None = None,
    parallelism: ParallelismProfile | None = None,
    resume: bool = False,
) -> TelemetrySnapshot: ...
def decrypt_path(
    src: _Path,
    dst: _Path,
    key: Key,
    parallelism: ParallelismProfile | None = None,
    resume: bool = False,
    checkpoint_bytes: int = ...,  # DEFAULT_CHECKPOINT_BYTES
) -> TelemetrySnapshot: ...
def encrypt_file(
    src: _Readable,
    dst: _Writable,
    key: Key,
    params: EncryptParams | None = None,
    parallelism: ParallelismProfile | None = None,
) -> TelemetrySnapshot: ...
def decrypt_file(
    src: _Readable,
    dst: _Writable,
    key: Key,
    parallelism: ParallelismProfile | None = None,
) -> TelemetrySnapshot: ...
def spawn_encrypt_path(
    src: _Path,
    dst: _Path,
    key: Key,
    params: EncryptParams | None = None,
    parallelism: ParallelismProfile | None = None,
    resume: bool = False,
) -> Job: ...
def spawn_decrypt_path(
    src: _Path,
    dst: _Path,
    key: Key,
    parallelism: ParallelismProfile | None = None,
    resume: bool = False,
    checkpoint_bytes: int = ...,  # DEFAULT_CHECKPOINT_BYTES
) -> Job: ...

ROOT_INO: int

@final
class Attr:
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    @property
    def stat(self) -> tuple[int, int, int, int, int, int, int, int, int, int, int]:
        """(ino, mode, nlink, uid, gid, rdev, size, blocks, atime_ns,
        mtime_ns, ctime_ns): every field in one call."""

@final
class VaultUsage:
    files: int
    bytes: int
    dirs: int
    def to_dict(self) -> dict[str, int]: ...

@final
class VaultTelemetry:
    """Counts kept by the engine: inodes .. compaction_cycles; since the
    open: reads .. cache_misses; cache_bytes (held), cache_capacity; on disk
    now: log_bytes, pack_bytes, snapshot_bytes; compaction: the scheduler
    started (compaction_running), a cycle running now, this session's last
    cycle (seconds ago and pack bytes reclaimed; None before the first)."""

    inodes: int
    dirs: int
    stored_bytes: int
    packs: int
    live_bytes: int
    dead_bytes: int
    log_bytes_since_snapshot: int
    idle_seconds: float
    compaction_cycles: int
    reads: int
    bytes_read: int
    writes: int
    bytes_written: int
    fsyncs: int
    cache_hits: int
    cache_misses: int
    cache_bytes: int
    cache_capacity: int
    log_bytes: int
    pack_bytes: int
    snapshot_bytes: int
    compaction_running: bool
    compacting_now: bool
    last_compaction_seconds_ago: float | None
    last_compaction_reclaimed_bytes: int | None
    def to_dict(self) -> dict[str, int | float | bool | None]: ...

@final
class LogCompactionReport:
    snapshot: int
    covers_seq: int
    log_files_deleted: int
    snapshots_deleted: int
    def to_dict(self) -> dict[str, int]: ...

@final
class PackCompactionReport:
    packs_deleted: int
    bytes_copied: int
    bytes_reclaimed: int
    def to_dict(self) -> dict[str, int]: ...

@final
class CompactionCycleReport:
    """What each half of one cycle did; None: it did not run."""

    log: LogCompactionReport | None
    packs: PackCompactionReport | None
    def to_dict(self) -> dict[str, dict[str, int] | None]: ...

@final
class Vault:
    """An open vault; refusals raise OSError with the errno the kernel should see."""

    @staticmethod
    def create(
        path: _Path,
        password: _Secret,
        cipher: str = "aes-256-gcm",
        segment_size: int = 65536,
        compression_level: int | None = None,
        argon2_m_kib: int = 65536,
        argon2_t: int = 3,
        *,
        cache_bytes: int = ...,
    ) -> Vault:
        """``cache_bytes``: memory for decrypted segments (LRU; 0 turns it off;
        32 MiB by default).
        Opening a vault that is open already (here or in another process)
        raises OSError(EBUSY) naming the holder's pid."""
    @staticmethod
    def open(
        path: _Path,
        password: _Secret,
        *,
        cache_bytes: int = ...,
        salvage: bool = ...,
        read_only: bool = ...,
        beside_writer: bool = ...,
        local_state_dir: _Path | None = ...,
        accept_rollback: bool = ...,
    ) -> Vault: ...
    @staticmethod
    def open_with_master_key(
        path: _Path,
        master_key: _Secret | str,
        *,
        cache_bytes: int = ...,
        salvage: bool = ...,
        read_only: bool = ...,
        beside_writer: bool = ...,
        local_state_dir: _Path | None = ...,
        accept_rollback: bool = ...,
    ) -> Vault: ...
    def print_master_key(self) -> str: ...
    def lookup(self, parent: int, name: bytes) -> Attr: ...
    def find_entry(self, parent: int, name: bytes) -> Attr | None:
        """As :meth:`lookup`, but ``None`` where the name is absent (ENOENT)."""
    def getattr(self, ino: int) -> Attr: ...
    def setattr(
        self,
        ino: int,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        size: int | None = None,
        atime_ns: int | None = None,
        mtime_ns: int | None = None,
        ctime_ns: int | None = None,
    ) -> Attr:
        """Change attributes; ``size`` truncates or grows (sparse). Times not
        given are stamped now, as :attr:`file_times` says."""
    @property
    def file_times(self) -> Literal["engine", "kernel"]:
        """Who keeps mtime and ctime of regular files. ``"engine"`` (the
        default): every write, truncate and attribute change stamps them now.
        ``"kernel"``: a FUSE kernel with the writeback cache keeps them and
        sends them in ``setattr``; writes and truncates leave them as they
        are, and ``setattr`` stores only the times it is given. Directories,
        symlinks and special files are stamped by the engine either way."""
    @file_times.setter
    def file_times(self, owner: Literal["engine", "kernel"]) -> None: ...
    def create_file(self, parent: int, name: bytes, mode: int, uid: int, gid: int) -> Attr: ...
    def mknod(
        self, parent: int, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0
    ) -> Attr: ...
    def mkdir(self, parent: int, name: bytes, mode: int, uid: int, gid: int) -> Attr: ...
    def symlink(self, parent: int, name: bytes, target: bytes, uid: int, gid: int) -> Attr: ...
    def readlink(self, ino: int) -> bytes: ...
    def link(self, ino: int, new_parent: int, new_name: bytes) -> Attr: ...
    def unlink(self, parent: int, name: bytes) -> None: ...
    def rmdir(self, parent: int, name: bytes) -> None: ...
    def rename(
        self,
        parent: int,
        name: bytes,
        new_parent: int,
        new_name: bytes,
        noreplace: bool = False,
        exchange: bool = False,
    ) -> None: ...
    def readdir(
        self, ino: int, offset: int = 0, limit: int = 1024
    ) -> list[tuple[bytes, int, int, int]]:
        """(name, ino, st_mode type bits, next_offset) of the entries after
        ``offset``; offsets are stable cookies."""
    def readdirplus(
        self, ino: int, offset: int = 0, limit: int = 1024
    ) -> list[tuple[bytes, Attr, int]]:
        """(name, attributes, next_offset) of the entries after ``offset``,
        read under one lock; entries added or removed between calls never make
        a listing skip or repeat another entry."""
    def open_file(self, ino: int) -> Attr: ...
    def release_file(self, ino: int) -> None: ...
    def remember(self, *inos: int) -> None:
        """The kernel was handed these inodes' entries: one lookup each. An
        inode without names lives until the kernel forgets it and no handle
        is open. ENOENT, counting none, if one is gone."""
    def forget(self, forgotten: list[tuple[int, int]]) -> None:
        """The kernel forgot lookups, as (inode, nlookup) pairs; inodes left
        without name, handle or lookup are reclaimed."""
    def kernel_lookups(self, ino: int) -> int:
        """Lookups of ``ino`` the kernel holds (as remember/forget counted)."""
    def parent(self, ino: int) -> int:
        """The parent of directory ``ino`` (its ``..``; the root's is itself)."""
    def read(self, ino: int, offset: int, size: int) -> memoryview:
        """The bytes at ``offset`` (fewer at the end of the file): a read-only
        view of the engine's own buffer, not a copy."""
    def write(self, ino: int, offset: int, data: bytes) -> int: ...
    def write_noting_blocks(self, ino: int, offset: int, data: bytes) -> bool:
        """As :meth:`write` (all of ``data`` is written), and whether the
        file's ``st_blocks`` changed (a rewrite of stored bytes leaves it)."""
    def fsync(self, ino: int) -> None: ...
    def getxattr(self, ino: int, name: bytes) -> bytes: ...
    def find_xattr(self, ino: int, name: bytes) -> bytes | None:
        """As :meth:`getxattr`, but ``None`` where there is no such attribute (ENODATA)."""
    def setxattr(
        self, ino: int, name: bytes, value: bytes, create: bool = False, replace: bool = False
    ) -> None: ...
    def listxattr(self, ino: int) -> list[bytes]: ...
    def removexattr(self, ino: int, name: bytes) -> None: ...
    def statfs(self) -> VaultUsage:
        """Inodes of every kind, plaintext bytes stored, directories. O(1)."""
    def sync(self) -> None: ...
    def compact_log(self) -> LogCompactionReport: ...
    def compact(
        self, log: bool = True, packs: bool = True, pack_dead_ratio: float = 0.5
    ) -> CompactionCycleReport: ...
    def start_compaction(self, tick_ms: int = 1000, flush_ms: int = 5000) -> None: ...
    def stop_compaction(self) -> str | None: ...
    def telemetry(self) -> VaultTelemetry:
        """Counts kept by the engine (no copy of the metadata), this session's
        I/O and cache counts, sizes on disk now."""
    def fsck(
        self,
        quick: bool = False,
        progress: Callable[[int, int], object] | None = None,
        repair: bool = False,
        checkpoint_every: float | None = None,
    ) -> dict[str, Any]:
        """Check every invariant (crypto_core::fsck): ``{"findings": [{"check", "ino",
        "path", "detail", "text"}], "inodes", "directories", "files", "packs",
        "frames_verified", "bytes_verified", "repairs", "remaining"}``; ``quick``:
        metadata only; ``repair``: repair, then check again (``remaining``)."""
    def path_of(self, ino: int) -> str | None:
        """A path of ``ino`` from the root, for messages (walks the directories)."""
    def bootstrap_report(self) -> dict[str, Any]:
        """What opening did: ``snapshot``, ``entries_replayed``, ``log_files``,
        ``torn_bytes_cut``, ``removed_torn_log_file``, ``bad_snapshots``,
        ``removed_temporaries``, ``orphans_reclaimed``, ``stray_packs_removed``,
        ``carried_frames_restored``, ``log_files_mended``, ``snapshots_mended``,
        ``copies_refreshed``, ``config``,
        ``records_lost`` [(first, last, file, why)], ``records_unapplied`` [(seq, why)]."""
    def close(self) -> None: ...
    def __enter__(self) -> Vault: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None:
        """Close the vault; an exception in the block propagates."""

def vault_info(path: _Path) -> dict[str, Any]:
    """Public fields of ``path/fusefs.conf``; no password needed."""

def change_vault_password(
    path: _Path,
    old: _Secret,
    new_password: _Secret,
    old_is_master_key: bool = False,
    argon2_m_kib: int | None = None,
    argon2_t: int | None = None,
) -> None:
    """Re-seal the master key under ``new_password`` (atomic config rewrite)."""

def allow_expensive_kdf(allowed: bool) -> None:
    """Lift (True) or restore the limit on Argon2id costs read from headers
    and configs, for the rest of this process (``--allow-expensive-kdf``)."""

def kdf_floor_problem(m_kib: int, t: int) -> str | None:
    """Why Argon2id costs ``m_kib`` x ``t`` are too weak to create with, or None."""

def secret_memory_status() -> dict[str, int]:
    """Pages of key material held now: ``pages``, ``locked`` (mlock), ``dontdump``."""
