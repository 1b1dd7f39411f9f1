//! `Vault`: the engine the FUSE layer calls. This file holds the struct,
//! the types of its API, and what every job of it shares: the state lock
//! (`StateGuard`), `commit`, per-file keys and locks. The jobs are `impl
//! Vault` blocks of their own (see the module doc of [`crate::vault`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::cache::SegmentCache;
use super::config::VaultConfig;
use super::references::References;
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::error::Result;
use crate::log::unified::LogManager;
use crate::metadata::{Inode, InodeKind, MetadataState, Timespec, UnifiedEntry, ROOT_INO};
use crate::packs::PackStore;
use crate::recovery::bootstrap::BootstrapReport;
use crate::storage::{FileSystem, LockGuard};

/// Largest file size (segment index × segment size must fit in u64 offsets).
pub const MAX_FILE_SIZE: u64 = 1 << 60;

pub fn now() -> Timespec {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

/// What `stat` reports for an inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: InodeKind,
    /// Permission bits (the type bits are in `kind`).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    /// 512-byte blocks of plaintext actually stored (holes cost nothing).
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

/// One directory entry as readdir returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub kind: InodeKind,
    /// Offset to pass to continue after this entry.
    pub next_offset: u64,
}

/// Options of an open vault (the rest comes from fusefs.conf).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub log_rotate_bytes: u64,
    pub pack_size_limit: u64,
    /// Plaintext bytes of decrypted segments kept in memory (LRU; 0: none).
    pub cache_bytes: usize,
    /// Open past log damage that neither copy mends, losing the records
    /// that cannot be read (fsck's repair; see [`BootstrapReport`]).
    ///
    /// [`BootstrapReport`]: crate::recovery::bootstrap::BootstrapReport
    pub salvage: bool,
    /// Write nothing to the vault (`fusefs mount --read-only`, fsck of a
    /// mounted vault): the files are opened through
    /// [`crate::storage::readonly::ReadOnlyFs`], bootstrap changes nothing
    /// on disk, the vault's lock is taken shared, and every change is
    /// refused with `EROFS`.
    pub read_only: bool,
    /// With `read_only`: open even while a writer holds the vault (fsck of
    /// a mounted vault). Best effort: the writer may change or delete
    /// files as they are read, so what is read can look damaged or be
    /// behind; the caller says so.
    pub beside_writer: bool,
    /// Where this machine keeps the local state of its vaults (the user's
    /// state directory; see [`super::local_state`]); `None`: no rollback
    /// protection (the default: engine tests, tools).
    pub local_state_dir: Option<PathBuf>,
    /// Open a vault that is behind its local state anyway (the user said
    /// so); the local state then takes the vault as it is.
    pub accept_rollback: bool,
}

/// Generations reserved at a time (see [`Vault::take_generation`]): a
/// record and a log sync per this many frames written; a session leaves
/// at most this many unused. 2^64 / 2^20: 16 trillion sessions.
pub const GENERATION_RESERVE: u64 = 1 << 20;

/// Default size of the decrypted-segment cache.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            log_rotate_bytes: 64 << 20,
            pack_size_limit: 64 << 20,
            cache_bytes: DEFAULT_CACHE_BYTES,
            salvage: false,
            read_only: false,
            beside_writer: false,
            local_state_dir: None,
            accept_rollback: false,
        }
    }
}

/// Rename behaviour (renameat2 flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameFlags {
    pub noreplace: bool,
    pub exchange: bool,
}

pub struct Vault {
    pub(super) dir: PathBuf,
    pub(super) fs: Arc<dyn FileSystem>,
    pub(super) config: VaultConfig,
    pub(super) master: SecretKey,
    pub(super) state: Mutex<MetadataState>,
    pub(super) log: LogManager,
    pub(super) packs: Arc<PackStore>,
    /// Per-file content keys, bounded by [`super::file_keys`].
    pub(super) keys: Mutex<HashMap<[u8; 16], Arc<AeadKey>>>,
    /// Open handles and kernel lookups per inode (see [`References`]).
    pub(super) references: Mutex<References>,
    pub(super) file_locks: Mutex<HashMap<u64, Arc<Mutex<()>>>>,
    pub(super) generation: AtomicU64,
    /// Generations up to this one are reserved by a durable record
    /// (ReserveGenerations): a frame may carry them. See
    /// [`Vault::take_generation`].
    pub(super) generation_limit: AtomicU64,
    /// Held while a reservation is made.
    pub(super) reserving: Mutex<()>,
    /// What this machine remembers of the vault (rollback protection),
    /// kept up to date after each log sync; `None` without a state
    /// directory, or read-only.
    pub(super) local: Option<Arc<super::local_state::LocalState>>,
    pub(super) report: BootstrapReport,
    /// When the last change was committed (for the scheduler's idle test).
    pub(super) last_change: Mutex<std::time::Instant>,
    /// Held by a compaction from start to end: two at once could delete
    /// each other's log files.
    pub(super) compaction: Mutex<()>,
    /// Held shared by every call that looks up where a file's frames are
    /// and then reads them or commits new ones (read, write, truncate);
    /// pack compaction takes it exclusively, for an instant, before it
    /// deletes packs (see `compact_packs`).
    pub(super) frames_in_use: std::sync::RwLock<()>,
    /// Frames freed by committed entries, punched once those are durable
    /// (see [`super::reclaim`]).
    pub(super) freed: Mutex<super::freed::FreedFrames>,
    /// A commit filled the log's queue: write it once the state lock is released.
    pub(super) log_write_due: std::sync::atomic::AtomicBool,
    pub(super) cache: SegmentCache,
    pub(super) counters: Counters,
    /// Whether the caller keeps the times of regular files
    /// (see [`super::times::FileTimes`]).
    pub(super) kernel_file_times: std::sync::atomic::AtomicBool,
    /// The vault lock (`fusefs.lock`), released when the vault is dropped.
    /// Declared last: fields drop in order, so the log's closing sync has
    /// happened before another opener can get in.
    pub(super) _lock: Box<dyn LockGuard>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The metadata state, locked. Releasing it first unlocks, then writes the
/// log's queue if a commit made under it filled a batch: sealing a batch
/// (256 KiB of records) and syncing the packs it may reference take
/// milliseconds, which no reader or writer should wait for. The records
/// are already queued in order, so what is written, and when it becomes
/// durable (at the next sync), is as before; only the thread that waits
/// changes. A failed write surfaces as it did: a retryable one keeps the
/// records queued (the next commit asks again), any other fails the log and
/// with it every later change and sync.
pub(super) struct StateGuard<'a> {
    guard: Option<MutexGuard<'a, MetadataState>>,
    vault: &'a Vault,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = MetadataState;
    fn deref(&self) -> &MetadataState {
        self.guard.as_ref().expect("held until drop")
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut MetadataState {
        self.guard.as_mut().expect("held until drop")
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if self.vault.log_write_due.swap(false, Relaxed) {
            // The outcome is recorded in the log (see above); nobody here
            // to report it to.
            let _ = self.vault.log.write_queued();
        }
    }
}

/// This session's I/O counts and compaction record (see `Vault::telemetry`).
#[derive(Default)]
pub(super) struct Counters {
    pub(super) reads: AtomicU64,
    pub(super) bytes_read: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) bytes_written: AtomicU64,
    pub(super) fsyncs: AtomicU64,
    /// A compaction cycle (`run_compaction`) is running now.
    pub(super) compacting: std::sync::atomic::AtomicBool,
    /// When the last cycle of this session ended, and the pack bytes it reclaimed.
    pub(super) last_compaction: Mutex<Option<(std::time::Instant, u64)>>,
}

