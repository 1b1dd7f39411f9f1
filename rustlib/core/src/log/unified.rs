//! `LogManager`: the unified log's writer and reader.
//!
//! * `append` queues a record and returns its sequence number at once; many
//!   threads may append concurrently.
//! * `sync` makes every record appended so far durable. Concurrent syncers
//!   share the work (group commit): one thread becomes the writer, seals and
//!   writes everything queued in one write and one fsync; the others wait for
//!   it and return without touching the disk if it covered them.
//! * Files rotate at a size limit; a new file's name is made durable (fsync of
//!   the directory) before any record in it is reported durable.
//! * `open` replays every log file in order (`super::replay`), then starts
//!   appending in a new file: a file is never appended to after a crash, so
//!   no (key, nonce) pair is ever used twice.
//! * After any write or sync error the manager refuses further work
//!   (`LogFailed`): the file may hold a partial record, and only recovery
//!   may decide what it holds.

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::active::{close_copy, create_file, read_only, ActiveFile};
pub use super::active::{create_empty_file, FileStart, LOG_RESERVE_BYTES};
use super::format::*;
pub use super::options::LogOptions;
use super::replay::replay;
use super::replay::ReplayOptions;
pub use super::replay::{LogRecord, LostRecords, ReplayReport};
use crate::crypto::keys::SecretKey;
use crate::error::{io_at, Error, Result};
use crate::storage::FileSystem;

/// Writes are issued once this many bytes are queued, even without a sync.
/// Whoever fills the batch seals and writes it (the engine does it after
/// releasing its state lock), about 0.5 µs a record: a 1 MiB batch of small
/// records cost that call 5-6 ms, a 256 KiB one about a quarter of that,
/// for the same records/s (examples/log_bench.rs, compaction_pause.rs).
const WRITE_BATCH_BYTES: usize = 256 << 10;

pub fn log_file_name(number: u64) -> String {
    LOG_FILE.file_name(number)
}

/// How a writer's turn failed.
enum TurnError {
    /// Nothing that was written is in doubt (a failed write was cut off
    /// again, e.g. ENOSPC): the batch is queued again and a later turn
    /// retries it, in a new file.
    Retry(Error),
    /// Durability is unknown (a failed fsync, or a write that could not be
    /// cut off): the log refuses all further work.
    Fatal(Error),
}

impl TurnError {
    fn into_error(self) -> Error {
        match self {
            TurnError::Retry(e) | TurnError::Fatal(e) => e,
        }
    }
}

struct Queue {
    pending: Vec<(u64, Vec<u8>)>,
    pending_bytes: usize,
    next_seq: u64,
    written_seq: u64,
    synced_seq: u64,
    writer_busy: bool,
    failed: Option<String>,
}

pub struct LogManager {
    pub(super) fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    pub(super) vault_id: [u8; 16],
    pub(super) master: SecretKey,
    pub(super) opts: LogOptions,
    queue: Mutex<Queue>,
    changed: Condvar,
    /// Owned by whichever thread is the writer (`Queue::writer_busy`).
    /// `None` when the log was opened read-only.
    pub(super) active: Mutex<Option<ActiveFile>>,
    /// Runs before any record reaches the log file: the vault makes the pack
    /// frames those records point at durable here, so a record is never on
    /// disk before its data (not even through the page cache's own flushing).
    before_write: Mutex<Option<BeforeWrite>>,
    /// Runs after each sync that made records durable (the local state
    /// notes how far the vault reached).
    after_sync: Mutex<Option<AfterSync>>,
    /// Payload bytes appended since the log was opened or last compacted.
    pub(super) appended_bytes: std::sync::atomic::AtomicU64,
    /// The highest file number replay read (0: none).
    newest_read: u64,
}

/// Given the batch about to be written and whether its records may carry
/// frames (it will be synced, and the log has room to spare): its
/// payloads may be rewritten (`vault::carry`).
type BeforeWrite = Box<dyn Fn(&mut [(u64, Vec<u8>)], bool) -> Result<()> + Send + Sync>;
/// Told (sequence number, chain value) of the last record each time the
/// log is made durable.
type AfterSync = Box<dyn Fn(u64, [u8; CHAIN_LEN]) + Send + Sync>;

