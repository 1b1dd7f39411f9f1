//! Compaction pauses: how long a thread calling getattr, lookup and write
//! in a loop waits while a compaction cycle (`compact_packs`, then
//! `compact_log`) runs on another thread, on a vault of FILES files built
//! through the `Vault` API (1000 files a directory; every 8th file holds a
//! segment, and before each cycle a sixteenth of the files are rewritten so
//! that older packs are half dead).
//! `cargo run -p crypto-core --release --example compaction_pause -- [DIR] [FILES...]`
//! (defaults: /dev/shm/fusefs-pause-bench, 100000 and 1000000 files).
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crypto_core::storage::RealFs;
use crypto_core::types::Argon2Params;
use crypto_core::vault::config::{VaultConfig, VaultOptions};
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

const FILES_PER_DIR: u64 = 1000;
const CYCLES: u64 = 3;

/// The vault and what the probe needs to address it.
struct Built {
    vault: Vault,
    /// (directory inode, name, file inode) of every file.
    files: Vec<(u64, Vec<u8>, u64)>,
}

fn content(i: u64, round: u64) -> Vec<u8> {
    // 4 KiB that zstd cannot shrink much: frames of realistic size.
    (0..4096u64)
        .map(|k| ((k + i * 7 + round * 13).wrapping_mul(2654435761) >> 11) as u8)
        .collect()
}