impl Vault {
    pub(super) fn segment_size(&self) -> u64 {
        self.config.segment_size() as u64
    }

    pub(super) fn key_for(&self, file_id: &[u8; 16]) -> Arc<AeadKey> {
        let mut keys = lock(&self.keys);
        super::file_keys::get_or_derive(&mut keys, file_id, || {
            super::file_keys::derive(&self.master, self.config.cipher(), file_id)
        })
    }

    pub(super) fn file_lock(&self, ino: u64) -> Arc<Mutex<()>> {
        Arc::clone(lock(&self.file_locks).entry(ino).or_default())
    }

    /// A new generation for a frame about to be sealed: unique in the vault
    /// and, in format 2, never used again even after a crash (a frame's
    /// nonce is its generation). The first take above the reserved range
    /// reserves the next [`GENERATION_RESERVE`] first: a ReserveGenerations
    /// record, durable before the frame is written, so that a session after
    /// a crash starts above every generation any frame may carry, whether
    /// or not a record ever named the frame.
    pub(super) fn take_generation(&self) -> Result<u64> {
        let g = self.generation.fetch_add(1, Relaxed);
        if g > self
            .generation_limit
            .load(std::sync::atomic::Ordering::Acquire)
        {
            self.reserve_generations(g)?;
        }
        Ok(g)
    }

    fn reserve_generations(&self, at_least: u64) -> Result<()> {
        let _one = lock(&self.reserving);
        let limit = &self.generation_limit;
        if at_least <= limit.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let up_to = at_least.saturating_add(GENERATION_RESERVE);
        self.commit(
            &mut self.lock_state(),
            UnifiedEntry::ReserveGenerations { up_to },
        )?;
        self.log.sync()?;
        limit.store(up_to, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Apply `entry` and queue it in the log, as one step. A commit that
    /// fills the log's queue leaves the write to the release of the state
    /// lock (see [`StateGuard`]).
    pub(super) fn commit(&self, state: &mut MetadataState, entry: UnifiedEntry) -> Result<()> {
        // A log that takes no record (read-only, or stopped after a write
        // error) refuses before the state changes, so reads never show a
        // change that was refused.
        self.log.writable()?;
        let freed = state.apply_freeing(&entry)?;
        let (seq, due) = self.log.append_deferred(entry.encode())?;
        if due {
            self.log_write_due.store(true, Relaxed);
        }
        if !freed.is_empty() {
            lock(&self.freed).note(seq, self.packs.sync_ticket(), freed);
        }
        *lock(&self.last_change) = std::time::Instant::now();
        Ok(())
    }

    /// Frame locations looked up from here on stay readable, and frames
    /// written from here on stay in their pack, until the guard is dropped
    /// (see `frames_in_use`). Never taken twice by one thread.
    pub(super) fn use_frames(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.frames_in_use.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The state lock (see [`StateGuard`]).
    pub(super) fn lock_state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: Some(lock(&self.state)),
            vault: self,
        }
    }

    /// O(1): the link count and stored bytes are kept up to date by the state.
    pub(super) fn attr_of(state: &MetadataState, ino: u64, i: &Inode) -> Attr {
        let stored = i.stored;
        Attr {
            ino,
            kind: i.kind,
            mode: i.mode & 0o7777,
            nlink: state.nlink(ino),
            uid: i.uid,
            gid: i.gid,
            rdev: i.rdev,
            size: i.size,
            blocks: stored.div_ceil(512),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
        }
    }
}

/// The root directory's inode number.
pub const ROOT: u64 = ROOT_INO;
