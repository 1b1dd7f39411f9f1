//! Telemetry: the counters a stream run collects ([`Telemetry`], and the
//! [`TelemetrySnapshot`] it returns), and what an open vault reports
//! ([`VaultTelemetry`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What a finished (or running) encrypt/decrypt did, and where time went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetrySnapshot {
    /// Bytes read from the input.
    pub bytes_in: u64,
    /// Bytes written to the output.
    pub bytes_out: u64,
    /// Plaintext bytes processed.
    pub plaintext_bytes: u64,
    /// Data segments (v2) or chunks (v1) processed.
    pub segments: u64,
    /// Segments stored zstd-compressed.
    pub compressed_segments: u64,
    /// Stored payload bytes / plaintext bytes (1.0 without compression).
    pub compression_ratio: f64,
    /// Seconds spent sealing/opening, summed over workers.
    pub crypto_seconds: f64,
    /// Seconds spent reading input and writing output.
    pub io_seconds: f64,
    /// Seconds spent compressing or decompressing, summed over workers.
    pub compression_seconds: f64,
    /// Wall-clock seconds of the run.
    pub elapsed_seconds: f64,
    /// Plaintext MiB per wall-clock second.
    pub throughput_mib_s: f64,
    /// Worker threads used.
    pub workers: u32,
}

/// Live counters shared by the threads of one run.
#[derive(Debug)]
pub struct Telemetry {
    start: Instant,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub plaintext_bytes: AtomicU64,
    pub stored_bytes: AtomicU64,
    pub segments: AtomicU64,
    pub compressed_segments: AtomicU64,
    pub crypto_ns: AtomicU64,
    pub io_ns: AtomicU64,
    pub compression_ns: AtomicU64,
    pub workers: AtomicU64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            start: Instant::now(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            plaintext_bytes: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            compressed_segments: AtomicU64::new(0),
            crypto_ns: AtomicU64::new(0),
            io_ns: AtomicU64::new(0),
            compression_ns: AtomicU64::new(0),
            workers: AtomicU64::new(0),
        }
    }
}

/// Add the time since `t0` to a nanosecond counter.
pub fn add_since(counter: &AtomicU64, t0: Instant) {
    counter.fetch_add(t0.elapsed().as_nanos() as u64, Relaxed);
}

impl Telemetry {
    pub fn snapshot(&self) -> TelemetrySnapshot {
        let secs = |c: &AtomicU64| Duration::from_nanos(c.load(Relaxed)).as_secs_f64();
        let elapsed = self.start.elapsed().as_secs_f64();
        let plain = self.plaintext_bytes.load(Relaxed);
        let stored = self.stored_bytes.load(Relaxed);
        TelemetrySnapshot {
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            plaintext_bytes: plain,
            segments: self.segments.load(Relaxed),
            compressed_segments: self.compressed_segments.load(Relaxed),
            compression_ratio: if plain == 0 {
                1.0
            } else {
                stored as f64 / plain as f64
            },
            crypto_seconds: secs(&self.crypto_ns),
            io_seconds: secs(&self.io_ns),
            compression_seconds: secs(&self.compression_ns),
            elapsed_seconds: elapsed,
            throughput_mib_s: if elapsed > 0.0 {
                plain as f64 / 1048576.0 / elapsed
            } else {
                0.0
            },
            workers: self.workers.load(Relaxed) as u32,
        }
    }
}

/// What an open vault reports (`Vault::telemetry`): its state's counts,
/// this session's I/O and cache counts, and its sizes on disk.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VaultTelemetry {
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
    /// A compaction cycle is running now.
    pub compacting_now: bool,
    /// This session's last compaction cycle: how long ago it ended, and the
    /// pack bytes it reclaimed (`None` before the first).
    pub last_compaction: Option<(std::time::Duration, u64)>,
}
