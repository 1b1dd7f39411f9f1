//! Opening, locking and creating a vault; closing it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::cache::SegmentCache;
use super::config::{unlock_either, VaultConfig};
use super::engine::{Counters, EngineOptions, Vault};
use crate::crypto::keys::SecretKey;
use crate::error::{fs_err, Error, Result};
use crate::log::format::LogFormat;
use crate::log::unified::LogOptions;
use crate::metadata::{Carried, MetadataState, SegmentRef, Timespec};
use crate::packs::{FrameLayout, PackOptions, PackStore};
use crate::recovery::bootstrap::{bootstrap, BootstrapReport};
use crate::recovery::carried::CarriedChain;
use crate::storage::readonly::ReadOnlyFs;
use crate::storage::{FileSystem, LockGuard, TryLock};
use crate::vault::local_state::judgement::{judge, refuse_headless, VaultEnd};
use crate::vault::local_state::{LocalState, Seen};

/// Name of the lock file in the vault directory.
pub const LOCK_FILE: &str = "fusefs.lock";
/// errno of "the vault is open elsewhere" (EBUSY).
pub const EBUSY: i32 = 16;

/// Take the vault's exclusive lock, or say who holds it. Goes through the
/// storage trait: on the real file system it is an `flock` on
/// `dir/fusefs.lock` (which holds only the holder's pid); on the in-memory
/// test file system a lock table, so tests see the same refusals without
/// extra writes in their fault and crash counts. Through a
/// [`ReadOnlyFs`] the lock is taken shared; with `beside_writer`, a
/// writer holding it is no refusal (and nothing is held).
fn lock_vault(fs: &dyn FileSystem, dir: &Path, beside_writer: bool) -> Result<Box<dyn LockGuard>> {
    let path = dir.join(LOCK_FILE);
    match fs
        .try_lock(&path)
        .map_err(|e| Error::io_path(format!("cannot lock {}", path.display()), &path, e))?
    {
        TryLock::Acquired(guard) => Ok(guard),
        TryLock::Busy { .. } if beside_writer => Ok(Box::new(NoGuard)),
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

/// The layout of the log files of a vault of `config`'s format.
pub fn log_format(config: &VaultConfig) -> LogFormat {
    match config.version() {
        1 => LogFormat::V1,
        _ => LogFormat::V2,
    }
}

/// What an open beside a writer holds: nothing.
struct NoGuard;

impl LockGuard for NoGuard {}

/// The file system an open with `opts` goes through: `fs` itself, or with
/// every change refused.
fn storage_for(fs: Arc<dyn FileSystem>, opts: &EngineOptions) -> Arc<dyn FileSystem> {
    match opts.read_only {
        true => Arc::new(ReadOnlyFs(fs)),
        false => fs,
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
        let fs = storage_for(fs, &opts);
        let vault_lock = lock_vault(&*fs, dir, opts.beside_writer && opts.read_only)?;
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
        // What this machine saw of the vault (rollback protection).
        let local = opts
            .local_state_dir
            .as_ref()
            .map(|d| Arc::new(LocalState::open(d, &vault_id, &master)));
        let log_opts = LogOptions {
            acknowledged_seq: local.as_ref().map_or(0, |l| l.acknowledged()),
            rotate_bytes: opts.log_rotate_bytes,
            cipher: config.cipher(),
            copies: Some(crate::mirror::log_copies(dir)),
            salvage: opts.salvage,
            read_only: opts.read_only,
            format: log_format(&config),
            ..Default::default()
        };
        let snap_copies = crate::mirror::snapshot_copies(dir);
        let mut empty = MetadataState::new(config.segment_size(), 0o755, 0, 0, Timespec::default());
        if config.version() == 1 {
            empty.legacy_generation_high = u64::MAX; // every frame of format 1
        }
        let (state, log, mut report) = bootstrap(
            Arc::clone(&fs),
            &dir.join("snap"),
            Some(&snap_copies),
            &dir.join("log"),
            vault_id,
            master.clone(),
            log_opts,
            empty,
        )?;
        // One segment size: the config's. The state (and so every snapshot)
        // carries it too, for `apply`'s truncation arithmetic; a state made
        // with another one would cut segments where the engine does not.
        if state.segment_size != config.segment_size() {
            return Err(Error::SnapshotCorrupt(format!(
                "the metadata's segment size {} is not the vault's {}",
                state.segment_size,
                config.segment_size()
            )));
        }
        let packs = Arc::new(PackStore::open(
            Arc::clone(&fs),
            &dir.join("packs"),
            vault_id,
            config.cipher(),
            PackOptions {
                size_limit: opts.pack_size_limit,
                compression: config.compression(),
                layout: FrameLayout {
                    legacy_high: state.legacy_generation_high,
                    segment_size: config.segment_size(),
                },
            },
        )?);
        // Frames the log carries that a crash took from their packs
        // (`packs::carried`): back in place before anything reads them.
        let carried = rebuild_carried(
            &packs,
            &state,
            &master,
            config.cipher(),
            std::mem::take(&mut report.carried_frames),
        );
        if opts.read_only {
            packs.overlay_frames(carried);
        } else if !carried.is_empty() {
            report.carried_frames_restored = packs.restore_frames(&carried)?;
        }
        // Metadata deleted outright (checked before the stray packs below,
        // which would be all of them): with no snapshot, packs but no log, or a
        // log that starts after record 1 (FORMAT.md §9.7).
        let on_disk = packs.pack_numbers()?;
        let headless = refuse_headless(
            !on_disk.is_empty(),
            report.snapshot > 0,
            report.first_log_seq,
        );
        if let (Some(why), false) = (headless, opts.salvage) {
            return Err(Error::LogCorrupt(why));
        }
        // Packs the state does not know hold no frame any record refers to:
        // removed, or they would stay as space nothing can reclaim. After
        // the store is open, so a pack number is never handed out again.
        for number in on_disk.into_iter().filter(|_| !opts.read_only) {
            if !state.packs.contains_key(&number) {
                packs.delete_pack(number)?;
                report.stray_packs_removed.push(number);
            }
        }
        if let Some(local) = &local {
            let end = VaultEnd {
                last_seq: log.next_seq() - 1,
                chain_at: report.acknowledged_tag,
                snapshot: report.snapshot,
                covers_seq: report.covers_seq,
            };
            let verdict = judge(local.seen(), &end);
            report.local_state_notes.extend(local.problem_at_open());
            report
                .local_state_notes
                .extend(verdict.outcome(opts.accept_rollback)?);
            if !opts.read_only {
                local.adopt(Seen {
                    seq: end.last_seq,
                    chain: log.chain_head(),
                    snapshot: end.snapshot,
                    covers_seq: end.covers_seq,
                    clean: false,
                });
                let l = Arc::clone(local);
                log.set_after_sync(move |seq, chain| l.note_durable(seq, chain));
            }
        }
        let p = Arc::clone(&packs);
        let carry = log_format(&config) == LogFormat::V2;
        log.set_before_write(move |batch, may_carry| {
            super::carry::before_log_write(&p, batch, may_carry, carry)
        });
        // Above every generation a frame may carry (format 2: reserved ones
        // too, committed or not).
        let first = state.generation_high.max(state.generation_reserved) + 1;
        let generation = AtomicU64::new(first);
        let generation_limit = AtomicU64::new(state.generation_reserved);
        Ok(Vault {
            dir: dir.to_path_buf(),
            fs,
            config,
            master,
            state: Mutex::new(state),
            log,
            packs,
            keys: Mutex::new(HashMap::new()),
            references: Mutex::new(Default::default()),
            file_locks: Mutex::new(HashMap::new()),
            generation,
            generation_limit,
            reserving: Mutex::new(()),
            local: local.filter(|_| !opts.read_only),
            report,
            last_change: Mutex::new(std::time::Instant::now()),
            compaction: Mutex::new(()),
            frames_in_use: std::sync::RwLock::new(()),
            freed: Mutex::new(Default::default()),
            log_write_due: std::sync::atomic::AtomicBool::new(false),
            cache: SegmentCache::new(opts.cache_bytes),
            counters: Counters::default(),
            kernel_file_times: std::sync::atomic::AtomicBool::new(false),
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
        let vault_lock = lock_vault(&*fs, dir, false)?;
        let (config, master) = VaultConfig::create(&*fs, dir, password, options)?;
        Vault::open_locked(fs, dir, config, master, opts, vault_lock)
    }

    /// Open the vault in `dir` with its password. A vault of format 1 opened
    /// to write is upgraded to format 2 first ([`super::upgrade`]).
    pub fn open_vault(dir: &Path, password: &[u8], opts: EngineOptions) -> Result<Vault> {
        Self::open_unlocking(dir, &|c| c.unlock(password), Some(password), opts)
    }

    /// Open the vault in `dir` with the master key as `print_master_key`
    /// showed it. A vault of format 1 opens read-only this way only: its
    /// upgrade re-seals the master key, which takes the password.
    pub fn open_with_master_key(dir: &Path, printed: &str, opts: EngineOptions) -> Result<Vault> {
        Self::open_unlocking(dir, &|c| c.unlock_with_master_key(printed), None, opts)
    }

    /// Open the vault in `dir`, its config (or the config's copy, see
    /// [`unlock_either`]) unlocked by `unlock`; `password`, when it was
    /// the password, upgrades a vault of format 1 opened to write.
    fn open_unlocking(
        dir: &Path,
        unlock: &dyn Fn(&VaultConfig) -> Result<SecretKey>,
        password: Option<&[u8]>,
        opts: EngineOptions,
    ) -> Result<Vault> {
        let fs = storage_for(Arc::new(crate::storage::RealFs), &opts);
        // Not a vault (or a config of a newer version): said before the
        // lock file is made. A config that does not load but whose copy
        // does is mended below.
        if let Err(e) = VaultConfig::load(&*fs, dir) {
            if !fs.exists(&super::config::config_copy(dir)) {
                return Err(e);
            }
        }
        // Locked before the (slow) key derivation, so a busy vault says so at once.
        let vault_lock = lock_vault(&*fs, dir, opts.beside_writer && opts.read_only)?;
        let (mut config, master, source) = unlock_either(&*fs, dir, unlock, !opts.read_only)?;
        let mut upgraded = None;
        if config.version() == 1 && !opts.read_only {
            let Some(password) = password else {
                return Err(Error::InvalidParams(format!(
                    "vault {} has format 1: open it once with its password to upgrade it to \
                     format 2 (with the master key it opens read-only)",
                    dir.display()
                )));
            };
            let (c, report) = super::upgrade::upgrade(&fs, dir, &config, &master, password)?;
            config = c;
            upgraded = Some(report);
        }
        let mut vault = Vault::open_locked(fs, dir, config, master, opts, vault_lock)?;
        vault.report.config_source = Some(source);
        vault.report.upgraded = upgraded;
        Ok(vault)
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

    /// A copy of the metadata state (for fsck and tests). O(1): it shares
    /// the live state's nodes until either changes.
    pub fn state(&self) -> MetadataState {
        self.lock_state().clone()
    }

    /// Flush and close.
    pub fn close(self) -> Result<()> {
        self.end_session()
    }

    /// What closing does, for a vault shared with other threads: reclaim
    /// every inode left without a name (no open handle and no kernel lookup
    /// outlives the session; see [`super::lifetimes`]), then make
    /// everything durable.
    pub fn end_session(&self) -> Result<()> {
        self.reclaim_orphans()?;
        if self.config.version() >= 2 && !self.log.read_only() {
            // The sealed end of the session: a vault whose last record is
            // not one was cut, or its session crashed (FORMAT.md §7.3).
            let close = crate::metadata::UnifiedEntry::Close {
                time: super::engine::now(),
            };
            self.commit(&mut self.lock_state(), close)?;
        }
        self.sync()?;
        if let Some(local) = &self.local {
            local.close(true);
        }
        Ok(())
    }

    /// The file system the vault lives on.
    pub fn storage(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }
}

/// The stored bytes of the carried frames that replay found live (each
/// chain's newest), rebuilt from their patches where they are patched
/// (`packs::carried`) and the pack may have lost them (it almost never
/// has: sealing again costs more than the look). A frame that cannot be
/// rebuilt is left out: reading it reports the damage.
fn rebuild_carried(
    packs: &PackStore,
    state: &MetadataState,
    master: &SecretKey,
    cipher: crate::types::Cipher,
    chains: Vec<CarriedChain>,
) -> Vec<(SegmentRef, Vec<u8>)> {
    chains
        .into_iter()
        .filter_map(|chain| {
            let (newest, carried) = chain.links.last()?;
            if !matches!(carried, Carried::Frame(_)) && !packs.may_have_lost(newest) {
                return None;
            }
            let file_id = state.inode(chain.ino).ok()?.file_id;
            let key = super::file_keys::derive(master, cipher, &file_id);
            let bytes = packs.rebuild_carried(&key, &file_id, chain.index, &chain.links)?;
            Some((*newest, bytes))
        })
        .collect()
}
