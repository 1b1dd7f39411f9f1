//! `HybridCompactionPolicy` decides when to compact (log bytes since the
//! last snapshot and log files on disk, dead bytes of the packs against the
//! live ones, idle time, time since the last cycle) and how dead a pack must
//! be to be rewritten; `spawn_scheduler_cycle` runs cycles on a background thread
//! while the vault is open, paced to give way to reads and writes
//! ([`super::pacing`]), flushes unsynced changes within a bounded interval,
//! and stops cleanly.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pacing::{Pacing, BUSY_SHARE};
use crate::error::Result;
use crate::vault::compaction::{CompactionAction, CompactionStats};
use crate::vault::Vault;

/// Frames of at least this many bytes waiting to be punched (see
/// `vault::reclaim`) make the scheduler sync at its next tick rather than at
/// the flush interval: space freed by deleting files comes back within a
/// tick, while small overwrites do not add an fsync per tick.
pub const PUNCH_EARLY_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct HybridCompactionPolicy {
    /// Compact the log once this many bytes accumulated...
    pub log_bytes: u64,
    /// ...or an eighth of it, when the vault has been idle this long.
    pub idle: Duration,
    /// Compact packs when at least this share of their bytes is dead...
    pub dead_ratio: f64,
    /// ...and at least this many bytes are dead (an eighth when idle).
    pub dead_bytes: u64,
    /// Never two cycles closer than this.
    pub min_interval: Duration,
    /// Compact whatever there is after this long.
    pub max_interval: Duration,
    /// Packs at least this dead are rewritten by a pack compaction.
    pub pack_dead_ratio: f64,
    /// Fold the log into a snapshot once this many log files are on disk
    /// (each session starts one: short sessions never fill one up).
    pub log_files: u64,
    /// The bound on dead space once the vault has been idle: this share of
    /// the live bytes, plus one pack (`CompactionStats::pack_size`).
    pub dead_share: f64,
    /// The share of the time a cycle's pack compaction may work while
    /// reads and writes are coming in (see [`super::pacing`]).
    pub busy_share: f64,
    /// When the last cycle ended; a new policy counts as `min_interval`
    /// after one, so a session may compact as soon as there is reason to
    /// (short sessions otherwise never did, and the vault grew by a log
    /// file and a pack each).
    last_cycle: Instant,
    /// Whether the vault was idle at the last cycle: the first idle cycle
    /// after busy ones is not held off by `min_interval` (see
    /// `should_compact`).
    last_cycle_idle: bool,
}

impl Default for HybridCompactionPolicy {
    fn default() -> Self {
        HybridCompactionPolicy {
            log_bytes: 64 << 20,
            idle: Duration::from_secs(10),
            dead_ratio: 0.3,
            dead_bytes: 256 << 20,
            min_interval: Duration::from_secs(30),
            max_interval: Duration::from_secs(3600),
            pack_dead_ratio: 0.5,
            log_files: 4,
            dead_share: 0.1,
            busy_share: BUSY_SHARE,
            last_cycle: Instant::now()
                .checked_sub(Duration::from_secs(30))
                .unwrap_or_else(Instant::now),
            last_cycle_idle: false,
        }
    }
}

impl HybridCompactionPolicy {
    /// Time since the last cycle (see `mark_compacted`).
    pub fn since_last_cycle(&self) -> Duration {
        self.last_cycle.elapsed()
    }

    /// Record that a cycle just ran, on the stats it was decided on.
    pub fn mark_compacted(&mut self, s: &CompactionStats) {
        self.last_cycle = Instant::now();
        self.last_cycle_idle = s.idle >= self.idle;
    }

