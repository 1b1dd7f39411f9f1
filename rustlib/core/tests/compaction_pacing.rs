//! A background compaction gives way to the foreground: a paced pack
//! compaction can be stopped between batches and leaves a consistent vault,
//! and stopping the scheduler cuts a slowed-down cycle short.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::memvault::{MemVault, SEG};
use crypto_core::fsck::{self, FsckOptions};
use crypto_core::scheduler::policy::{spawn_scheduler_cycle, HybridCompactionPolicy};
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

const FILES: usize = 1200;

fn content(i: usize) -> Vec<u8> {
    (0..SEG as usize).map(|k| (i * 7 + k % 251) as u8).collect()
}

/// One-segment files in small packs, every other one deleted: every pack
/// about half dead, more live frames in them than one batch moves.
fn half_dead(fx: &MemVault) -> Vault {
    let v = fx.open_on_with(
        &fx.fs,
        EngineOptions {
            pack_size_limit: 256 << 10,
            ..Default::default()
        },
    );
    for i in 0..FILES {
        let f = v
            .create(ROOT, format!("f{i}").as_bytes(), 0o600, 0, 0)
            .unwrap();
        v.write(f.ino, 0, &content(i)).unwrap();
    }
    for i in (0..FILES).step_by(2) {
        v.unlink(ROOT, format!("f{i}").as_bytes()).unwrap();
    }
    v.sync().unwrap();
    v
}

fn assert_intact(v: &Vault) {
    for i in (1..FILES).step_by(2) {
        let f = v.lookup(ROOT, format!("f{i}").as_bytes()).unwrap();
        assert_eq!(v.read(f.ino, 0, SEG as usize).unwrap(), content(i), "f{i}");
    }
    let report = fsck::check(v, FsckOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
}

#[test]
fn a_paced_compaction_stopped_after_one_batch_moved_one_batch_and_lost_nothing() {
    let fx = MemVault::new();
    let v = half_dead(&fx);
    let mut calls = Vec::new();
    let report = v
        .compact_packs_paced(0.3, &mut |worked| {
            calls.push(worked);
            false
        })
        .unwrap();
    assert_eq!(calls.len(), 1, "paced once, then stopped");
    assert!(calls[0] > Duration::ZERO);
    assert!(report.bytes_copied > 0, "{report:?}");
    assert_intact(&v);
    drop(v);
    let v = fx.open();
    assert_intact(&v);
    // The rest is still there to compact, and a pace that goes on moves it all.
    let mut calls = 0;
    let rest = v
        .compact_packs_paced(0.3, &mut |_| {
            calls += 1;
            true
        })
        .unwrap();
    assert!(
        calls >= 2 && rest.bytes_copied > report.bytes_copied,
        "{rest:?}"
    );
    assert!(rest.packs_deleted > report.packs_deleted);
    assert_intact(&v);
}

#[test]
fn stopping_the_scheduler_cuts_a_cycle_slowed_by_a_busy_foreground_short() {
    let fx = MemVault::new();
    let v = Arc::new(half_dead(&fx));
    let mut policy = HybridCompactionPolicy::default();
    policy.dead_bytes = 1000;
    policy.pack_dead_ratio = 0.3;
    // Works 1 % of the time while the foreground is busy: a rest of about
    // 100 times each batch, for as long as the cycle lasts.
    policy.busy_share = 0.01;
    let reading = Arc::new(AtomicBool::new(true));
    let reader = {
        let (v, reading) = (Arc::clone(&v), Arc::clone(&reading));
        std::thread::spawn(move || {
            let f = v.lookup(ROOT, b"f1").unwrap();
            while reading.load(Relaxed) {
                v.read(f.ino, 0, 100).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let handle = spawn_scheduler_cycle(
        Arc::clone(&v),
        policy,
        Duration::from_millis(10),
        Duration::from_secs(5),
    );
    let t0 = Instant::now();
    while !v.telemetry().compacting_now && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(v.telemetry().compacting_now, "the cycle started");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        v.telemetry().compacting_now,
        "and is slowed down by the reads"
    );
    let t = Instant::now();
    assert_eq!(handle.stop(), None);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopped in {:?}",
        t.elapsed()
    );
    reading.store(false, Relaxed);
    reader.join().unwrap();
    assert_intact(&v);
}
