//! `Vault`: the engine the FUSE layer calls, tying together the config and
//! keys, the metadata state machine, the unified log, the packs and the
//! snapshots.
//!
//! Every mutation is one [`UnifiedEntry`]: it is applied to the in-memory
//! state and appended to the log under one lock, so the log's order is the
//! state's order. File contents are sealed into pack frames *before* the
//! entry that points at them is appended, and the log makes those frames
//! durable before any record reaches its file (its before-write hook), so a
//! record on disk never points at a frame that is not.
//!
//! Writes to one file are serialized (read-modify-write of partial
//! segments); writes to different files and all reads run in parallel, with
//! the crypto outside every lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::crypto::random;
use crate::error::errno::*;
use crate::error::{fs_err, Error, Result};
use crate::log::entry::{AttrChange, InodeKind, Timespec, UnifiedEntry};
use crate::log::unified::{
    begin_log_compaction, finish_log_compaction, CompactionReport, LogManager, LogOptions,
};
use crate::recovery::bootstrap::{bootstrap, BootstrapReport};
use crate::storage::{FileSystem, LockGuard, TryLock};
use crate::vault::cache::SegmentCache;
use crate::vault::config::{purpose, subkey, VaultConfig};
use crate::vault::metadata::{Inode, MetadataState, ROOT_INO};
use crate::vault::packs::{PackOptions, PackStore};
use crate::vault::segment::SegmentRef;

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
}

/// Default size of the decrypted-segment cache.
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            log_rotate_bytes: 64 << 20,
            pack_size_limit: 64 << 20,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// Live counters of an open vault, read without copying the state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Telemetry {
    /// Inodes of every kind (the root included), and how many are directories.
    pub inodes: u64,
    pub dirs: u64,
    /// Plaintext bytes stored (holes cost nothing).
    pub stored_bytes: u64,
    pub packs: u64,
    pub live_bytes: u64,
    pub dead_bytes: u64,
    pub log_bytes_since_snapshot: u64,
    pub idle: std::time::Duration,
    pub compaction_cycles: u64,
    /// Since the vault was opened: `read`/`write` calls and their bytes, `fsync`/`sync` calls.
    pub reads: u64,
    pub bytes_read: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    /// Decrypted-segment cache: lookups served / not, bytes held, capacity.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_bytes: u64,
    pub cache_capacity: u64,
    /// Sizes on disk now: log files, pack files, snapshot files.
    pub log_bytes: u64,
    pub pack_bytes: u64,
    pub snapshot_bytes: u64,
}

#[derive(Default)]
struct Counters {
    reads: AtomicU64,
    bytes_read: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
    fsyncs: AtomicU64,
}

/// What one pack compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackCompactionReport {
    pub packs_deleted: usize,
    pub bytes_copied: u64,
    pub bytes_reclaimed: u64,
}

/// Rename behaviour (renameat2 flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameFlags {
    pub noreplace: bool,
    pub exchange: bool,
}

pub struct Vault {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    config: VaultConfig,
    master: SecretKey,
    state: Mutex<MetadataState>,
    log: LogManager,
    packs: Arc<PackStore>,
    keys: Mutex<HashMap<[u8; 16], Arc<AeadKey>>>,
    open_handles: Mutex<HashMap<u64, u32>>,
    file_locks: Mutex<HashMap<u64, Arc<Mutex<()>>>>,
    generation: AtomicU64,
    report: BootstrapReport,
    /// When the last change was committed (for the scheduler's idle test).
    last_change: Mutex<std::time::Instant>,
    /// Held by a compaction from start to end: two at once could delete
    /// each other's log files.
    compaction: Mutex<()>,
    /// Held shared by every call that looks up where a file's frames are
    /// and then reads them or commits new ones (read, write, truncate);
    /// pack compaction takes it exclusively, for an instant, before it
    /// deletes packs (see `compact_packs`).
    frames_in_use: std::sync::RwLock<()>,
    /// A commit filled the log's queue: write it once the state lock is released.
    log_write_due: std::sync::atomic::AtomicBool,
    cache: SegmentCache,
    counters: Counters,
    /// The vault lock (`fusefs.lock`), released when the vault is dropped.
    /// Declared last: fields drop in order, so the log's closing sync has
    /// happened before another opener can get in.
    _lock: Box<dyn LockGuard>,
}

/// Name of the lock file in the vault directory.
pub const LOCK_FILE: &str = "fusefs.lock";
/// errno of "the vault is open elsewhere" (EBUSY).
pub const EBUSY: i32 = 16;

