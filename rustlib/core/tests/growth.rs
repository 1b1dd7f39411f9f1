//! Bounded growth: whatever the pattern of sessions, once one session has
//! been idle long enough to compact, the vault holds at most a tenth more
//! than its live data plus one pack and a small constant, and the log files
//! earlier sessions left are folded into a snapshot.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::memvault::MemVault;
use crypto_core::fsck::{self, FsckOptions};
use crypto_core::scheduler::policy::HybridCompactionPolicy;
use crypto_core::storage::memfs::MemFs;
use crypto_core::storage::FileSystem;
use crypto_core::vault::config::VaultConfig;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

const PACK: u64 = 64 << 10;

fn open(fs: &MemFs, config: &VaultConfig, master: &crypto_core::crypto::keys::SecretKey) -> Vault {
    Vault::open_with(
        Arc::new(fs.clone()),
        Path::new("/v"),
        config.clone(),
        master.clone(),
        EngineOptions {
            log_rotate_bytes: 1 << 20,
            pack_size_limit: PACK,
            cache_bytes: 0,
            ..Default::default()
        },
    )
    .unwrap()
}

fn bytes_in(fs: &MemFs, dir: &str) -> (u64, usize) {
    let names = fs.list(Path::new(dir)).unwrap_or_default();
    let total = names
        .iter()
        .map(|n| {
            fs.contents(&Path::new(dir).join(n))
                .map_or(0, |c| c.len() as u64)
        })
        .sum();
    (total, names.len())
}

#[test]
fn short_sessions_then_one_idle_one_leave_a_vault_near_its_live_size() {
    let MemVault { fs, config, master } = MemVault::new();
    // 40 short sessions (no compaction: each shorter than any cycle), each
    // rewriting three files of 40 KiB and leaving its log file and pack.
    for session in 0..40u32 {
        let v = open(&fs, &config, &master);
        for name in [&b"a"[..], b"b", b"c"] {
            let ino = match v.lookup(ROOT, name) {
                Ok(a) => a.ino,
                Err(_) => v.create(ROOT, name, 0o644, 0, 0).unwrap().ino,
            };
            let data: Vec<u8> = (0..40_960u32).map(|i| (i ^ session) as u8).collect();
            v.write(ino, 0, &data).unwrap();
        }
        v.sync().unwrap();
    }
    let (packs_before, _) = bytes_in(&fs, "/v/packs");
    let (_, logs_before) = bytes_in(&fs, "/v/log");
    let v = open(&fs, &config, &master);
    let policy = HybridCompactionPolicy::default();
    let mut stats = v.compaction_stats(policy.since_last_cycle());
    let live = stats.live_bytes;
    assert!(
        packs_before > 20 * live,
        "{packs_before} bytes of packs for {live} live"
    );
    assert!(logs_before >= 40, "{logs_before} log files");
    // Busy, the session leaves the dead space (within the usual limits)...
    let busy = policy.should_compact(&stats);
    assert!(!busy.packs, "{busy:?}");
    // ...and once idle, the policy asks for both, and the cycle meets the bound.
    stats.idle = Duration::from_secs(20);
    let action = policy.should_compact(&stats);
    assert!(action.log && action.packs, "{action:?}");
    v.run_compaction(action, policy.pack_ratio(&stats, &v))
        .unwrap();
    let (packs_after, _) = bytes_in(&fs, "/v/packs");
    let (_, logs_after) = bytes_in(&fs, "/v/log");
    let bound = live + live / 10 + PACK + (16 << 10);
    assert!(
        packs_after <= bound,
        "{packs_after} bytes of packs > {bound} ({live} live)"
    );
    assert!(logs_after <= 2, "{logs_after} log files after the cycle");
    assert!(fsck::check(&v, FsckOptions::default(), &mut |_, _| {})
        .unwrap()
        .is_clean());
}
