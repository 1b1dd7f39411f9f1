//! Unified-log speed: appending small records (group commit, no fsync per
//! record) and replaying them at open.
//! `cargo run -p crypto-core --release --example log_bench -- [DIR] [RECORDS]`
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crypto_core::crypto::keys::SecretKey;
use crypto_core::log::unified::{LogManager, LogOptions};
use crypto_core::storage::RealFs;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/dev/shm/fusefs-log-bench"),
    );
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let _ = std::fs::remove_dir_all(&dir);
    let open = || {
        LogManager::open(
            Arc::new(RealFs),
            &dir,
            [1; 16],
            SecretKey::from_bytes([2; 32]),
            LogOptions::default(),
        )
        .unwrap()
    };
    let (log, _, _) = open();
    let record = vec![0x5a_u8; 64];
    let t = Instant::now();
    for _ in 0..n {
        log.append(record.clone()).unwrap();
    }
    log.sync().unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "append {n} records of 64 bytes + one sync: {s:.3} s = {:.0} records/s",
        n as f64 / s
    );
    drop(log);
    let t = Instant::now();
    let (_, records, _) = open();
    println!(
        "open (replay) of {} records: {:.3} s",
        records.len(),
        t.elapsed().as_secs_f64()
    );
}