    pub fn should_compact(&self, s: &CompactionStats) -> CompactionAction {
        let idle = s.idle >= self.idle;
        // Cycles keep `min_interval` apart, but a busy cycle does not hold
        // off the first idle one: a session that folds the log files
        // earlier sessions left as soon as it starts (busy, packs left
        // alone) must still bring the dead space within its bound once it
        // has been idle `idle`, not `min_interval` later (a mount of 15 s
        // otherwise reclaimed nothing).
        let first_idle = idle && !self.last_cycle_idle;
        if s.since_last_cycle < self.min_interval && !first_idle {
            return CompactionAction::default();
        }
        let overdue = s.since_last_cycle >= self.max_interval;
        let log = s.log_bytes >= self.log_bytes
            || (idle && s.log_bytes >= self.log_bytes / 8)
            || (overdue && s.log_bytes > 0)
            || (idle && s.log_files >= self.log_files)
            || s.log_files >= 4 * self.log_files;
        let total = s.live_bytes + s.dead_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            s.dead_bytes as f64 / total as f64
        };
        let dead_min = if idle || overdue {
            self.dead_bytes / 8
        } else {
            self.dead_bytes
        };
        let packs = s.dead_bytes > 0
            && ((s.dead_bytes >= dead_min && ratio >= self.dead_ratio)
                || (idle && s.dead_bytes > self.dead_allowed(s)));
        CompactionAction { log, packs }
    }

    /// Dead bytes an idle vault may keep: `dead_share` of the live bytes
    /// plus one pack.
    pub fn dead_allowed(&self, s: &CompactionStats) -> u64 {
        (self.dead_share * s.live_bytes as f64) as u64 + s.pack_size
    }

    /// The share of dead bytes from which a pack compaction rewrites a pack
    /// now: the usual `pack_dead_ratio` while the vault is busy; when it is
    /// idle, as low as it takes to bring the dead bytes down to
    /// `dead_share` of the live ones (the deadest packs first).
    pub fn pack_ratio(&self, s: &CompactionStats, vault: &Vault) -> f64 {
        if s.idle < self.idle {
            return self.pack_dead_ratio;
        }
        let target = (self.dead_share * s.live_bytes as f64) as u64;
        vault
            .dead_ratio_for_target(target)
            .map_or(self.pack_dead_ratio, |r| r.min(self.pack_dead_ratio))
    }
}

