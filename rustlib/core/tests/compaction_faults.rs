//! Compaction under storage faults, on the fault-injecting MemFs. A vault
//! several sessions built (log files of each, an older snapshot, packs
//! holding live frames among dead ones, everything fsync'd) is compacted
//! three ways: the log alone, the packs alone, and a whole cycle (what
//! `fusefs compact` and `umount --compact` run). For each:
//!
//! * the machine stops after every write of the compaction (with and without
//!   a torn tail) and instead of every sync: the vault reopens, fsck finds
//!   nothing, every file reads as fsync'd, and a later compaction finishes;
//! * each write and each sync of the compaction fails with EIO or ENOSPC:
//!   the compaction reports it in one line naming the cause, the open vault
//!   either still reads every file as it was or refuses with an error (never
//!   wrong bytes), whatever it acknowledges after is kept, and reopened
//!   (after a clean exit or a crash) it checks clean with nothing lost.
//!
//! Every write and sync of the compaction is a fault point; `FUSEFS_STRESS=1`
//! tries more lengths of torn tails.

mod common;

use std::collections::BTreeMap;

use common::memvault::MemVault;
use common::oracle::assert_fsck_clean;
use crypto_core::storage::memfs::{Fault, FaultOp, MemFs};
use crypto_core::vault::compaction::CompactionAction;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;
/// Packs at least this dead are rewritten.
const RATIO: f64 = 0.3;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options() -> EngineOptions {
    EngineOptions {
        // Small, so each session leaves several log files and packs.
        log_rotate_bytes: 2048,
        pack_size_limit: 60_000,
        cache_bytes: 0,
        ..Default::default()
    }
}

fn open(mv: &MemVault, fs: &MemFs) -> crypto_core::Result<Vault> {
    Vault::open_with(
        std::sync::Arc::new(fs.clone()),
        std::path::Path::new("/v"),
        mv.config.clone(),
        mv.master.clone(),
        options(),
    )
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|k| (k as u8).wrapping_mul(seed | 1).wrapping_add(seed))
        .collect()
}

fn ino_of(v: &Vault, name: &[u8]) -> u64 {
    match v.lookup(ROOT, name) {
        Ok(a) => a.ino,
        Err(_) => v.create(ROOT, name, 0o600, 0, 0).unwrap().ino,
    }
}

/// Write `files` (name, contents) a segment of each in turn, so that every
/// pack holds frames of each: when one file is rewritten, its old packs
/// keep the others' live frames, which a pack compaction must copy.
fn put_interleaved(v: &Vault, m: &mut Model, files: Vec<(Vec<u8>, Vec<u8>)>) {
    let seg = common::memvault::SEG as usize;
    let inos: Vec<u64> = files.iter().map(|(n, _)| ino_of(v, n)).collect();
    let longest = files.iter().map(|(_, d)| d.len()).max().unwrap_or(0);
    for at in (0..longest).step_by(seg) {
        for ((_, data), &ino) in files.iter().zip(&inos) {
            if at < data.len() {
                let end = (at + seg).min(data.len());
                v.write(ino, at as u64, &data[at..end]).unwrap();
            }
        }
    }
    m.extend(files);
}

/// Four sessions, each rewriting a hot file (its old frames die beside the
/// cold files' live ones), adding a cold file and deleting an older one;
/// the second ends with a log compaction (so the one under test replaces
/// a snapshot). Closed cleanly: everything in the model is durable.
fn build(mv: &MemVault) -> Model {
    let mut m = Model::new();
    for session in 0..4u8 {
        let v = open(mv, &mv.fs).unwrap();
        let cold = vec![b'c', b'0' + session];
        put_interleaved(
            &v,
            &mut m,
            vec![
                (b"hot".to_vec(), content(50_000, session)),
                (cold, content(40_000, 100 + session)),
            ],
        );
        if session >= 2 {
            let old = [b'c', b'0' + session - 2];
            v.unlink(ROOT, &old).unwrap();
            m.remove(&old[..]);
        }
        v.fsync(ROOT).unwrap();
        if session == 1 {
            v.compact_log().unwrap();
        }
        v.close().unwrap();
    }
    m
}

