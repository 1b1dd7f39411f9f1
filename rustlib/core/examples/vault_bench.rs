//! Sequential write and read of a big file through `Vault::write`/`read` in
//! 1 MiB calls (the engine target: ≥ 1.5 GB/s on a tmpfs vault).
//! `cargo run -p crypto-core --release --example vault_bench -- [DIR] [MIB]`
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crypto_core::storage::RealFs;
use crypto_core::types::Argon2Params;
use crypto_core::vault::config::{VaultConfig, VaultOptions};
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .map(String::as_str)
            .unwrap_or("/dev/shm/fusefs-vault-bench"),
    );
    let mib: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let opts = VaultOptions {
        argon2: Argon2Params {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    let (config, master) = VaultConfig::create(&RealFs, &dir, b"bench", &opts).unwrap();
    let v = Vault::open_with(
        Arc::new(RealFs),
        &dir,
        config,
        master,
        EngineOptions::default(),
    )
    .unwrap();
    let f = v.create(ROOT, b"big", 0o600, 0, 0).unwrap();
    let chunk: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    for i in 0..mib {
        v.write(f.ino, i << 20, &chunk).unwrap();
    }
    v.fsync(f.ino).unwrap();
    let w = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut n = 0usize;
    for i in 0..mib {
        n += v.read_bytes(f.ino, i << 20, 1 << 20).unwrap().len();
    }
    let r = t.elapsed().as_secs_f64();
    assert_eq!(n as u64, mib << 20);
    let gb = (mib << 20) as f64 / 1e9;
    println!(
        "write {mib} MiB in 1 MiB calls + fsync: {w:.3} s = {:.2} GB/s",
        gb / w
    );
    println!(
        "read  {mib} MiB in 1 MiB calls:         {r:.3} s = {:.2} GB/s",
        gb / r
    );
    drop(v);
    let _ = std::fs::remove_dir_all(&dir);
}
