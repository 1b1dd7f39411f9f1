//! `VaultSession` on the fault-injecting MemFs: the scheduler starts once
//! and stops with its last error, and close stops it, syncs, refuses later
//! calls and lets the vault go.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crypto_core::crypto::keys::SecretKey;
use crypto_core::scheduler::{VaultClosed, VaultSession};
use crypto_core::storage::memfs::{Fault, FaultOp, MemFs};
use crypto_core::types::Argon2Params;
use crypto_core::vault::config::{VaultConfig, VaultOptions};
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

const TICK: Duration = Duration::from_millis(5);
const NEVER: Duration = Duration::from_secs(3600);

struct Fixture {
    fs: MemFs,
    config: VaultConfig,
    master: SecretKey,
}

impl Fixture {
    fn new() -> Self {
        let opts = VaultOptions {
            segment_size: 16384,
            argon2: Argon2Params {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            ..Default::default()
        };
        let (config, master) = VaultConfig::generate(b"pw", &opts).unwrap();
        Fixture {
            fs: MemFs::new(),
            config,
            master,
        }
    }

    fn open_on(&self, fs: &MemFs) -> crypto_core::Result<Vault> {
        Vault::open_with(
            Arc::new(fs.clone()),
            Path::new("/v"),
            self.config.clone(),
            self.master.clone(),
            EngineOptions::default(),
        )
    }

    fn session(&self) -> VaultSession {
        VaultSession::new(self.open_on(&self.fs).unwrap())
    }
}

#[test]
fn compaction_starts_once_and_stops_quietly() {
    let fx = Fixture::new();
    let s = fx.session();
    assert!(!s.compaction_running());
    assert_eq!(s.stop_compaction(), None, "nothing to stop");
    s.start_compaction(TICK, NEVER).unwrap();
    s.start_compaction(Duration::ZERO, Duration::ZERO).unwrap(); // left as it is
    assert!(s.compaction_running());
    let v = s.vault().unwrap();
    let f = v.create(ROOT, b"f", 0o600, 0, 0).unwrap();
    v.write(f.ino, 0, b"data").unwrap();
    std::thread::sleep(4 * TICK);
    assert_eq!(s.stop_compaction(), None);
    assert!(!s.compaction_running());
    assert_eq!(s.stop_compaction(), None);
    s.close().unwrap();
    drop(v);
    common::oracle::assert_fsck_clean(&fx.open_on(&fx.fs).unwrap(), "after the session");
}

#[test]
fn close_stops_the_scheduler_syncs_and_lets_the_vault_go() {
    let fx = Fixture::new();
    let s = fx.session();
    // Flushing left to close: the scheduler would not flush for an hour.
    s.start_compaction(TICK, NEVER).unwrap();
    let v = s.vault().unwrap();
    let f = v.create(ROOT, b"f", 0o600, 0, 0).unwrap();
    v.write(f.ino, 0, b"unsynced until close").unwrap();
    drop(v);
    s.close().unwrap();
    assert!(!s.compaction_running());
    assert!(matches!(s.vault(), Err(VaultClosed)));
    assert_eq!(s.start_compaction(TICK, NEVER), Err(VaultClosed));
    assert!(!s.compaction_running());
    assert_eq!(VaultClosed.errno(), 9);
    assert_eq!(VaultClosed.to_string(), "the vault is closed");
    s.close().unwrap(); // again: nothing to do

    // The vault was let go (its lock with it) and everything was durable.
    fx.fs.crash();
    let rebooted = fx.fs.after_crash(0);
    let v = fx.open_on(&rebooted).unwrap();
    let f = v.lookup(ROOT, b"f").unwrap();
    assert_eq!(v.read(f.ino, 0, 100).unwrap(), b"unsynced until close");
    common::oracle::close_and_check(v, || fx.open_on(&rebooted).unwrap(), "after close");
}

#[test]
fn a_call_in_flight_keeps_the_engine_until_it_ends() {
    let fx = Fixture::new();
    let s = fx.session();
    let in_flight = s.vault().unwrap();
    s.close().unwrap();
    assert!(
        fx.open_on(&fx.fs).is_err(),
        "still held by the call in flight"
    );
    let f = in_flight.create(ROOT, b"late", 0o600, 0, 0).unwrap();
    in_flight.fsync(f.ino).unwrap();
    drop(in_flight);
    let v = fx.open_on(&fx.fs).unwrap();
    assert!(v.lookup(ROOT, b"late").is_ok());
    common::oracle::close_and_check(v, || fx.open_on(&fx.fs).unwrap(), "after the late call");
}

#[test]
fn a_failed_flush_is_reported_by_stop() {
    let fx = Fixture::new();
    let s = fx.session();
    let v = s.vault().unwrap();
    let f = v.create(ROOT, b"f", 0o600, 0, 0).unwrap();
    v.write(f.ino, 0, b"to flush").unwrap();
    let nth = fx.fs.syncs() + 1;
    fx.fs.set_fault(Some(Fault::Error {
        op: FaultOp::Sync,
        nth,
        errno: 28, // ENOSPC
    }));
    s.start_compaction(TICK, TICK).unwrap();
    let t0 = Instant::now();
    while fx.fs.syncs() < nth && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(TICK);
    }
    // The cycle that hit the fault ends before the scheduler stops.
    let error = s.stop_compaction().expect("the failed flush is reported");
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(s.stop_compaction(), None, "reported once");
    drop(v);
    let _ = s.close();
    assert!(matches!(s.vault(), Err(VaultClosed)));
    // Reopened once the disk has room again: healthy, and the flush that
    // failed lost nothing it had acknowledged (it acknowledged nothing).
    fx.fs.set_fault(None);
    let v = fx.open_on(&fx.fs).unwrap();
    common::oracle::close_and_check(v, || fx.open_on(&fx.fs).unwrap(), "after a failed flush");
}