/// Every file of the root directory with its contents.
fn view(v: &Vault) -> crypto_core::Result<Model> {
    let mut m = Model::new();
    for e in v.readdir(ROOT, 0, 1000)? {
        let size = v.getattr(e.ino)?.size as usize;
        m.insert(e.name, v.read(e.ino, 0, size + 1)?);
    }
    Ok(m)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Log,
    Packs,
    Cycle,
}

const KINDS: [Kind; 3] = [Kind::Log, Kind::Packs, Kind::Cycle];

/// Run one compaction; Ok(what it did, for the probe's checks).
fn compact(v: &Vault, kind: Kind) -> crypto_core::Result<(usize, usize)> {
    match kind {
        Kind::Log => v.compact_log().map(|r| (r.log_files_deleted, 0)),
        Kind::Packs => v.compact_packs(RATIO).map(|r| (0, r.packs_deleted)),
        Kind::Cycle => v
            .run_compaction(
                CompactionAction {
                    log: true,
                    packs: true,
                },
                RATIO,
            )
            .map(|(p, l)| {
                (
                    l.map_or(0, |l| l.log_files_deleted),
                    p.map_or(0, |p| p.packs_deleted),
                )
            }),
    }
}

/// Torn tails tried after a crash at a write: `FUSEFS_STRESS=1` tries more.
fn torn_lengths() -> &'static [usize] {
    if std::env::var_os("FUSEFS_STRESS").is_some() {
        &[0, 1, 29, 100, 4096, 1 << 20]
    } else {
        &[0, 100]
    }
}

/// The vault `fs` holds after a fault: it opens, checks clean, holds
/// `model` (and nothing else but, perhaps, the file `after` a test wrote
/// past the fault without an acknowledged fsync), and compacts again
/// cleanly, also across a reopen.
fn check_after(mv: &MemVault, fs: &MemFs, model: &Model, kind: Kind, what: &str) {
    let v = open(mv, fs).unwrap_or_else(|e| panic!("{what}: no open: {e}"));
    assert_fsck_clean(&v, what);
    let found = view(&v).unwrap_or_else(|e| panic!("{what}: unreadable: {e}"));
    for (name, data) in model {
        let got = found
            .get(name)
            .unwrap_or_else(|| panic!("{what}: {:?} lost", String::from_utf8_lossy(name)));
        assert!(
            got == data,
            "{what}: {:?} differs",
            String::from_utf8_lossy(name)
        );
    }
    // Nothing else but what the test itself may have added after the fault.
    for name in found.keys() {
        assert!(
            model.contains_key(name) || name == b"after",
            "{what}: {:?} came back",
            String::from_utf8_lossy(name)
        );
    }
    compact(&v, kind).unwrap_or_else(|e| panic!("{what}: the next compaction: {e}"));
    assert_fsck_clean(&v, &format!("{what}, compacted again"));
    assert_eq!(view(&v).unwrap(), found, "{what}, compacted again");
    v.close().unwrap();
    let v = open(mv, fs).unwrap();
    assert_fsck_clean(&v, &format!("{what}, compacted again and reopened"));
    assert_eq!(
        view(&v).unwrap(),
        found,
        "{what}, compacted again and reopened"
    );
}

/// The vault `build` made, and what it holds: every test starts from a
/// copy of it.
struct Setup {
    mv: MemVault,
    model: Model,
}

impl Setup {
    fn new() -> Self {
        let mv = MemVault::new();
        let model = build(&mv);
        Setup { mv, model }
    }

    /// A fresh copy of the built vault (its own fault counters).
    fn copy(&self) -> MemFs {
        self.mv.fs.after_crash(0)
    }

    /// Writes and syncs `kind` makes, checking it does real work.
    fn probe(&self, kind: Kind) -> (u64, u64) {
        let fs = self.copy();
        let v = open(&self.mv, &fs).unwrap();
        assert_eq!(view(&v).unwrap(), self.model, "the built vault");
        let (w, s) = (fs.writes(), fs.syncs());
        let (logs, packs) = compact(&v, kind).unwrap();
        match kind {
            Kind::Log => assert!(logs >= 4, "{kind:?}: {logs} log files deleted"),
            Kind::Packs => assert!(packs >= 2, "{kind:?}: {packs} packs deleted"),
            Kind::Cycle => assert!(logs >= 4 && packs >= 2, "{kind:?}: {logs}, {packs}"),
        }
        let n = (fs.writes() - w, fs.syncs() - s);
        assert!(n.0 >= 4 && n.1 >= 4, "{kind:?}: {n:?}");
        v.close().unwrap();
        check_after(
            &self.mv,
            &fs,
            &self.model,
            kind,
            &format!("{kind:?}, no fault"),
        );
        n
    }
}

