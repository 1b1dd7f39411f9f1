//! Compaction, in one place: what the policy looks at
//! ([`CompactionStats`]) and asks for ([`CompactionAction`]), one scheduler
//! cycle ([`Vault::run_compaction`]), log compaction (a snapshot of the
//! state, then the log it covers deleted) and pack compaction (live frames
//! of mostly-dead packs copied unchanged, then the packs deleted).
//! The scheduler (`crate::scheduler`) decides when and calls in here.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::engine::{lock, now, Vault};
use crate::error::{io_at, Result};
use crate::log::cut::LogCut;
use crate::log::unified::LogManager;
use crate::metadata::{MetadataState, SegmentRef, UnifiedEntry};
use crate::mirror;
use crate::snapshot::{parse_snapshot_file_name, snapshot_file_name, write_snapshot};

/// What the policy looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CompactionStats {
    /// Log payload bytes a snapshot would let go.
    pub log_bytes: u64,
    pub live_bytes: u64,
    pub dead_bytes: u64,
    /// Time since the last change to the vault.
    pub idle: Duration,
    /// Time since the last compaction cycle.
    pub since_last_cycle: Duration,
    /// Log files on disk, this session's and those earlier sessions left
    /// (each session starts a new one; a snapshot folds them all).
    pub log_files: u64,
    /// The size a pack grows to: the dead space allowed besides a share of
    /// the live data is about one pack.
    pub pack_size: u64,
}

/// What to do now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionAction {
    pub log: bool,
    pub packs: bool,
}

impl CompactionAction {
    pub fn any(self) -> bool {
        self.log || self.packs
    }
}

/// What one pack compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackCompactionReport {
    pub packs_deleted: usize,
    pub bytes_copied: u64,
    pub bytes_reclaimed: u64,
}

/// What one log compaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionReport {
    pub snapshot: u64,
    pub covers_seq: u64,
    pub log_files_deleted: usize,
    pub snapshots_deleted: usize,
}

/// Log compaction, second step (the first is [`LogManager::cut`]): write
/// `state` (the state at `cut`) as a snapshot, append its SnapshotCheckpoint
/// record, delete the log files and older snapshots it covers. Every step is
/// durable before the next, so a crash anywhere leaves the old log (perhaps with an
/// unused snapshot) or the new snapshot with the log after it; bootstrap
/// handles both. Compactions must not run concurrently (the engine
/// serializes them).
pub fn finish_log_compaction(
    log: &LogManager,
    cut: LogCut,
    state: &MetadataState,
    snap_dir: &Path,
    snap_copies: Option<&Path>,
) -> Result<CompactionReport> {
    let fs = &**log.storage();
    fs.create_dir_all(snap_dir)
        .map_err(io_at("cannot create", snap_dir))?;
    let existing: Vec<u64> = fs
        .list(snap_dir)
        .map_err(io_at("cannot list", snap_dir))?
        .iter()
        .filter_map(|n| parse_snapshot_file_name(n))
        .collect();
    let number = existing.iter().max().map_or(1, |m| m + 1);
    let covers_seq = cut.covers_seq;
    write_snapshot(
        fs,
        snap_dir,
        log.vault_id(),
        log.master(),
        number,
        covers_seq,
        cut.chain,
        state,
    )?;
    if let Some(c) = snap_copies {
        let name = snapshot_file_name(number);
        mirror::refresh(fs, &snap_dir.join(&name), &c.join(&name))?;
    }
    log.append_sync(UnifiedEntry::SnapshotCheckpoint { number, covers_seq }.encode())?;
    let log_files_deleted = log.delete_before_cut(&cut)?;
    let mut snapshots_deleted = 0;
    for old in existing {
        mirror::remove_snapshot(fs, snap_dir, snap_copies, old)?;
        snapshots_deleted += 1;
    }
    if snapshots_deleted > 0 {
        fs.sync_dir(snap_dir)
            .map_err(io_at("cannot sync", snap_dir))?;
        if let Some(c) = snap_copies {
            fs.sync_dir(c).map_err(io_at("cannot sync", c))?;
        }
    }
    Ok(CompactionReport {
        snapshot: number,
        covers_seq,
        log_files_deleted,
        snapshots_deleted,
    })
}

