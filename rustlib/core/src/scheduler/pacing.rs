//! [`Pacing`]: how a background compaction cycle gives way to the
//! foreground. While reads and writes are coming in, the cycle rests after
//! each batch of moves for long enough that it works only `share` of the
//! time; with no foreground I/O it runs flat out. A stop request ends a rest
//! at once and the cycle after the batch in hand, so an unmount never waits
//! for a slowed-down cycle.
//!
//! Why: on the reference VM (2 cores, vault on tmpfs) a cycle copying
//! 1.6 GiB cut a concurrent 1 GiB sequential write to 0.28 of its speed
//! (median of 5, scripts/bench_compaction_impact.py); the issue allows 20 %.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The share of the time a cycle may work while the foreground is busy.
/// With the vault on disk, a write during a cycle ran at 0.81 of its speed
/// with a share of 10 % and 0.84 with 5 % (medians of 5; the same two
/// writes without any compaction: 0.95, the order of the writes and noise).
pub const BUSY_SHARE: f64 = 0.05;

/// Paces one compaction cycle (see the module).
pub struct Pacing<'a> {
    /// Share of the time the cycle works while the foreground is busy (0..=1).
    share: f64,
    /// The foreground's operation count (`Vault::foreground_ops`).
    ops: &'a dyn Fn() -> u64,
    /// The scheduler's stop flag and the condition it is signalled by.
    stop: &'a (Mutex<bool>, Condvar),
    /// The count when the last batch started.
    seen: u64,
}

impl<'a> Pacing<'a> {
    pub fn new(share: f64, ops: &'a dyn Fn() -> u64, stop: &'a (Mutex<bool>, Condvar)) -> Self {
        Pacing {
            share: share.clamp(0.01, 1.0),
            ops,
            stop,
            seen: ops(),
        }
    }

    /// The rest after a batch that took `worked`: none if the foreground
    /// was quiet, else enough that working is `share` of the time.
    pub fn rest(&self, worked: Duration, foreground_busy: bool) -> Duration {
        if !foreground_busy {
            return Duration::ZERO;
        }
        worked.mul_f64((1.0 - self.share) / self.share)
    }

    /// After a batch that took `worked`: rest if the foreground was busy
    /// since the last batch began. False: stop the cycle (the scheduler is
    /// stopping).
    pub fn after_batch(&mut self, worked: Duration) -> bool {
        let now = (self.ops)();
        let rest = self.rest(worked, now != self.seen);
        let (m, c) = self.stop;
        let stopped = m.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + rest;
        let (stopped, _) = c
            .wait_timeout_while(stopped, rest, |stopped| {
                !*stopped && Instant::now() < deadline
            })
            .unwrap_or_else(|p| p.into_inner());
        // Operations during the rest count as the next batch's foreground.
        self.seen = now;
        !*stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;

    fn stop() -> (Mutex<bool>, Condvar) {
        (Mutex::new(false), Condvar::new())
    }

    #[test]
    fn rests_only_while_the_foreground_is_busy() {
        let s = stop();
        let ops = || 0;
        let p = Pacing::new(0.1, &ops, &s);
        let ms = Duration::from_millis;
        assert_eq!(p.rest(ms(10), false), Duration::ZERO);
        let rest = p.rest(ms(10), true);
        assert!(
            rest > ms(89) && rest < ms(91),
            "{rest:?}: works a tenth of the time"
        );
        let ops = || 0;
        let flat_out = Pacing::new(1.0, &ops, &s);
        assert_eq!(flat_out.rest(ms(10), true), Duration::ZERO);
    }

    #[test]
    fn a_busy_foreground_makes_it_rest_and_a_quiet_one_not() {
        let s = stop();
        let count = AtomicU64::new(0);
        let ops = || count.load(Relaxed);
        let mut p = Pacing::new(0.5, &ops, &s);
        let t = Instant::now();
        assert!(p.after_batch(Duration::from_millis(50)));
        assert!(t.elapsed() < Duration::from_millis(40), "quiet: no rest");
        count.fetch_add(1, Relaxed);
        let t = Instant::now();
        assert!(p.after_batch(Duration::from_millis(50)));
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "busy: rests as long as it worked"
        );
        let t = Instant::now();
        assert!(p.after_batch(Duration::from_millis(50)));
        assert!(t.elapsed() < Duration::from_millis(40), "quiet again");
    }

    #[test]
    fn a_stop_ends_the_rest_at_once_and_the_cycle() {
        let s = Arc::new(stop());
        let count = AtomicU64::new(0);
        let ops = || count.fetch_add(1, Relaxed);
        let mut p = Pacing::new(0.01, &ops, &s);
        let stopper = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                *s.0.lock().unwrap() = true;
                s.1.notify_all();
            })
        };
        let t = Instant::now();
        // Busy foreground: a rest of 99 s, cut short by the stop.
        assert!(!p.after_batch(Duration::from_secs(1)));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        stopper.join().unwrap();
        assert!(!p.after_batch(Duration::ZERO), "stopped stays stopped");
    }
}