#[test]
fn a_crash_at_any_write_or_sync_of_a_compaction_loses_nothing() {
    let setup = Setup::new();
    for kind in KINDS {
        let (writes, syncs) = setup.probe(kind);
        let crashes = (1..=writes)
            .map(|n| (n, false))
            .chain((1..=syncs).map(|n| (n, true)));
        for (n, at_sync) in crashes {
            let fs = setup.copy();
            let v = open(&setup.mv, &fs).unwrap();
            fs.set_fault(Some(if at_sync {
                Fault::CrashAtSync {
                    nth: fs.syncs() + n,
                }
            } else {
                Fault::Crash {
                    nth: fs.writes() + n,
                }
            }));
            let outcome = compact(&v, kind);
            assert!(fs.crashed(), "{kind:?} {n} {at_sync}: no crash point");
            assert!(outcome.is_err(), "{kind:?}: {n} {at_sync}: {outcome:?}");
            drop(v);
            let torn: &[usize] = if at_sync { &[0] } else { torn_lengths() };
            for &torn in torn {
                let what = if at_sync {
                    format!("{kind:?}: crash at sync {n}")
                } else {
                    format!("{kind:?}: crash after write {n}, torn {torn}")
                };
                check_after(&setup.mv, &fs.after_crash(torn), &setup.model, kind, &what);
            }
        }
    }
}

#[test]
fn a_failed_write_or_sync_of_a_compaction_is_reported_and_loses_nothing() {
    let setup = Setup::new();
    let (mut runs, mut reported) = (0, 0);
    for kind in KINDS {
        let (writes, syncs) = setup.probe(kind);
        for errno in [EIO, ENOSPC] {
            let cause = std::io::Error::from_raw_os_error(errno).to_string();
            let cause = &cause[..cause.find(" (os error").unwrap()];
            for (op, count) in [(FaultOp::Write, writes), (FaultOp::Sync, syncs)] {
                for n in 1..=count {
                    let what = format!("{kind:?}: {op:?} {n} fails with {cause}");
                    let fs = setup.copy();
                    let v = open(&setup.mv, &fs).unwrap();
                    let base = match op {
                        FaultOp::Write => fs.writes(),
                        FaultOp::Sync => fs.syncs(),
                    };
                    fs.set_fault(Some(Fault::Error {
                        op,
                        nth: base + n,
                        errno,
                    }));
                    let mut model = setup.model.clone();
                    runs += 1;
                    // Ok: the fault hit a write retried on its own (the log
                    // starts a new file after a clean failure).
                    if let Err(e) = compact(&v, kind) {
                        reported += 1;
                        let line = e.to_string();
                        assert!(
                            line.contains(cause) && !line.contains('\n'),
                            "{what}: reported as {line:?}"
                        );
                    }
                    // Usable, or refusing: never other bytes than the model's.
                    if let Ok(found) = view(&v) {
                        assert_eq!(found, model, "{what}: the open vault reads");
                    }
                    // What it acknowledges now must be kept.
                    let later = v
                        .create(ROOT, b"after", 0o600, 0, 0)
                        .and_then(|a| v.write(a.ino, 0, b"written after the fault"))
                        .and_then(|_| v.fsync(ROOT));
                    if later.is_ok() {
                        model.insert(b"after".to_vec(), b"written after the fault".to_vec());
                    }
                    // The machine stops now, or the process exits cleanly.
                    let crashed = fs.after_crash(0);
                    drop(v);
                    check_after(&setup.mv, &crashed, &model, kind, &format!("{what}, crash"));
                    check_after(&setup.mv, &fs, &model, kind, &format!("{what}, reopen"));
                }
            }
        }
    }
    // Most faults reach the caller; the rest hit a write the engine retried.
    assert!(
        reported * 4 > runs * 3,
        "{reported} of {runs} faults reported"
    );
}