/// Both steps at once, for a caller that holds its write lock throughout.
pub fn compact_unified_log(
    log: &LogManager,
    state: &MetadataState,
    snap_dir: &Path,
    snap_copies: Option<&Path>,
) -> Result<CompactionReport> {
    let cut = log.cut()?;
    finish_log_compaction(log, cut, state, snap_dir, snap_copies)
}

/// Called by a pack compaction after each record of moves with the time
/// the batch took; false stops it there (see [`Vault::compact_packs_paced`]).
pub type Pace<'a> = &'a mut dyn FnMut(Duration) -> bool;

/// Moves per `MoveSegments` record of a pack compaction. Each record is
/// applied under the state lock: a bounded batch keeps that pause short
/// (1024 moves took up to 4 ms at 1M inodes, examples/compaction_pause.rs)
/// and the record far below the log's record size limit, whatever the
/// number of frames a cycle moves.
pub const MOVES_PER_RECORD: usize = 256;

impl Vault {
    /// What the compaction policy looks at.
    pub fn compaction_stats(&self, since_last_cycle: std::time::Duration) -> CompactionStats {
        // An O(1) copy: the sums run without the lock.
        let packs = self.lock_state().packs.clone();
        let (live, dead) = packs
            .values()
            .fold((0, 0), |(l, d), u| (l + u.live, d + u.dead));
        let log_dir = self.dir.join("log");
        let log_files = self.fs.list(&log_dir).map_or(0, |names| names.len() as u64);
        CompactionStats {
            log_bytes: self.log.appended_bytes(),
            live_bytes: live,
            dead_bytes: dead,
            idle: lock(&self.last_change).elapsed(),
            since_last_cycle,
            log_files,
            pack_size: self.packs.options().size_limit,
        }
    }

    /// The lowest share of dead bytes a pack must have to be rewritten so
    /// that at most `target` dead bytes are left in the vault: packs are
    /// taken from the deadest down until enough dead space goes with them.
    /// `None` when nothing needs rewriting; the active pack never counts.
    pub fn dead_ratio_for_target(&self, target: u64) -> Option<f64> {
        let active = self.packs.active_pack();
        let copy = self.lock_state().packs.clone();
        let mut packs: Vec<(f64, u64)> = copy
            .iter()
            .filter(|(p, u)| Some(**p) != active && u.dead > 0)
            .map(|(_, u)| (u.dead as f64 / (u.live + u.dead) as f64, u.dead))
            .collect();
        let mut dead: u64 = copy.values().map(|u| u.dead).sum();
        if dead <= target {
            return None;
        }
        packs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ratio = None;
        for (r, d) in packs {
            ratio = Some(r);
            dead -= d;
            if dead <= target {
                break;
            }
        }
        ratio
    }

    /// Calls of the file-system interface that read or write data (reads,
    /// writes, fsyncs) this session: a background compaction that sees the
    /// count move gives way to them (see [`Pace`]).
    pub fn foreground_ops(&self) -> u64 {
        let c = &self.counters;
        c.reads.load(Relaxed) + c.writes.load(Relaxed) + c.fsyncs.load(Relaxed)
    }

    /// One compaction cycle: what `action` asks for, then a `Scheduler` record.
    pub fn run_compaction(
        &self,
        action: CompactionAction,
        pack_dead_ratio: f64,
    ) -> Result<(Option<PackCompactionReport>, Option<CompactionReport>)> {
        self.run_compaction_paced(action, pack_dead_ratio, &mut |_| true)
    }