fn build(dir: &Path, n: u64) -> Built {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let opts = VaultOptions {
        argon2: Argon2Params {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    let (config, master) = VaultConfig::create(&RealFs, dir, b"bench", &opts).unwrap();
    let engine = EngineOptions {
        pack_size_limit: 8 << 20,
        ..EngineOptions::default()
    };
    let vault = Vault::open_with(Arc::new(RealFs), dir, config, master, engine).unwrap();
    let t = Instant::now();
    let dirs: Vec<u64> = (0..n.div_ceil(FILES_PER_DIR))
        .map(|d| {
            vault
                .mkdir(ROOT, format!("d{d}").as_bytes(), 0o755, 0, 0)
                .unwrap()
                .ino
        })
        .collect();
    let mut files = Vec::with_capacity(n as usize);
    for i in 0..n {
        let parent = dirs[(i / FILES_PER_DIR) as usize];
        let name = format!("file-{i}.txt").into_bytes();
        let ino = vault.create(parent, &name, 0o644, 1000, 1000).unwrap().ino;
        if i.is_multiple_of(8) {
            vault.write(ino, 0, &content(i, 0)).unwrap();
        }
        files.push((parent, name, ino));
    }
    vault.sync().unwrap();
    println!(
        "built {n} files in {} directories through the Vault API: {:.2} s",
        dirs.len(),
        t.elapsed().as_secs_f64()
    );
    Built { vault, files }
}

/// Rewrite the segment of half the files that hold one (one file in 16,
/// alternating halves from round to round), leaving their old frames dead.
fn make_dead(b: &Built, round: u64) {
    let t = Instant::now();
    let mut k = 0;
    for (i, (_, _, ino)) in b.files.iter().enumerate() {
        let i = i as u64;
        if i.is_multiple_of(8) && (i / 8) % 2 == round % 2 {
            b.vault.write(*ino, 0, &content(i, round + 1)).unwrap();
            k += 1;
        }
    }
    b.vault.sync().unwrap();
    println!("  rewrote {k} segments: {:.2} s", t.elapsed().as_secs_f64());
}

const OPS: [&str; 3] = ["getattr", "lookup", "write"];

/// One call of the probe: when it started (since the probe's origin), how
/// long it took (both in nanoseconds), which call.
#[derive(Clone, Copy)]
struct Call {
    at: u64,
    lat: u64,
    op: usize,
}

/// The probe's calls until `stop`.
fn probe(b: &Built, stop: &AtomicBool, origin: Instant) -> Vec<Call> {
    let mut calls = Vec::with_capacity(1 << 21);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data = [7u8; 512];
    let n = b.files.len() as u64;
    let mut k = 0usize;
    while !stop.load(Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (parent, name, ino) = &b.files[(x % n) as usize];
        k += 1;
        let op = k % 3;
        let t = Instant::now();
        match op {
            0 => {
                b.vault.getattr(*ino).unwrap();
            }
            1 => {
                b.vault.lookup(*parent, name).unwrap();
            }
            _ => {
                let w = &b.files[((x >> 20) % (n / 8)) as usize * 8];
                b.vault.write(w.2, 0, &data).unwrap();
            }
        }
        calls.push(Call {
            at: (t - origin).as_nanos() as u64,
            lat: t.elapsed().as_nanos() as u64,
            op,
        });
    }
    calls
}

/// Latency percentiles of the calls, and the longest three with what was
/// running then and when, from the start of the first phase (`phases`:
/// (name, end) in the probe's time, in order).
fn summary(calls: &[Call], phases: &[(&str, u64)]) -> String {
    if calls.is_empty() {
        return "no calls".into();
    }
    let mut lat: Vec<u64> = calls.iter().map(|c| c.lat).collect();
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1e6;
    let mut worst = calls.to_vec();
    worst.sort_unstable_by_key(|c| std::cmp::Reverse(c.lat));
    let worst: Vec<String> = worst
        .iter()
        .take(3)
        .map(|c| {
            let phase = phases
                .iter()
                .find(|(_, end)| c.at < *end)
                .map_or("after", |(name, _)| *name);
            let start = phases.first().map_or(0, |p| p.1);
            format!(
                "{} {:.1} ms in {phase} at +{:.3} s",
                OPS[c.op],
                c.lat as f64 / 1e6,
                (c.at as f64 - start as f64) / 1e9
            )
        })
        .collect();
    format!(
        "{} calls, median {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms (longest: {})",
        lat.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        lat[lat.len() - 1] as f64 / 1e6,
        worst.join(", ")
    )
}

/// Run `work` on this thread while the probe runs on another; returns the
/// work's result, the probe's calls and the probe's origin.
fn with_probe<T>(b: &Built, work: impl FnOnce() -> T) -> (T, Vec<Call>, Instant) {
    let stop = AtomicBool::new(false);
    let origin = Instant::now();
    std::thread::scope(|scope| {
        let h = scope.spawn(|| probe(b, &stop, origin));
        // Let the probe get going first.
        std::thread::sleep(Duration::from_millis(50));
        let out = work();
        stop.store(true, Relaxed);
        (out, h.join().unwrap(), origin)
    })
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/dev/shm/fusefs-pause-bench"),
    );
    let sizes: Vec<u64> = if args.len() > 2 {
        args[2..].iter().map(|s| s.parse().unwrap()).collect()
    } else {
        vec![100_000, 1_000_000]
    };
    for n in sizes {
        println!("== {n} files");
        let b = build(&dir, n);
        // The probe alone for a second: the machine's own noise.
        let (_, quiet, _) = with_probe(&b, || std::thread::sleep(Duration::from_millis(1000)));
        println!("  no compaction, 1 s: {}", summary(&quiet, &[]));
        for round in 0..CYCLES {
            make_dead(&b, round);
            let ((packs, log, ends), calls, origin) = with_probe(&b, || {
                let t = Instant::now();
                let report = b.vault.compact_packs(0.3).unwrap();
                let packs = (t.elapsed(), report);
                let packs_end = Instant::now();
                let t = Instant::now();
                let report = b.vault.compact_log().unwrap();
                (packs, (t.elapsed(), report), (t, packs_end, Instant::now()))
            });
            println!(
                "  cycle {}: compact_packs {:.3} s ({} packs deleted, {:.1} MiB copied), compact_log {:.3} s (covers record {})",
                round + 1,
                packs.0.as_secs_f64(),
                packs.1.packs_deleted,
                packs.1.bytes_copied as f64 / 1048576.0,
                log.0.as_secs_f64(),
                log.1.covers_seq,
            );
            let ns = |t: Instant| (t - origin).as_nanos() as u64;
            let phases = [
                ("before", ns(ends.0) - (packs.0.as_nanos() as u64)),
                ("compact_packs", ns(ends.1)),
                ("compact_log", ns(ends.2)),
            ];
            println!(
                "  stalls during cycle {}: {}",
                round + 1,
                summary(&calls, &phases)
            );
        }
        println!("  peak RSS so far: {:.0} MiB", peak_rss_mib());
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
