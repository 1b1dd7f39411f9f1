//! What an open vault reports about itself: usage, live counters, sizes on disk.

use std::sync::atomic::Ordering::Relaxed;

use super::engine::{lock, Vault};
use crate::telemetry::VaultTelemetry;

impl Vault {
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
    pub(super) fn dir_bytes(&self, sub: &str) -> u64 {
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
    pub fn telemetry(&self) -> VaultTelemetry {
        let stats = self.compaction_stats(std::time::Duration::ZERO);
        let mut t = {
            let s = self.lock_state();
            VaultTelemetry {
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
        t.compacting_now = c.compacting.load(Relaxed);
        t.last_compaction = lock(&c.last_compaction).map(|(at, bytes)| (at.elapsed(), bytes));
        t
    }
}