    /// [`Vault::run_compaction`], the pack compaction paced by `pace`
    /// (see [`Vault::compact_packs_paced`]).
    pub fn run_compaction_paced(
        &self,
        action: CompactionAction,
        pack_dead_ratio: f64,
        pace: Pace<'_>,
    ) -> Result<(Option<PackCompactionReport>, Option<CompactionReport>)> {
        let c = &self.counters;
        c.compacting.store(true, Relaxed);
        let result = self.run_compaction_cycle(action, pack_dead_ratio, pace);
        c.compacting.store(false, Relaxed);
        if let Ok((packs, _)) = &result {
            let reclaimed = packs.as_ref().map_or(0, |p| p.bytes_reclaimed);
            *lock(&c.last_compaction) = Some((Instant::now(), reclaimed));
        }
        result
    }

    fn run_compaction_cycle(
        &self,
        action: CompactionAction,
        pack_dead_ratio: f64,
        pace: Pace<'_>,
    ) -> Result<(Option<PackCompactionReport>, Option<CompactionReport>)> {
        let packs = if action.packs {
            Some(self.compact_packs_paced(pack_dead_ratio, pace)?)
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

    /// Write the state as a snapshot and drop the log it covers.
    ///
    /// Readers and writers wait only while the log is cut and the state
    /// copied (an O(1) copy: the state is made of persistent maps, see
    /// [`metadata`](crate::metadata)); the snapshot is encoded and
    /// written from the copy without the lock.
    pub fn compact_log(&self) -> Result<CompactionReport> {
        self.snapshot_state(None)
    }

    /// Log compaction, writing the state as it is, or with `replace` first
    /// made the vault's state (fsck's repair): either way the snapshot is
    /// exactly the state after the cut.
    pub(super) fn snapshot_state(
        &self,
        replace: Option<MetadataState>,
    ) -> Result<CompactionReport> {
        let _one_at_a_time = lock(&self.compaction);
        self.packs.sync()?;
        // Sync the log now, so that the sync under the lock (the cut must be
        // exactly the copied state) has only the last few records left.
        self.log.sync()?;
        let (cut, state) = {
            let mut s = self.lock_state();
            // Frames the records up to the cut refer to must be in their
            // packs for good: the log files that may carry them go.
            self.packs.sync()?;
            let cut = self.log.cut()?;
            if let Some(r) = replace {
                *s = r;
            }
            (cut, s.clone())
        };
        let copies = crate::mirror::snapshot_copies(&self.dir);
        let done = finish_log_compaction(
            &self.log,
            cut,
            &state,
            &self.dir.join("snap"),
            Some(&copies),
        );
        if let (Ok(r), Some(local)) = (&done, &self.local) {
            local.note_snapshot(r.snapshot, r.covers_seq);
        }
        done
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
        self.compact_packs_paced(min_dead_ratio, &mut |_| true)
    }

    /// [`Vault::compact_packs`], calling `pace` after each record of moves
    /// with the time that batch took (copies and record). `pace` may
    /// sleep, to leave the disk and the cores to the foreground; when it
    /// returns false no further frame is copied: the packs emptied so far
    /// are deleted and the rest stay as they are, every frame readable
    /// where its record says (moved or not).
    pub fn compact_packs_paced(
        &self,
        min_dead_ratio: f64,
        pace: Pace<'_>,
    ) -> Result<PackCompactionReport> {
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
            let started = Instant::now();
            let mut moves = Vec::with_capacity(batch.len());
            for &(ino, index, from) in batch {
                let to = self.packs.copy_frame(&from)?;
                report.bytes_copied += from.stored_len as u64;
                moves.push((ino, index, from, to));
            }
            // The copies are durable before the record reaches the log (its
            // before-write hook syncs the packs), and that write happens
            // after the state lock is released (see `StateGuard`).
            {
                let mut s = self.lock_state();
                self.commit(&mut s, UnifiedEntry::MoveSegments { moves })?;
            }
            if !pace(started.elapsed()) {
                break;
            }
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
        // A dead frame in a candidate may be the base of a patch a record
        // carries (`packs::carried`), needed until the frame that replaced
        // it is durable: every frame committed so far is, after this.
        self.packs.sync()?;
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
}
