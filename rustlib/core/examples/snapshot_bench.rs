//! Metadata at scale: apply 1M file creations, snapshot them, read the
//! snapshot back, and replay a 1M-record log through bootstrap.
//! `cargo run -p crypto-core --release --example snapshot_bench -- [DIR] [FILES]`
//! Prints each phase's peak RSS (the kernel's high-water mark, reset before
//! the phase) and how far it rose above the RSS the phase started from.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crypto_core::crypto::keys::SecretKey;
use crypto_core::log::unified::{LogManager, LogOptions};
use crypto_core::metadata::{InodeKind, Timespec, UnifiedEntry};
use crypto_core::metadata::{MetadataState, ROOT_INO};
use crypto_core::recovery::bootstrap::load_unified_log;
use crypto_core::snapshot::{read_snapshot, snapshot_file_name, write_snapshot};
use crypto_core::storage::{FileSystem, RealFs};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Start a phase: reset the peak RSS; returns the RSS now.
fn phase_start() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    rss_kib("VmRSS:")
}

fn phase_rss(start: u64) -> String {
    let peak = rss_kib("VmHWM:");
    format!(
        "peak RSS {} MiB ({:+} MiB)",
        peak / 1024,
        (peak as i64 - start as i64) / 1024
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/dev/shm/fusefs-snap-bench"),
    );
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let _ = std::fs::remove_dir_all(&dir);
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    let master = SecretKey::from_bytes([5; 32]);
    let t0 = Timespec {
        sec: 1_700_000_000,
        nsec: 0,
    };
    let empty = || MetadataState::new(65536, 0o755, 0, 0, t0);
    // 1M files in 1000 directories, through the log (2 records per file).
    let (log, _, _) = LogManager::open(
        Arc::clone(&fs),
        &dir.join("log"),
        [1; 16],
        master.clone(),
        LogOptions::default(),
    )
    .unwrap();
    let mut state = empty();
    let rss = phase_start();
    let t = Instant::now();
    let dirs = 1000u64;
    for d in 0..dirs {
        for e in [
            UnifiedEntry::CreateInode {
                ino: 2 + d,
                kind: InodeKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                rdev: 0,
                time: t0,
                file_id: [0; 16],
                target: vec![],
            },
            UnifiedEntry::Link {
                parent: ROOT_INO,
                name: format!("d{d}").into_bytes(),
                ino: 2 + d,
                time: t0,
            },
        ] {
            state.apply(&e).unwrap();
            log.append(e.encode()).unwrap();
        }
    }
    for i in 0..n {
        let ino = 2 + dirs + i;
        for e in [
            UnifiedEntry::CreateInode {
                ino,
                kind: InodeKind::File,
                mode: 0o644,
                uid: 1000,
                gid: 1000,
                rdev: 0,
                time: t0,
                file_id: [(i % 251) as u8; 16],
                target: vec![],
            },
            UnifiedEntry::Link {
                parent: 2 + i % dirs,
                name: format!("file-{i}.txt").into_bytes(),
                ino,
                time: t0,
            },
        ] {
            state.apply(&e).unwrap();
            log.append(e.encode()).unwrap();
        }
    }
    log.sync().unwrap();
    let records = log.next_seq() - 1;
    println!(
        "apply + append {records} records: {:.2} s, {}",
        t.elapsed().as_secs_f64(),
        phase_rss(rss)
    );
    drop(log);
    let rss = phase_start();
    let t = Instant::now();
    let (replayed, _log, report) = load_unified_log(
        Arc::clone(&fs),
        &dir.join("log"),
        [1; 16],
        master.clone(),
        LogOptions::default(),
        empty(),
        crypto_core::snapshot::Covers {
            covers_seq: 0,
            chain: Some([0; 16]),
        },
    )
    .unwrap();
    println!(
        "bootstrap (replay {} records into the state): {:.2} s, {}",
        report.entries_replayed,
        t.elapsed().as_secs_f64(),
        phase_rss(rss)
    );
    assert_eq!(replayed.inodes.len(), state.inodes.len());
    drop((replayed, _log));
    let rss = phase_start();
    let t = Instant::now();
    write_snapshot(
        &*fs,
        &dir.join("snap"),
        [1; 16],
        &master,
        1,
        records,
        [0; 16],
        &state,
    )
    .unwrap();
    let size = std::fs::metadata(dir.join("snap").join(snapshot_file_name(1)))
        .unwrap()
        .len();
    println!(
        "snapshot of {} inodes: {:.2} s, {:.1} MiB on disk, {}",
        state.inodes.len(),
        t.elapsed().as_secs_f64(),
        size as f64 / 1048576.0,
        phase_rss(rss)
    );
    let rss = phase_start();
    let t = Instant::now();
    let (_, back) = read_snapshot(
        &*fs,
        &dir.join("snap").join(snapshot_file_name(1)),
        [1; 16],
        &master,
    )
    .unwrap();
    println!(
        "read snapshot: {:.2} s, {}",
        t.elapsed().as_secs_f64(),
        phase_rss(rss)
    );
    assert_eq!(back, state);
    let _ = std::fs::remove_dir_all(&dir);
}