impl LogManager {
    /// Replay the log in `dir` (created if missing) and start a new file for appending.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        vault_id: [u8; 16],
        master: SecretKey,
        opts: LogOptions,
    ) -> Result<(LogManager, Vec<LogRecord>, ReplayReport)> {
        if !opts.read_only {
            fs.create_dir_all(dir)
                .map_err(io_at("cannot create", dir))?;
            if let Some(c) = &opts.copies {
                fs.create_dir_all(c).map_err(io_at("cannot create", c))?;
            }
        }
        let (records, report, last_number, next_seq) = replay(
            &*fs,
            dir,
            &vault_id,
            &master,
            &ReplayOptions {
                cipher: opts.cipher,
                min_next_seq: opts.min_next_seq,
                copies: opts.copies.as_deref(),
                salvage: opts.salvage,
                read_only: opts.read_only,
                format: opts.format,
                chain_base: opts.chain_base,
                acknowledged_seq: opts.acknowledged_seq,
            },
        )?;
        let next_seq = next_seq.max(opts.min_next_seq);
        // The history so far ends with the last record read, unless the
        // snapshot reaches past it.
        let chain = match records.last() {
            Some(r) if r.seq + 1 >= opts.min_next_seq => r.tag,
            _ => opts.chain_base.unwrap_or(CHAIN_START),
        };
        let active = if opts.read_only {
            None
        } else {
            let start = FileStart {
                number: last_number + 1,
                first_seq: next_seq,
                chain_in: chain,
                format: opts.format,
            };
            Some(create_file(
                &*fs,
                dir,
                opts.copies.as_deref(),
                &vault_id,
                &master,
                opts.cipher,
                start,
            )?)
        };
        let queue = Queue {
            pending: Vec::new(),
            pending_bytes: 0,
            next_seq,
            written_seq: next_seq - 1,
            synced_seq: next_seq - 1,
            writer_busy: false,
            failed: None,
        };
        let mgr = LogManager {
            fs,
            dir: dir.to_path_buf(),
            vault_id,
            master,
            opts,
            queue: Mutex::new(queue),
            changed: Condvar::new(),
            active: Mutex::new(active),
            before_write: Mutex::new(None),
            after_sync: Mutex::new(None),
            appended_bytes: std::sync::atomic::AtomicU64::new(0),
            newest_read: last_number,
        };
        Ok((mgr, records, report))
    }

    /// Install the hook that runs after each durable sync (see the field).
    pub fn set_after_sync(&self, hook: impl Fn(u64, [u8; CHAIN_LEN]) + Send + Sync + 'static) {
        *self.after_sync.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// Install the hook that runs before records are written (see the field).
    pub fn set_before_write(
        &self,
        hook: impl Fn(&mut [(u64, Vec<u8>)], bool) -> Result<()> + Send + Sync + 'static,
    ) {
        *self.before_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a record; returns its sequence number. Durable after `sync`.
    /// The call that fills the queue past the batch size writes it.
    pub fn append(&self, payload: Vec<u8>) -> Result<u64> {
        let (seq, big) = self.append_deferred(payload)?;
        if big {
            if let Err(e) = self.write_through(seq, false) {
                // A retryable failure (e.g. a full disk) keeps the record
                // queued for a later write; only a failed log refuses it.
                if self.lock().failed.is_some() {
                    return Err(e);
                }
            }
        }
        Ok(seq)
    }

    /// Queue a record and never write: returns its sequence number and
    /// whether the queue is now a batch worth writing, which the caller
    /// does with [`LogManager::write_queued`] once it holds no lock of its
    /// own (the engine appends under its state lock; sealing a batch and
    /// the pack sync before it take milliseconds).
    pub fn append_deferred(&self, payload: Vec<u8>) -> Result<(u64, bool)> {
        if payload.is_empty() || payload.len() > MAX_RECORD {
            return Err(Error::InvalidParams(format!(
                "log record of {} bytes",
                payload.len()
            )));
        }
        if self.opts.read_only {
            return Err(read_only());
        }
        let mut q = self.lock();
        if let Some(e) = &q.failed {
            return Err(Error::LogFailed(e.clone()));
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        q.pending_bytes += payload.len();
        self.appended_bytes
            .fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
        q.pending.push((seq, payload));
        Ok((seq, q.pending_bytes >= WRITE_BATCH_BYTES))
    }

    /// Ok if records can be appended now: the log is neither read-only
    /// nor stopped after a write error.
    pub fn writable(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(read_only());
        }
        match &self.lock().failed {
            Some(e) => Err(Error::LogFailed(e.clone())),
            None => Ok(()),
        }
    }

    /// Make every record appended so far durable.
    pub fn sync(&self) -> Result<()> {
        let target = self.lock().next_seq - 1;
        self.write_through(target, true)
    }

    /// Write every queued record to the log file, without a sync: what a
    /// caller of [`LogManager::append_deferred`] does once it holds no lock
    /// of its own.
    pub fn write_queued(&self) -> Result<()> {
        let target = self.lock().next_seq - 1;
        self.write_through(target, false)
    }

    /// Append one record and make it durable.
    pub fn append_sync(&self, payload: Vec<u8>) -> Result<u64> {
        let seq = self.append(payload)?;
        self.write_through(seq, true)?;
        Ok(seq)
    }

    /// Payload bytes appended since the log was opened or last compacted
    /// (what a snapshot would let go).
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sequence number of the last durable record.
    pub fn synced_seq(&self) -> u64 {
        self.lock().synced_seq
    }

    /// Sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Number of the file being appended to; read-only, the newest file
    /// read (the one a writer beside us may be appending to), or 0.
    pub fn active_file_number(&self) -> u64 {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(self.newest_read, |a| a.header.number)
    }

    /// True if the log was opened to write nothing.
    pub fn read_only(&self) -> bool {
        self.opts.read_only
    }

    /// The chain value after the last record written (its tag), or of
    /// the history the log continues if nothing was written yet. Read-only:
    /// the base the log was opened with.
    pub fn chain_head(&self) -> [u8; CHAIN_LEN] {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active
            .as_ref()
            .map_or(self.opts.chain_base.unwrap_or(CHAIN_START), |a| a.chain)
    }

    /// Write and sync everything queued, then start a new file; returns its number.
    pub(super) fn rotate_now(&self) -> Result<u64> {
        let mut q = self.lock();
        loop {
            if let Some(e) = &q.failed {
                return Err(Error::LogFailed(e.clone()));
            }
            if !q.writer_busy {
                break;
            }
            q = self.changed.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        self.writer_turn(q, true, |this, upto| {
            let mut active = this.active.lock().unwrap_or_else(|p| p.into_inner());
            let active = active
                .as_mut()
                .ok_or_else(|| TurnError::Retry(read_only()))?;
            this.rotate(active, upto + 1)?;
            Ok(active.header.number)
        })
        .map_err(TurnError::into_error)
    }

    /// Delete the log files numbered below `number` (covered by a snapshot).
    pub(super) fn delete_files_before(&self, number: u64) -> Result<usize> {
        let names = self
            .fs
            .list(&self.dir)
            .map_err(io_at("cannot list", &self.dir))?;
        let mut deleted = 0;
        for name in names {
            if LOG_FILE.parse_file_name(&name).is_some_and(|n| n < number) {
                // The copy before its file: a crash between leaves a file
                // without a copy (rewritten at the next open), never a copy
                // without its file, which an open takes for a lost file and
                // restores (reported as mended).
                if let Some(c) = &self.opts.copies {
                    let _ = self.fs.remove(&c.join(&name));
                }
                let path = self.dir.join(&name);
                self.fs
                    .remove(&path)
                    .map_err(io_at("cannot remove", &path))?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.fs
                .sync_dir(&self.dir)
                .map_err(io_at("cannot sync", &self.dir))?;
        }
        Ok(deleted)
    }

    fn write_through(&self, target: u64, durable: bool) -> Result<()> {
        let mut q = self.lock();
        loop {
            if let Some(e) = &q.failed {
                return Err(Error::LogFailed(e.clone()));
            }
            let done = if durable { q.synced_seq } else { q.written_seq };
            if done >= target {
                return Ok(());
            }
            if q.writer_busy {
                q = self.changed.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            self.writer_turn(q, durable, |_, _| Ok(()))
                .map_err(TurnError::into_error)?;
            q = self.lock();
        }
    }

    /// Be the writer once: take everything queued, write it (and sync it if
    /// `durable`), then run `after` (still the writer). Records the outcome
    /// for everyone waiting. After a retryable failure (a write that was cut
    /// off again, e.g. the disk is full) the batch is queued again, in
    /// order, for a later turn; after any other error the log refuses
    /// further work. The writer itself returns the original error.
    fn writer_turn<T>(
        &self,
        mut q: MutexGuard<'_, Queue>,
        durable: bool,
        after: impl FnOnce(&Self, u64) -> std::result::Result<T, TurnError>,
    ) -> std::result::Result<T, TurnError> {
        q.writer_busy = true;
        let mut batch = mem::take(&mut q.pending);
        q.pending_bytes = 0;
        let upto = q.next_seq - 1;
        drop(q);
        let (written, result) = match self.write_batch(&mut batch, durable) {
            Ok(()) => (true, after(self, upto)),
            Err(e) => (false, Err(e)),
        };
        let mut q = self.lock();
        q.writer_busy = false;
        if written {
            q.written_seq = upto;
            if durable {
                q.synced_seq = upto;
            }
        } else if let Err(TurnError::Retry(_)) = &result {
            let mut again = batch;
            again.append(&mut q.pending);
            q.pending_bytes = again.iter().map(|(_, p)| p.len()).sum();
            q.pending = again;
        }
        if let Err(TurnError::Fatal(e)) = &result {
            q.failed = Some(e.to_string());
        }
        self.changed.notify_all();
        result
    }

    /// Seal and write a batch (and fsync if `durable`); only the writer calls this.
    fn write_batch(
        &self,
        batch: &mut [(u64, Vec<u8>)],
        durable: bool,
    ) -> std::result::Result<(), TurnError> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let Some(active) = active.as_mut() else {
            // Read-only: nothing was appended, so nothing is to be written.
            return match batch.is_empty() {
                true => Ok(()),
                false => Err(TurnError::Fatal(read_only())),
            };
        };
        if !batch.is_empty() && (active.broken || active.len >= self.opts.rotate_bytes) {
            self.rotate(active, batch[0].0)?;
        }
        let path = self.dir.join(log_file_name(active.header.number));
        if !batch.is_empty() {
            if let Some(hook) = &*self.before_write.lock().unwrap_or_else(|p| p.into_inner()) {
                let before: usize = batch.iter().map(|(_, p)| p.len()).sum();
                // Records may carry frames only into a synced write that
                // leaves the reserve for deletes on a full disk (`active`).
                let may_carry = durable && active.reserved_to >= active.len + LOG_RESERVE_BYTES / 2;
                hook(batch, may_carry).map_err(TurnError::Fatal)?;
                // Frames the records now carry count toward log compaction.
                let after: usize = batch.iter().map(|(_, p)| p.len()).sum();
                self.appended_bytes.fetch_add(
                    after.saturating_sub(before) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            let mut out = Vec::with_capacity(batch.iter().map(|(_, p)| p.len() + 160).sum());
            let mut chain = active.chain;
            for (k, (seq, payload)) in batch.iter().enumerate() {
                chain = encode_record(
                    &mut out,
                    &active.key,
                    &active.header,
                    active.records + k as u64,
                    *seq,
                    &chain,
                    payload,
                );
            }
            if let Err(e) = active.file.write_all_at(&out, active.len) {
                let e = io_at("cannot write", &path)(e);
                // Cut off whatever part reached the file, so the file ends
                // at a record boundary; the batch goes to a new file later.
                return match active.file.set_len(active.len) {
                    Ok(()) => {
                        active.broken = true;
                        Err(TurnError::Retry(e))
                    }
                    Err(_) => Err(TurnError::Fatal(e)),
                };
            }
            if let Some(copy) = &active.copy {
                if copy.write_all_at(&out, active.len).is_err() {
                    active.copy = None;
                }
            }
            active.records += batch.len() as u64;
            active.chain = chain;
            active.len += out.len() as u64;
            active.renew_reserve();
        }
        if durable {
            active
                .file
                .sync_data()
                .map_err(|e| TurnError::Fatal(io_at("cannot sync", &path)(e)))?;
            if let (Some((seq, _)), Some(hook)) = (
                batch.last(),
                &*self.after_sync.lock().unwrap_or_else(|p| p.into_inner()),
            ) {
                hook(*seq, active.chain);
            }
        }
        Ok(())
    }

    /// Close the active file (durably) and start the next one. A file that
    /// cannot be created (e.g. the disk is full) is retryable: the active
    /// file stays as it was.
    fn rotate(
        &self,
        active: &mut ActiveFile,
        first_seq: u64,
    ) -> std::result::Result<(), TurnError> {
        let path = self.dir.join(log_file_name(active.header.number));
        // Durably cut to its last record before the next file exists: a
        // file other than the last never ends in zeros (FORMAT.md §7.3).
        active
            .cut_reserve()
            .map_err(|e| TurnError::Fatal(io_at("cannot sync", &path)(e)))?;
        let number = active.header.number + 1;
        let copies = self.opts.copies.as_deref();
        let old_file_done = |mut old: ActiveFile| {
            // Never appended to again (and cut above): its copy is made durable.
            close_copy(&*self.fs, &mut old, copies);
        };
        let start = FileStart {
            number,
            first_seq,
            chain_in: active.chain,
            format: self.opts.format,
        };
        match create_file(
            &*self.fs,
            &self.dir,
            self.opts.copies.as_deref(),
            &self.vault_id,
            &self.master,
            self.opts.cipher,
            start,
        ) {
            Ok(next) => {
                old_file_done(mem::replace(active, next));
                Ok(())
            }
            Err(e) => {
                // A half-made file would block the name; it holds no record.
                let _ = self.fs.remove(&self.dir.join(log_file_name(number)));
                Err(TurnError::Retry(e))
            }
        }
    }
}
