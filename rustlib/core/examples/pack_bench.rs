//! Pack store speed: write then read MIB MiB (default 1024) as 64 KiB
//! segments in calls of SEGMENTS (default 16 = 1 MiB), with one sync at the
//! end of the writes; reads go through `read_segments` (one call per write
//! call) and, for comparison, `read_segment` one segment at a time.
//! `cargo run -p crypto-core --release --example pack_bench -- [DIR] [MIB] [SEGMENTS] [ZSTD_LEVEL]`
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crypto_core::crypto::aead::AeadKey;
use crypto_core::crypto::keys::SecretKey;
use crypto_core::crypto::vault_keys::{purpose, subkey};
use crypto_core::metadata::SegmentRef;
use crypto_core::packs::{PackOptions, PackStore};
use crypto_core::storage::RealFs;
use crypto_core::types::Cipher;

const SEG: usize = 64 << 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/dev/shm/fusefs-pack-bench"),
    );
    let mib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let per_call: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let compression: Option<i32> = args.get(4).and_then(|s| s.parse().ok());
    let _ = std::fs::remove_dir_all(&dir);
    let file_id = [5u8; 16];
    let key = AeadKey::new(
        Cipher::Aes256Gcm,
        &subkey(&SecretKey::from_bytes([2; 32]), purpose::FILE, &file_id),
    );
    let store = PackStore::open(
        Arc::new(RealFs),
        &dir,
        [1; 16],
        Cipher::Aes256Gcm,
        PackOptions {
            compression,
            ..Default::default()
        },
    )
    .unwrap();
    // Incompressible-looking data (compression, if on, is tried and refused).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let call: Vec<u8> = (0..SEG * per_call)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let calls = (mib << 20) / (SEG * per_call);
    let bytes = (calls * SEG * per_call) as f64;

    let t = Instant::now();
    let mut refs: Vec<(u64, SegmentRef)> = Vec::with_capacity(calls * per_call);
    for c in 0..calls {
        let segs: Vec<(u64, u64, &[u8])> = call
            .chunks(SEG)
            .enumerate()
            .map(|(k, s)| ((c * per_call + k) as u64, 1, s))
            .collect();
        let r = store.write_segments(&key, &file_id, &segs).unwrap();
        refs.extend(segs.iter().map(|s| s.0).zip(r));
    }
    store.sync().unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "write {mib} MiB in calls of {per_call} segments + sync: {s:.3} s = {:.2} GB/s ({} packs)",
        bytes / s / 1e9,
        store.pack_numbers().unwrap().len()
    );

    let t = Instant::now();
    for (c, chunk) in refs.chunks(per_call).enumerate() {
        let got = store.read_segments(&key, &file_id, chunk).unwrap();
        if c == 0 {
            assert_eq!(got.concat(), call);
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "read  {mib} MiB in calls of {per_call} segments (read_segments): {s:.3} s = {:.2} GB/s",
        bytes / s / 1e9
    );

    let t = Instant::now();
    for (i, r) in &refs {
        std::hint::black_box(store.read_segment(&key, &file_id, *i, r).unwrap());
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "read  {mib} MiB one segment at a time (read_segment): {s:.3} s = {:.2} GB/s",
        bytes / s / 1e9
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