/// Take the vault's exclusive lock, or say who holds it. Goes through the
/// storage trait: on the real file system it is an `flock` on
/// `dir/fusefs.lock` (which holds only the holder's pid); on the in-memory
/// test file system a lock table, so tests see the same refusals without
/// extra writes in their fault and crash counts.
fn lock_vault(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn LockGuard>> {
    let path = dir.join(LOCK_FILE);
    match fs
        .try_lock(&path)
        .map_err(|e| Error::io_path(format!("cannot lock {}", path.display()), &path, e))?
    {
        TryLock::Acquired(guard) => Ok(guard),
        TryLock::Busy { holder } => {
            let by = match holder {
                Some(pid) if pid == std::process::id() => format!("by this process (pid {pid})"),
                Some(pid) => format!("by another process (pid {pid})"),
                None => "by another process".to_string(),
            };
            Err(fs_err(
                EBUSY,
                format!("vault {} is already open {by}", dir.display()),
            ))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
struct StateGuard<'a> {
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

impl Vault {
    /// Open the vault in `dir` with its config already unlocked (`master`).
    /// Fails with EBUSY if the vault is open elsewhere (see [`LOCK_FILE`]).
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: VaultConfig,
        master: SecretKey,
        opts: EngineOptions,
    ) -> Result<Vault> {
        // Before anything is read or written: a second engine on the same
        // vault would interleave log records and reuse pack numbers.
        let vault_lock = lock_vault(&*fs, dir)?;
        Self::open_locked(fs, dir, config, master, opts, vault_lock)
    }

    fn open_locked(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: VaultConfig,
        master: SecretKey,
        opts: EngineOptions,
        vault_lock: Box<dyn LockGuard>,
    ) -> Result<Vault> {
        let vault_id = *config.vault_id();
        let log_opts = LogOptions {
            rotate_bytes: opts.log_rotate_bytes,
            cipher: config.cipher(),
            ..Default::default()
        };
        let empty = MetadataState::new(config.segment_size(), 0o755, 0, 0, Timespec::default());
        let (state, log, report) = bootstrap(
            Arc::clone(&fs),
            &dir.join("snap"),
            &dir.join("log"),
            vault_id,
            master.clone(),
            log_opts,
            empty,
        )?;
        let packs = Arc::new(PackStore::open(
            Arc::clone(&fs),
            &dir.join("packs"),
            vault_id,
            config.cipher(),
            PackOptions {
                size_limit: opts.pack_size_limit,
                compression: config.compression(),
            },
        )?);
        let p = Arc::clone(&packs);
        log.set_before_write(move || p.sync());
        let generation = AtomicU64::new(state.generation_high + 1);
        Ok(Vault {
            dir: dir.to_path_buf(),
            fs,
            config,
            master,
            state: Mutex::new(state),
            log,
            packs,
            keys: Mutex::new(HashMap::new()),
            open_handles: Mutex::new(HashMap::new()),
            file_locks: Mutex::new(HashMap::new()),
            generation,
            report,
            last_change: Mutex::new(std::time::Instant::now()),
            compaction: Mutex::new(()),
            frames_in_use: std::sync::RwLock::new(()),
            log_write_due: std::sync::atomic::AtomicBool::new(false),
            cache: SegmentCache::new(opts.cache_bytes),
            counters: Counters::default(),
            _lock: vault_lock,
        })
    }

    /// Create a vault in directory `dir` (new, or empty but for nothing else
    /// of ours) on the real file system, and open it.
    pub fn create_vault(
        dir: &Path,
        password: &[u8],
        options: &crate::vault::config::VaultOptions,
        opts: EngineOptions,
    ) -> Result<Vault> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io_path(format!("cannot create {}", dir.display()), dir, e))?;
        let conf = VaultConfig::path(dir);
        if std::fs::symlink_metadata(&conf).is_ok() {
            return Err(Error::VaultExists(conf)); // rather than "busy" if it is open
        }
        let fs = Arc::new(crate::storage::RealFs);
        let vault_lock = lock_vault(&*fs, dir)?;
        let (config, master) = VaultConfig::create(dir, password, options)?;
        Vault::open_locked(fs, dir, config, master, opts, vault_lock)
    }

    /// Open the vault in `dir` with its password.
    pub fn open_vault(dir: &Path, password: &[u8], opts: EngineOptions) -> Result<Vault> {
        let config = VaultConfig::load(dir)?;
        // Locked before the (slow) key derivation, so a busy vault says so at once.
        let fs = Arc::new(crate::storage::RealFs);
        let vault_lock = lock_vault(&*fs, dir)?;
        let master = config.unlock(password)?;
        Vault::open_locked(fs, dir, config, master, opts, vault_lock)
    }

    /// Open the vault in `dir` with the master key as `print_master_key` showed it.
    pub fn open_with_master_key(dir: &Path, printed: &str, opts: EngineOptions) -> Result<Vault> {
        let config = VaultConfig::load(dir)?;
        let fs = Arc::new(crate::storage::RealFs);
        let vault_lock = lock_vault(&*fs, dir)?;
        let master = config.unlock_with_master_key(printed)?;
        Vault::open_locked(fs, dir, config, master, opts, vault_lock)
    }

    /// The master key in its printable form, for safekeeping.
    pub fn print_master_key(&self) -> zeroize::Zeroizing<String> {
        crate::vault::config::print_master_key(&self.master)
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What bootstrap found when the vault was opened.
    pub fn bootstrap_report(&self) -> &BootstrapReport {
        &self.report
    }

    fn segment_size(&self) -> u64 {
        self.config.segment_size() as u64
    }

    fn key_for(&self, file_id: &[u8; 16]) -> Arc<AeadKey> {
        let mut keys = lock(&self.keys);
        Arc::clone(keys.entry(*file_id).or_insert_with(|| {
            Arc::new(AeadKey::new(
                self.config.cipher(),
                &subkey(&self.master, purpose::FILE, file_id),
            ))
        }))
    }

    fn file_lock(&self, ino: u64) -> Arc<Mutex<()>> {
        Arc::clone(lock(&self.file_locks).entry(ino).or_default())
    }

    /// Apply `entry` and queue it in the log, as one step. A commit that
    /// fills the log's queue leaves the write to the release of the state
    /// lock (see [`StateGuard`]).
    fn commit(&self, state: &mut MetadataState, entry: UnifiedEntry) -> Result<()> {
        state.apply(&entry)?;
        let (_, due) = self.log.append_deferred(entry.encode())?;
        if due {
            self.log_write_due.store(true, Relaxed);
        }
        *lock(&self.last_change) = std::time::Instant::now();
        Ok(())
    }

    /// Frame locations looked up from here on stay readable, and frames
    /// written from here on stay in their pack, until the guard is dropped
    /// (see `frames_in_use`). Never taken twice by one thread.
    fn use_frames(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.frames_in_use.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The state lock (see [`StateGuard`]).
    fn lock_state(&self) -> StateGuard<'_> {
        StateGuard {
            guard: Some(lock(&self.state)),
            vault: self,
        }
    }

    /// What the compaction policy looks at.
    pub fn compaction_stats(
        &self,
        since_last_cycle: std::time::Duration,
    ) -> crate::scheduler::policy::CompactionStats {
        // An O(1) copy: the sums run without the lock.
        let packs = self.lock_state().packs.clone();
        let (live, dead) = packs
            .values()
            .fold((0, 0), |(l, d), u| (l + u.live, d + u.dead));
        crate::scheduler::policy::CompactionStats {
            log_bytes: self.log.appended_bytes(),
            live_bytes: live,
            dead_bytes: dead,
            idle: lock(&self.last_change).elapsed(),
            since_last_cycle,
        }
    }

    /// One compaction cycle: what `action` asks for, then a `Scheduler` record.
    pub fn run_compaction(
        &self,
        action: crate::scheduler::policy::CompactionAction,
        pack_dead_ratio: f64,
    ) -> Result<(Option<PackCompactionReport>, Option<CompactionReport>)> {
        let packs = if action.packs {
            Some(self.compact_packs(pack_dead_ratio)?)
        } else {
            None
        };
        {
            let mut s = self.lock_state();
            let cycle = s.scheduler_cycles + 1;
            self.commit(&mut s, UnifiedEntry::Scheduler { cycle, time: now() })?;
        }
        // The log compaction last: its snapshot then covers the cycle's records.
        let log = if action.log {
            Some(self.compact_log()?)
        } else {
            None
        };
        Ok((packs, log))
    }

    /// O(1): the link count and stored bytes are kept up to date by the state.
    fn attr_of(state: &MetadataState, ino: u64, i: &Inode) -> Attr {
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

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        let s = self.lock_state();
        let i = s.inode(ino)?;
        Ok(Self::attr_of(&s, ino, i))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        let s = self.lock_state();
        let ino = s.lookup(parent, name)?;
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    /// Create an inode of any kind and link it at `parent/name`.
    #[allow(clippy::too_many_arguments)]
    pub fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        kind: InodeKind,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        target: &[u8],
    ) -> Result<Attr> {
        let file_id = random::bytes()?;
        let time = now();
        let mut s = self.lock_state();
        // Check the name before creating anything, so a refused link leaves
        // no orphan inode behind.
        s.check_new_name(parent, name)?;
        let ino = s.next_ino;
        let create = UnifiedEntry::CreateInode {
            ino,
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            rdev,
            time,
            file_id,
            target: target.to_vec(),
        };
        let link = UnifiedEntry::Link {
            parent,
            name: name.to_vec(),
            ino,
            time,
        };
        self.commit(&mut s, create)?;
        self.commit(&mut s, link)?;
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    pub fn create(&self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.mknod(parent, name, InodeKind::File, mode, uid, gid, 0, b"")
    }

    pub fn mkdir(&self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.mknod(parent, name, InodeKind::Dir, mode, uid, gid, 0, b"")
    }

    pub fn symlink(
        &self,
        parent: u64,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Attr> {
        if target.is_empty() || target.len() > 4095 {
            return Err(fs_err(EINVAL, "symlink target length"));
        }
        self.mknod(parent, name, InodeKind::Symlink, 0o777, uid, gid, 0, target)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let s = self.lock_state();
        let i = s.inode(ino)?;
        if i.kind != InodeKind::Symlink {
            return Err(fs_err(EINVAL, "not a symlink"));
        }
        Ok(i.target.clone())
    }

    pub fn link(&self, ino: u64, new_parent: u64, new_name: &[u8]) -> Result<Attr> {
        let mut s = self.lock_state();
        if s.inode(ino)?.kind == InodeKind::Dir {
            return Err(fs_err(EPERM, "hard links to directories are not allowed"));
        }
        self.commit(
            &mut s,
            UnifiedEntry::Link {
                parent: new_parent,
                name: new_name.to_vec(),
                ino,
                time: now(),
            },
        )?;
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    fn remove(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        let mut s = self.lock_state();
        let ino = s.lookup(parent, name)?;
        let is_dir = s.dirs.contains_key(&ino);
        if dir && !is_dir {
            return Err(fs_err(ENOTDIR, "not a directory"));
        }
        if !dir && is_dir {
            return Err(fs_err(EISDIR, "is a directory"));
        }
        self.commit(
            &mut s,
            UnifiedEntry::Unlink {
                parent,
                name: name.to_vec(),
                time: now(),
            },
        )?;
        self.forget_if_unused(&mut s, ino)
    }

    pub fn unlink(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove(parent, name, false)
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove(parent, name, true)
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        let mut s = self.lock_state();
        let replaced = s.lookup(new_parent, new_name).ok();
        if flags.noreplace && replaced.is_some() {
            return Err(fs_err(EEXIST, "target exists"));
        }
        let entry = UnifiedEntry::Rename {
            parent,
            name: name.to_vec(),
            new_parent,
            new_name: new_name.to_vec(),
            exchange: flags.exchange,
            time: now(),
        };
        self.commit(&mut s, entry)?;
        match replaced {
            Some(old) if !flags.exchange => self.forget_if_unused(&mut s, old),
            _ => Ok(()),
        }
    }

    /// Drop an inode that has neither a name nor an open handle.
    fn forget_if_unused(&self, s: &mut MetadataState, ino: u64) -> Result<()> {
        let unused = s.inodes.get(&ino).is_some_and(|i| i.links == 0)
            && lock(&self.open_handles).get(&ino).copied().unwrap_or(0) == 0;
        if unused {
            let file_id = s.inodes[&ino].file_id;
            self.commit(s, UnifiedEntry::Forget { ino })?;
            lock(&self.file_locks).remove(&ino);
            self.cache.invalidate(&file_id, 0);
        }
        Ok(())
    }

    /// Count an open handle (an unlinked file stays readable until the last release).
    pub fn open(&self, ino: u64) -> Result<Attr> {
        let s = self.lock_state();
        let attr = Self::attr_of(&s, ino, s.inode(ino)?);
        *lock(&self.open_handles).entry(ino).or_default() += 1;
        Ok(attr)
    }

    pub fn release(&self, ino: u64) -> Result<()> {
        let mut s = self.lock_state();
        {
            let mut open = lock(&self.open_handles);
            match open.get_mut(&ino) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    open.remove(&ino);
                }
                None => return Ok(()),
            }
        }
        self.forget_if_unused(&mut s, ino)
    }

    /// Entries of directory `ino` after `offset` (0 = from the first), at
    /// most `limit`. Offsets are per-directory cookies (see
    /// [`Dir`](crate::vault::metadata::Dir)): listing in chunks while entries
    /// are added or removed never skips or repeats an entry that exists
    /// throughout. Entries come in the order they were created (after a
    /// remount: name order, then creation order).
    pub fn readdir(&self, ino: u64, offset: u64, limit: usize) -> Result<Vec<DirEntry>> {
        let s = self.lock_state();
        Ok(s.dir(ino)?
            .after(offset)
            .take(limit)
            .map(|(cookie, name, child)| DirEntry {
                name: name.to_vec(),
                ino: child,
                kind: s.inodes[&child].kind,
                next_offset: cookie,
            })
            .collect())
    }

    /// `readdir` with each entry's attributes, all read under one lock.
    pub fn readdirplus(
        &self,
        ino: u64,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<(DirEntry, Attr)>> {
        let s = self.lock_state();
        Ok(s.dir(ino)?
            .after(offset)
            .take(limit)
            .map(|(cookie, name, child)| {
                let i = &s.inodes[&child];
                let entry = DirEntry {
                    name: name.to_vec(),
                    ino: child,
                    kind: i.kind,
                    next_offset: cookie,
                };
                (entry, Self::attr_of(&s, child, i))
            })
            .collect())
    }

    pub fn setattr(&self, ino: u64, change: AttrChange) -> Result<Attr> {
        let file_lock = self.file_lock(ino);
        let _guard = lock(&file_lock);
        let mut shrink_to = None;
        if let Some(size) = change.size {
            if size > MAX_FILE_SIZE {
                return Err(fs_err(EFBIG, "file too large"));
            }
            let current = self.lock_state().inode(ino)?.size;
            if size < current {
                shrink_to = Some(size);
            } else {
                // Growing: first cut whatever the last segment holds past
                // the current end (left by a crash between a truncate's two
                // records), so it cannot reappear inside the file.
                self.cut_segment_at(ino, current)?;
            }
        }
        let mut change = change;
        if change.size.is_some() && change.mtime.is_none() {
            let t = now();
            change.mtime = Some(t);
            change.ctime = Some(t);
        } else if change.ctime.is_none() {
            change.ctime = Some(now());
        }
        let size = change.size;
        let file_id = {
            let mut s = self.lock_state();
            self.commit(&mut s, UnifiedEntry::SetAttr { ino, change })?;
            s.inode(ino)?.file_id
        };
        // Shrinking: the new size first, then the segment it cuts is
        // rewritten. In this order a crash between the two records leaves
        // exactly the truncated file (the old bytes past its end are never
        // read, and are cut before it grows again); the other order could
        // leave the old size with zeros inside it.
        if let Some(size) = shrink_to {
            self.cut_segment_at(ino, size)?;
        }
        if let Some(size) = size {
            // The segment cut at the new end (rewritten: a new generation)
            // and every segment after it.
            self.cache.invalidate(&file_id, size / self.segment_size());
        }
        let s = self.lock_state();
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    /// Rewrite the segment that offset `size` cuts (truncating to `size`, or
    /// about to grow from it), so its bytes past `size` cannot come back if
    /// the file grows. Keeps the file's size and mtime (a WriteSegments
    /// record sets the ctime to that mtime).
    fn cut_segment_at(&self, ino: u64, size: u64) -> Result<()> {
        let seg = self.segment_size();
        let _frames = self.use_frames();
        let (file_id, cut) = {
            let s = self.lock_state();
            let i = s.inode(ino)?;
            i.require_file("not a file")?;
            let index = size / seg;
            let within = size % seg;
            let cut = i
                .segments
                .get(&index)
                .filter(|r| within > 0 && r.plain_len as u64 > within)
                .copied();
            (i.file_id, cut.map(|r| (index, r, within)))
        };
        if let Some((index, r, within)) = cut {
            let key = self.key_for(&file_id);
            let mut plain = self.old_segment(&key, &file_id, index, &r)?;
            plain.truncate(within as usize);
            let generation = self.generation.fetch_add(1, Relaxed);
            let refs = self
                .packs
                .write_segments(&key, &file_id, &[(index, generation, &plain)])?;
            let mut s = self.lock_state();
            let i = s.inode(ino)?;
            let entry = UnifiedEntry::WriteSegments {
                ino,
                size: i.size,
                mtime: i.mtime,
                segments: vec![(index, refs[0])],
            };
            self.commit(&mut s, entry)?;
        }
        Ok(())
    }

    /// Plaintext of `refs` (segments of one file) for a read of
    /// `[from, to)`: from the cache, or read and opened (in parallel when
    /// worth it). An opened segment is cached only when the read returns
    /// part of it (the caller is likely to ask for the rest). Segments a
    /// read consumes whole are not, however small: through the mount the
    /// kernel's page cache keeps what was read, so caching them again only
    /// costs a copy's worth of cold memory per segment (measured: reading
    /// 2,450 files of 2-150 KiB took 30 µs a file with them cached, 21 µs
    /// without), and streaming a large file does not flush the cache.
    fn load_segments(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        refs: &[(u64, SegmentRef)],
        (from, to): (u64, u64),
    ) -> Result<Vec<Arc<Vec<u8>>>> {
        let cached = self
            .cache
            .get_many(refs.iter().map(|(k, r)| (*file_id, *k, r.generation)));
        let missing: Vec<(u64, SegmentRef)> = refs
            .iter()
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|(r, _)| *r)
            .collect();
        if missing.is_empty() {
            return Ok(cached.into_iter().map(|c| c.expect("all cached")).collect());
        }
        let opened: Vec<Arc<Vec<u8>>> = self
            .packs
            .read_segments(key, file_id, &missing)?
            .into_iter()
            .map(Arc::new)
            .collect();
        let seg = self.segment_size();
        self.cache.insert_many(
            missing
                .iter()
                .zip(&opened)
                .filter(|((k, r), _)| from > k * seg || to < k * seg + r.plain_len as u64)
                .map(|((k, r), p)| ((*file_id, *k, r.generation), Arc::clone(p))),
        );
        let mut opened = opened.into_iter();
        Ok(cached
            .into_iter()
            .map(|c| c.unwrap_or_else(|| opened.next().expect("one per miss")))
            .collect())
    }

    /// An owned copy of a segment about to be rewritten: from the cache, or
    /// opened (and not cached: its new version will be).
    fn old_segment(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        index: u64,
        r: &SegmentRef,
    ) -> Result<Vec<u8>> {
        match self.cache.get((*file_id, index, r.generation)) {
            Some(plain) => Ok(plain.as_ref().clone()),
            None => self.packs.read_segment(key, file_id, index, r),
        }
    }

    /// Read up to `len` bytes at `offset` (fewer at the end of the file).
    pub fn read(&self, ino: u64, offset: u64, len: usize) -> Result<Vec<u8>> {
        let seg = self.segment_size();
        let _frames = self.use_frames();
        let (file_id, size, refs) = {
            let s = self.lock_state();
            let i = s.inode(ino)?;
            if i.kind == InodeKind::Dir {
                return Err(fs_err(EISDIR, "is a directory"));
            }
            if offset >= i.size || len == 0 {
                return Ok(Vec::new());
            }
            let end = i.size.min(offset.saturating_add(len as u64));
            let refs: Vec<(u64, SegmentRef)> = i
                .segments
                .range(offset / seg..end.div_ceil(seg))
                .map(|(k, r)| (*k, *r))
                .collect();
            (i.file_id, i.size, refs)
        };
        let end = size.min(offset + len as u64);
        let mut out = vec![0u8; (end - offset) as usize];
        self.counters.reads.fetch_add(1, Relaxed);
        self.counters
            .bytes_read
            .fetch_add(out.len() as u64, Relaxed);
        if refs.is_empty() {
            return Ok(out); // a hole
        }
        let key = self.key_for(&file_id);
        let plains = self.load_segments(&key, &file_id, &refs, (offset, end))?;
        for ((index, _), plain) in refs.iter().zip(plains) {
            let seg_start = index * seg;
            let from = offset.max(seg_start);
            let to = end.min(seg_start + plain.len() as u64);
            if from < to {
                let src = &plain[(from - seg_start) as usize..(to - seg_start) as usize];
                out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
            }
        }
        Ok(out)
    }

    /// Write `data` at `offset`; returns the bytes written (all of them).
    pub fn write(&self, ino: u64, offset: u64, data: &[u8]) -> Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= MAX_FILE_SIZE);
        let Some(end) = end else {
            return Err(fs_err(EFBIG, "file too large"));
        };
        let seg = self.segment_size();
        let file_lock = self.file_lock(ino);
        let _guard = lock(&file_lock);
        let current = self.lock_state().inode(ino)?.size;
        if offset > current && current % seg != 0 {
            // Writing past the end leaves a gap: first cut whatever the last
            // segment holds past the end (see `setattr`), so the gap reads
            // as zeros.
            self.cut_segment_at(ino, current)?;
        }
        let _frames = self.use_frames();
        let (file_id, size, old) = {
            let s = self.lock_state();
            let i = s.inode(ino)?;
            i.require_file("not a file")?;
            let first = offset / seg;
            let last = (end - 1) / seg;
            // Only the first and last segments can be partly overwritten.
            let old: Vec<(u64, SegmentRef)> = [first, last]
                .into_iter()
                .filter_map(|k| i.segments.get(&k).map(|r| (k, *r)))
                .collect();
            (i.file_id, i.size, old)
        };
        let key = self.key_for(&file_id);
        let mut old_plain: HashMap<u64, Vec<u8>> = HashMap::new();
        for (k, r) in &old {
            let covered_whole = offset <= k * seg && end >= (k + 1) * seg;
            if !covered_whole && !old_plain.contains_key(k) {
                let mut plain = self.old_segment(&key, &file_id, *k, r)?;
                // Bytes past the current end are not the file's (see
                // `setattr`): what the write does not cover there is zeros.
                plain.truncate(plain.len().min(size.saturating_sub(k * seg) as usize));
                old_plain.insert(*k, plain);
            }
        }
        let new_size = size.max(end);
        // A segment the write covers from its start, with nothing old to
        // keep, is sealed straight from `data` (no copy).
        let mut segments: Vec<(u64, u64, std::borrow::Cow<'_, [u8]>)> = Vec::new();
        let mut k = offset / seg;
        while k * seg < end {
            let seg_start = k * seg;
            let seg_end = (seg_start + seg).min(new_size);
            let from = offset.max(seg_start);
            let to = end.min(seg_end);
            let src = &data[(from - offset) as usize..(to - offset) as usize];
            let plain = match old_plain.remove(&k) {
                None if from == seg_start => std::borrow::Cow::Borrowed(src),
                old => {
                    let mut plain = old.unwrap_or_default();
                    let needed = (to - seg_start) as usize;
                    if plain.len() < needed {
                        plain.resize(needed, 0);
                    }
                    plain[(from - seg_start) as usize..needed].copy_from_slice(src);
                    std::borrow::Cow::Owned(plain)
                }
            };
            segments.push((k, self.generation.fetch_add(1, Relaxed), plain));
            k += 1;
        }
        let batch: Vec<(u64, u64, &[u8])> =
            segments.iter().map(|(k, g, p)| (*k, *g, &p[..])).collect();
        // Sealed on this thread below 2 MiB (packs::PARALLEL_MIN_BYTES):
        // splitting a 1 MiB call over both cores of the reference VM, each
        // share sealed and appended by its own thread, measured slower
        // (0.8-1.0 against 0.9-1.35 GB/s, vault_bench, idle machine).
        let refs = self.packs.write_segments(&key, &file_id, &batch)?;
        drop(batch);
        let placed = segments.iter().map(|(k, _, _)| *k).zip(refs).collect();
        {
            let mut s = self.lock_state();
            // Writes and truncates of this file hold its file lock, so the size
            // read above still holds; a write never shrinks the file anyway.
            let size = new_size.max(s.inode(ino)?.size);
            let entry = UnifiedEntry::WriteSegments {
                ino,
                size,
                mtime: now(),
                segments: placed,
            };
            self.commit(&mut s, entry)?;
        }
        // Keep the segments the next small write or read is likely to need:
        // those built here (kept without a copy) and partial ones. Whole
        // segments sealed straight from `data` would cost a copy each.
        self.cache
            .insert_many(segments.into_iter().filter_map(|(k, g, p)| {
                let plain = match p {
                    std::borrow::Cow::Owned(v) => v,
                    std::borrow::Cow::Borrowed(b) if (b.len() as u64) < seg => b.to_vec(),
                    std::borrow::Cow::Borrowed(_) => return None,
                };
                Some(((file_id, k, g), Arc::new(plain)))
            }));
        self.counters.writes.fetch_add(1, Relaxed);
        self.counters
            .bytes_written
            .fetch_add(data.len() as u64, Relaxed);
        Ok(data.len())
    }

    /// Make `ino`'s data and metadata (and everything before them) durable.
    pub fn fsync(&self, _ino: u64) -> Result<()> {
        self.counters.fsyncs.fetch_add(1, Relaxed);
        self.sync()
    }

    /// Make everything written so far durable.
    pub fn sync(&self) -> Result<()> {
        self.packs.sync()?;
        self.log.sync()
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        let s = self.lock_state();
        s.inode(ino)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or_else(|| fs_err(ENODATA, "no such attribute"))
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        let s = self.lock_state();
        Ok(s.inode(ino)?.xattrs.keys().cloned().collect())
    }

    /// Set an attribute; `create` fails if it exists, `replace` if it does not.
    pub fn setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        create: bool,
        replace: bool,
    ) -> Result<()> {
        if name.is_empty() || name.len() > 255 || value.len() > 65536 {
            return Err(fs_err(
                if value.len() > 65536 { E2BIG } else { EINVAL },
                "attribute name or value too long",
            ));
        }
        let mut s = self.lock_state();
        let exists = s.inode(ino)?.xattrs.contains_key(name);
        if create && exists {
            return Err(fs_err(EEXIST, "attribute exists"));
        }
        if replace && !exists {
            return Err(fs_err(ENODATA, "no such attribute"));
        }
        self.commit(
            &mut s,
            UnifiedEntry::SetXattr {
                ino,
                name: name.to_vec(),
                value: value.to_vec(),
            },
        )
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        let mut s = self.lock_state();
        self.commit(
            &mut s,
            UnifiedEntry::RemoveXattr {
                ino,
                name: name.to_vec(),
            },
        )
    }

    /// Files (inodes) in the vault and plaintext bytes stored. O(1).
    pub fn usage(&self) -> (u64, u64) {
        let s = self.lock_state();
        (s.inodes.len() as u64, s.stored_bytes)
    }

    /// Directories in the vault (the root included). O(1).
    pub fn directories(&self) -> u64 {
        self.lock_state().dirs.len() as u64
    }

    /// Total size of the files in the vault's subdirectory `sub`.
    fn dir_bytes(&self, sub: &str) -> u64 {
        let dir = self.dir.join(sub);
        self.fs
            .list(&dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| self.fs.file_len(&dir.join(n)).ok())
            .sum()
    }

    /// Live counters: the state's own counts (no copy of the state), this
    /// session's I/O and cache counts, and the sizes on disk (a directory
    /// listing and a stat per log, pack and snapshot file).
    pub fn telemetry(&self) -> Telemetry {
        let stats = self.compaction_stats(std::time::Duration::ZERO);
        let mut t = {
            let s = self.lock_state();
            Telemetry {
                inodes: s.inodes.len() as u64,
                dirs: s.dirs.len() as u64,
                stored_bytes: s.stored_bytes,
                packs: s.packs.len() as u64,
                compaction_cycles: s.scheduler_cycles,
                ..Default::default()
            }
        };
        let c = &self.counters;
        t.live_bytes = stats.live_bytes;
        t.dead_bytes = stats.dead_bytes;
        t.log_bytes_since_snapshot = stats.log_bytes;
        t.idle = stats.idle;
        t.reads = c.reads.load(Relaxed);
        t.bytes_read = c.bytes_read.load(Relaxed);
        t.writes = c.writes.load(Relaxed);
        t.bytes_written = c.bytes_written.load(Relaxed);
        t.fsyncs = c.fsyncs.load(Relaxed);
        t.cache_hits = self.cache.hits();
        t.cache_misses = self.cache.misses();
        t.cache_bytes = self.cache.bytes() as u64;
        t.cache_capacity = self.cache.capacity() as u64;
        t.log_bytes = self.dir_bytes("log");
        t.pack_bytes = self.dir_bytes("packs");
        t.snapshot_bytes = self.dir_bytes("snap");
        t
    }

    /// Write the state as a snapshot and drop the log it covers.
    ///
    /// Readers and writers wait only while the log is cut and the state
    /// copied (an O(1) copy: the state is made of persistent maps, see
    /// [`metadata`](crate::vault::metadata)); the snapshot is encoded and
    /// written from the copy without the lock.
    pub fn compact_log(&self) -> Result<CompactionReport> {
        let _one_at_a_time = lock(&self.compaction);
        self.packs.sync()?;
        // Sync the log now, so that the sync under the lock (the cut must be
        // exactly the copied state) has only the last few records left.
        self.log.sync()?;
        let (cut, state) = {
            let s = self.lock_state();
            (begin_log_compaction(&self.log)?, s.clone())
        };
        finish_log_compaction(&self.log, cut, &state, &self.dir.join("snap"))
        // `state` is dropped here, without the lock: whatever the live state
        // stopped sharing with it meanwhile is freed now.
    }

    /// Pack compaction: copy the live frames of packs at least `min_dead_ratio`
    /// dead into the active pack (unchanged: no re-encryption), record the
    /// moves, and delete the emptied packs once the records are durable.
    ///
    /// Readers and writers are blocked only while the state is copied (O(1))
    /// and while each record of moves (at most [`MOVES_PER_RECORD`]) is
    /// applied: the candidates and their live frames are found in the copy,
    /// and copying runs outside the lock. A segment rewritten or dropped
    /// after the copy keeps its new frame (the move is ignored for it, and
    /// its copy counts as dead).
    pub fn compact_packs(&self, min_dead_ratio: f64) -> Result<PackCompactionReport> {
        let _one_at_a_time = lock(&self.compaction);
        let active = self.packs.active_pack();
        let copy = self.lock_state().clone();
        // In pack order (the map is ordered): searched below by bisection.
        let candidates: Vec<u64> = copy
            .packs
            .iter()
            .filter(|(p, u)| Some(**p) != active && u.dead > 0)
            .filter(|(_, u)| u.dead as f64 >= min_dead_ratio * (u.live + u.dead) as f64)
            .map(|(p, _)| *p)
            .collect();
        let mut report = PackCompactionReport::default();
        if candidates.is_empty() {
            return Ok(report);
        }
        // Frames in the candidates live at the copy; none can become live
        // there later (new frames go to the active pack only).
        let live: Vec<(u64, u64, SegmentRef)> = copy
            .inodes
            .iter()
            .flat_map(|(ino, i)| i.segments.iter().map(move |(k, r)| (*ino, *k, *r)))
            .filter(|(_, _, r)| candidates.binary_search(&r.pack).is_ok())
            .collect();
        drop(copy);
        for batch in live.chunks(MOVES_PER_RECORD) {
            let mut moves = Vec::with_capacity(batch.len());
            for &(ino, index, from) in batch {
                let to = self.packs.copy_frame(&from)?;
                report.bytes_copied += from.stored_len as u64;
                moves.push((ino, index, from, to));
            }
            // The copies are durable before the record reaches the log (its
            // before-write hook syncs the packs), and that write happens
            // after the state lock is released (see `StateGuard`).
            let mut s = self.lock_state();
            self.commit(&mut s, UnifiedEntry::MoveSegments { moves })?;
        }
        // The moves must be durable before the packs they empty disappear.
        self.log.sync()?;
        // Wait out every call that looked up frame locations before the
        // moves were applied (it may be about to read a frame in a
        // candidate) or appended frames it has not committed yet (it may
        // have placed them in a candidate before that pack stopped being
        // the active one). Calls after this see the moves, and no frame
        // enters a candidate any more: it is not the active pack.
        drop(
            self.frames_in_use
                .write()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let on_disk = self.packs.pack_numbers()?;
        for pack in candidates {
            // Not the active pack, and every frame placed in it committed
            // (above): once empty it stays empty while it is deleted
            // without the lock.
            let usage = self.lock_state().packs.get(&pack).copied();
            if usage.unwrap_or_default().live > 0 {
                continue;
            }
            // Already gone if an earlier cycle crashed between deleting the
            // file and recording it.
            if on_disk.contains(&pack) {
                report.bytes_reclaimed += self.packs.pack_len(pack).unwrap_or(0);
                self.packs.delete_pack(pack)?;
            }
            let mut s = self.lock_state();
            self.commit(&mut s, UnifiedEntry::PackDeleted { pack })?;
            report.packs_deleted += 1;
        }
        self.log.sync()?;
        Ok(report)
    }

    /// A copy of the metadata state (for fsck and tests). O(1): it shares
    /// the live state's nodes until either changes.
    pub fn state(&self) -> MetadataState {
        self.lock_state().clone()
    }

    /// Flush and close.
    pub fn close(self) -> Result<()> {
        self.sync()
    }

    /// The file system the vault lives on.
    pub fn storage(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }
}

/// Moves per `MoveSegments` record of a pack compaction. Each record is
/// applied under the state lock: a bounded batch keeps that pause short
/// (1024 moves took up to 4 ms at 1M inodes, examples/compaction_pause.rs)
/// and the record far below the log's record size limit, whatever the
/// number of frames a cycle moves.
pub const MOVES_PER_RECORD: usize = 256;

/// The root directory's inode number.
pub const ROOT: u64 = ROOT_INO;