/// The running scheduler; `stop` (or drop) ends it.
pub struct SchedulerHandle {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl SchedulerHandle {
    /// Stop the thread and wait for it (a cycle in progress finishes first).
    pub fn stop(mut self) -> Option<String> {
        self.halt();
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn halt(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Run the policy every `tick` on a background thread: sync unsynced
/// changes at least every `flush_interval` (at the next tick when
/// [`PUNCH_EARLY_BYTES`] of freed frames wait for it), and compact when the
/// policy says.
pub fn spawn_scheduler_cycle(
    vault: Arc<Vault>,
    mut policy: HybridCompactionPolicy,
    tick: Duration,
    flush_interval: Duration,
) -> SchedulerHandle {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let last_error = Arc::new(Mutex::new(None));
    let (s2, e2) = (Arc::clone(&stop), Arc::clone(&last_error));
    let thread = std::thread::Builder::new()
        .name("fusefs-scheduler".into())
        .spawn(move || {
            let mut last_flush = Instant::now();
            loop {
                {
                    let (m, c) = &*s2;
                    let g = m.lock().unwrap_or_else(|p| p.into_inner());
                    let (g, _) = c
                        .wait_timeout_while(g, tick, |stopped| !*stopped)
                        .unwrap_or_else(|p| p.into_inner());
                    if *g {
                        return;
                    }
                }
                let outcome: Result<()> = (|| {
                    if last_flush.elapsed() >= flush_interval
                        || vault.bytes_awaiting_punch() >= PUNCH_EARLY_BYTES
                    {
                        vault.sync()?;
                        last_flush = Instant::now();
                    }
                    let stats = vault.compaction_stats(policy.since_last_cycle());
                    let action = policy.should_compact(&stats);
                    if action.any() {
                        let ratio = policy.pack_ratio(&stats, &vault);
                        // Paced: the foreground keeps most of the disk
                        // and the cores, and a stop cuts the cycle short.
                        let ops = || vault.foreground_ops();
                        let mut pacing = Pacing::new(policy.busy_share, &ops, &s2);
                        vault.run_compaction_paced(action, ratio, &mut |worked| {
                            pacing.after_batch(worked)
                        })?;
                        policy.mark_compacted(&stats);
                    }
                    Ok(())
                })();
                if let Err(e) = outcome {
                    // Reported at stop; the engine itself refuses further
                    // writes after an I/O error, so retrying is harmless.
                    *e2.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                }
            }
        })
        .expect("spawn the scheduler thread");
    SchedulerHandle {
        stop,
        thread: Some(thread),
        last_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(
        log_mib: u64,
        live_mib: u64,
        dead_mib: u64,
        idle_s: u64,
        since_s: u64,
    ) -> CompactionStats {
        CompactionStats {
            log_bytes: log_mib << 20,
            live_bytes: live_mib << 20,
            dead_bytes: dead_mib << 20,
            idle: Duration::from_secs(idle_s),
            since_last_cycle: Duration::from_secs(since_s),
            log_files: 1,
            pack_size: 64 << 20,
        }
    }

    #[test]
    fn decisions() {
        let p = HybridCompactionPolicy::default();
        let none = CompactionAction::default();
        assert_eq!(
            p.should_compact(&stats(100, 0, 0, 0, 10)),
            none,
            "too soon after the last cycle"
        );
        assert!(p.should_compact(&stats(100, 0, 0, 0, 60)).log);
        assert!(
            !p.should_compact(&stats(10, 0, 0, 0, 60)).log,
            "small log, busy"
        );
        assert!(
            p.should_compact(&stats(10, 0, 0, 20, 60)).log,
            "small log, idle"
        );
        assert!(p.should_compact(&stats(1, 0, 0, 0, 4000)).log, "overdue");
        assert!(p.should_compact(&stats(0, 100, 400, 0, 60)).packs);
        assert!(
            !p.should_compact(&stats(0, 10_000, 400, 0, 60)).packs,
            "mostly live"
        );
        assert!(
            !p.should_compact(&stats(0, 10, 40, 0, 60)).packs,
            "little dead, busy"
        );
        assert!(
            p.should_compact(&stats(0, 10, 40, 20, 60)).packs,
            "little dead, idle"
        );
    }

    #[test]
    fn log_files_of_earlier_sessions_and_dead_space_beyond_the_bound() {
        let p = HybridCompactionPolicy::default();
        let with = |log_files, live_mib, dead_mib, idle_s| CompactionStats {
            log_files,
            pack_size: 4 << 20,
            ..stats(0, live_mib, dead_mib, idle_s, 60)
        };
        assert!(
            p.should_compact(&with(4, 0, 0, 20)).log,
            "4 log files, idle"
        );
        assert!(
            !p.should_compact(&with(4, 0, 0, 0)).log,
            "4 log files, busy"
        );
        assert!(
            p.should_compact(&with(16, 0, 0, 0)).log,
            "16 log files, busy"
        );
        // 100 MiB live: 10 MiB + one 4 MiB pack of dead space are allowed.
        assert!(
            p.should_compact(&with(1, 100, 15, 20)).packs,
            "over the bound, idle"
        );
        assert!(
            !p.should_compact(&with(1, 100, 13, 20)).packs,
            "within the bound"
        );
        assert!(
            !p.should_compact(&with(1, 100, 15, 0)).packs,
            "over the bound, busy"
        );
    }

    #[test]
    fn a_busy_cycle_does_not_hold_off_the_first_idle_one() {
        let mut p = HybridCompactionPolicy::default();
        // A session starts busy with 16 log files of earlier sessions: a
        // log-only cycle at once.
        let busy = CompactionStats {
            log_files: 16,
            pack_size: 4 << 20,
            ..stats(0, 10, 40, 0, 60)
        };
        assert_eq!(
            p.should_compact(&busy),
            CompactionAction {
                log: true,
                packs: false
            }
        );
        p.mark_compacted(&busy);
        // Busy again 10 s later: min_interval holds.
        let soon = |idle_s| CompactionStats {
            log_files: 1,
            ..stats(0, 10, 40, idle_s, 10)
        };
        assert_eq!(p.should_compact(&soon(0)), CompactionAction::default());
        // Idle 10 s later: the packs are compacted now, not 30 s later...
        assert!(p.should_compact(&soon(20)).packs);
        p.mark_compacted(&soon(20));
        // ...and the next idle cycle waits min_interval again.
        assert_eq!(p.should_compact(&soon(20)), CompactionAction::default());
    }

    #[test]
    fn a_new_policy_allows_a_cycle_at_once() {
        let p = HybridCompactionPolicy::default();
        assert!(p.since_last_cycle() >= p.min_interval);
    }
}
