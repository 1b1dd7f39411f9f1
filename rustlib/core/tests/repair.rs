//! fsck's repair, kind by kind: each damage is made on a real vault (the
//! damaged state written as the vault's snapshot, or log records damaged
//! in both copies), found by its own check, repaired, and a second check
//! after reopening finds nothing; what was recovered is asserted.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::memvault::MemVault;
use crypto_core::fsck::{self, Check, FsckOptions, FsckReport};
use crypto_core::metadata::{Dir, Inode, MetadataState, ROOT_INO};
use crypto_core::storage::memfs::{Fault, FaultOp, MemFs};
use crypto_core::storage::FileSystem;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

struct Built {
    mv: MemVault,
    docs: u64,
    sub: u64,
    big: u64,
    small: u64,
    data: Vec<u8>,
}

fn open_opts(fs: &MemFs, mv: &MemVault, salvage: bool) -> crypto_core::Result<Vault> {
    Vault::open_with(
        Arc::new(fs.clone()),
        Path::new("/v"),
        mv.config.clone(),
        mv.master.clone(),
        EngineOptions {
            log_rotate_bytes: 4096,
            pack_size_limit: 100_000,
            cache_bytes: 0,
            salvage,
            ..Default::default()
        },
    )
}

fn open(b: &Built) -> Vault {
    open_opts(&b.mv.fs, &b.mv, false).unwrap()
}

fn build() -> Built {
    let mv = MemVault::new();
    let v = open_opts(&mv.fs, &mv, false).unwrap();
    let docs = v.mkdir(ROOT, b"docs", 0o755, 1000, 1000).unwrap().ino;
    let sub = v.mkdir(docs, b"sub", 0o700, 1000, 1000).unwrap().ino;
    let big = v.create(docs, b"big.bin", 0o644, 1000, 1000).unwrap().ino;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    v.write(big, 0, &data).unwrap();
    let small = v.create(sub, b"small.txt", 0o600, 1000, 1000).unwrap().ino;
    v.write(small, 0, b"hello").unwrap();
    v.link(small, ROOT, b"hardlink").unwrap();
    v.sync().unwrap();
    drop(v);
    Built {
        mv,
        docs,
        sub,
        big,
        small,
        data,
    }
}

fn check(v: &Vault, repair: bool) -> FsckReport {
    run_fsck(v, repair).unwrap()
}

fn run_fsck(v: &Vault, repair: bool) -> crypto_core::Result<FsckReport> {
    let opts = FsckOptions {
        quick: false,
        repair,
        ..Default::default()
    };
    fsck::check(v, opts, &mut |_, _| {})
}

/// What `fusefs fsck --repair` does: open with salvage, check and repair.
fn try_repair(fs: &MemFs, mv: &MemVault) -> crypto_core::Result<FsckReport> {
    run_fsck(&open_opts(fs, mv, true)?, true)
}

fn checks(fs: &[fsck::Finding]) -> Vec<Check> {
    let mut c: Vec<Check> = fs.iter().map(|f| f.check).collect();
    c.dedup();
    c
}

fn inode(s: &mut MetadataState, ino: u64) -> &mut Inode {
    Arc::make_mut(s.inodes.get_mut(&ino).unwrap())
}

/// Write `damage(state)` as the vault's state (a snapshot), reopen: fsck
/// finds `want` first; repair leaves nothing; a reopened vault checks
/// clean. Returns the vault after the repair, reopened.
fn damage_and_repair(b: &Built, want: Check, damage: impl FnOnce(&mut MetadataState)) -> Vault {
    let v = open(b);
    let mut s = v.state_copy();
    damage(&mut s);
    v.install_repaired_state(s).unwrap();
    drop(v);
    let v = open(b);
    let r = check(&v, false);
    assert!(
        checks(&r.findings).contains(&want),
        "{want:?} not in {:#?}",
        r.findings
    );
    let r = check(&v, true);
    assert!(!r.repairs.is_empty());
    assert!(
        r.remaining.is_empty(),
        "left after repair: {:#?}",
        r.remaining
    );
    drop(v);
    let v = open(b);
    let again = check(&v, false);
    assert!(again.is_clean(), "second run: {:#?}", again.findings);
    assert!(
        check(&v, true).repairs.is_empty(),
        "a second repair changes nothing"
    );
    v
}

fn read_path(v: &Vault, path: &[&[u8]]) -> Vec<u8> {
    let mut ino = ROOT;
    for name in path {
        ino = v.lookup(ino, name).unwrap().ino;
    }
    v.read(ino, 0, 1 << 20).unwrap()
}

#[test]
fn a_wrong_link_count_is_counted_again() {
    let b = build();
    let v = damage_and_repair(&b, Check::LinkCount, |s| inode(s, b.small).links = 5);
    assert_eq!(v.getattr(b.small).unwrap().nlink, 2);
}

/// A state in which an entry names an inode that does not exist cannot be
/// stored (a snapshot that holds one does not load), so the repair of it
/// is tested on the state alone.
#[test]
fn a_dangling_entry_is_dropped() {
    let b = build();
    let v = open(&b);
    let mut s = v.state_copy();
    s.inodes.remove(&b.small);
    let (repaired, changes) = fsck::repair::repair_state(&s, &|_| false, Default::default());
    assert!(
        changes.iter().any(|c| c.contains("which does not exist")),
        "{changes:?}"
    );
    assert!(fsck::state_checks::check_state(&repaired).is_empty());
    assert!(repaired.lookup(ROOT_INO, b"hardlink").is_err());
    v.install_repaired_state(repaired).unwrap();
    drop(v);
    let v = open(&b);
    assert!(check(&v, false).is_clean());
    assert_eq!(read_path(&v, &[b"docs", b"big.bin"]), b.data);
}

#[test]
fn a_lost_subtree_goes_to_lost_and_found() {
    let b = build();
    let v = damage_and_repair(&b, Check::Disconnected, |s| {
        // The root loses its entries: docs/ and everything below is cut off.
        let mut root = Dir::default();
        let _ = &mut root;
        s.dirs.insert(ROOT_INO, root);
    });
    let name = format!("#{}", b.docs);
    assert_eq!(
        read_path(&v, &[b"lost+found", name.as_bytes(), b"big.bin"]),
        b.data
    );
    assert_eq!(
        read_path(&v, &[b"lost+found", name.as_bytes(), b"sub", b"small.txt"]),
        b"hello"
    );
}

/// An inode no entry names (and not open) is reclaimed by the open itself,
/// which reports it; fsck then finds nothing.
#[test]
fn an_orphan_is_reclaimed_by_the_open() {
    let b = build();
    let v = open(&b);
    let mut s = v.state_copy();
    let entries: Vec<(Vec<u8>, u64)> = s.dirs[&b.docs]
        .iter()
        .filter(|(n, _)| *n != b"big.bin")
        .map(|(n, i)| (n.to_vec(), i))
        .collect();
    inode(&mut s, b.big).links = 0;
    let s = MetadataState::from_parts(
        s.segment_size,
        s.inodes.iter().map(|(n, i)| (*n, i.clone())),
        s.dirs
            .iter()
            .map(|(d, dir)| {
                let e = if *d == b.docs {
                    entries.clone()
                } else {
                    dir.iter().map(|(n, i)| (n.to_vec(), i)).collect()
                };
                (*d, e)
            })
            .collect(),
        s.packs.clone(),
        s.next_ino,
        s.scheduler_cycles,
        s.generation_high,
    )
    .unwrap();
    v.install_repaired_state(s).unwrap();
    drop(v);
    let v = open(&b);
    assert_eq!(v.bootstrap_report().orphans_reclaimed, vec![b.big]);
    assert!(check(&v, false).is_clean());
}

#[test]
fn wrong_pack_accounting_is_counted_again() {
    let b = build();
    damage_and_repair(&b, Check::PackAccounting, |s| {
        let p = *s.packs.keys().next().unwrap();
        s.packs.get_mut(&p).unwrap().live += 1000;
    });
}

#[test]
fn a_size_short_of_the_segments_grows_to_keep_the_data() {
    let b = build();
    let v = damage_and_repair(&b, Check::SegmentMap, |s| inode(s, b.big).size = 10);
    assert_eq!(read_path(&v, &[b"docs", b"big.bin"]), b.data);
}

#[test]
fn a_low_generation_counter_is_raised() {
    let b = build();
    damage_and_repair(&b, Check::SegmentMap, |s| s.generation_high = 1);
}

#[test]
fn a_low_next_inode_is_raised() {
    let b = build();
    damage_and_repair(&b, Check::Record, |s| s.next_ino = 2);
}

#[test]
fn a_directory_named_twice_keeps_one_name() {
    let b = build();
    let v = damage_and_repair(&b, Check::Tree, |s| {
        let entries: Vec<(Vec<u8>, u64)> = s.dirs[&ROOT_INO]
            .iter()
            .map(|(n, i)| (n.to_vec(), i))
            .chain([(b"zz-sub-again".to_vec(), b.sub)])
            .collect();
        let rebuilt = MetadataState::from_parts(
            s.segment_size,
            s.inodes.iter().map(|(n, i)| (*n, i.clone())),
            s.dirs
                .iter()
                .map(|(d, dir)| {
                    if *d == ROOT_INO {
                        (*d, entries.clone())
                    } else {
                        (*d, dir.iter().map(|(n, i)| (n.to_vec(), i)).collect())
                    }
                })
                .collect(),
            s.packs.clone(),
            s.next_ino,
            s.scheduler_cycles,
            s.generation_high,
        )
        .unwrap();
        *s = rebuilt;
    });
    assert_eq!(read_path(&v, &[b"docs", b"sub", b"small.txt"]), b"hello");
}

/// The log files after the snapshot, damaged in both copies at the same
/// record: the open refuses (saying which file); with salvage it opens,
/// fsck lists the records lost, repair writes the state that could be
/// read as a snapshot, and the vault then opens without salvage, clean.
#[test]
fn log_records_damaged_in_both_copies_are_salvaged_around() {
    let b = build();
    let v = open(&b);
    v.compact_log().unwrap();
    // Three changes after the snapshot, each synced: one record each at least.
    let c = v.create(ROOT, b"c1", 0o644, 0, 0).unwrap().ino;
    v.sync().unwrap();
    v.write(c, 0, b"second change").unwrap();
    v.sync().unwrap();
    let d = v.create(ROOT, b"c3", 0o644, 0, 0).unwrap().ino;
    v.write(d, 0, b"third").unwrap();
    v.sync().unwrap();
    drop(v);
    let fs = &b.mv.fs;
    let mut logs = fs.list(Path::new("/v/log")).unwrap();
    logs.sort();
    // The first log file with records after the snapshot's: damage its
    // second record in both copies.
    let victim = logs
        .iter()
        .map(|n| Path::new("/v/log").join(n))
        .find(|p| fs.contents(p).unwrap().len() > 200)
        .unwrap();
    let bytes = fs.contents(&victim).unwrap();
    // Format 2: an 80-byte header, 20-byte record headers.
    let first_len = 20 + u32::from_le_bytes(bytes[80..84].try_into().unwrap()) as usize;
    let at = 80 + first_len + 24;
    let copy = Path::new("/v/mirror/log").join(victim.file_name().unwrap());
    for p in [&victim, &copy] {
        fs.poke(p, |b| b[at] ^= 0x01);
    }
    let e = open_opts(fs, &b.mv, false)
        .err()
        .expect("the open must refuse");
    assert!(
        e.to_string()
            .contains(victim.file_name().unwrap().to_str().unwrap()),
        "{e}"
    );
    let v = open_opts(fs, &b.mv, true).unwrap();
    let r = check(&v, true);
    assert!(
        checks(&r.findings).contains(&Check::LostRecords),
        "{:#?}",
        r.findings
    );
    assert!(r.remaining.is_empty(), "{:#?}", r.remaining);
    drop(v);
    let v = open(&b);
    assert!(check(&v, false).is_clean());
    // What came before the damage is there.
    assert_eq!(read_path(&v, &[b"docs", b"big.bin"]), b.data);
    assert_eq!(read_path(&v, &[b"hardlink"]), b"hello");
}

/// Killed at any write of a repair, the vault opens (with salvage, as the
/// repair did) and a repair run again finishes; then it is clean.
#[test]
fn a_repair_killed_at_any_write_finishes_when_run_again() {
    let b = needs_repair();
    let probe = b.mv.fs.after_crash(0);
    let writes_before = probe.writes();
    try_repair(&probe, &b.mv).unwrap();
    let total = probe.writes() - writes_before;
    assert!(total > 3, "{total}");
    for nth in 1..=total {
        let fs = b.mv.fs.after_crash(0);
        fs.set_fault(Some(Fault::Crash {
            nth: fs.writes() + nth,
        }));
        let _ = try_repair(&fs, &b.mv);
        finishes(
            &b,
            &fs.after_crash(0),
            &format!("stopped after write {nth}"),
        );
    }
}

/// A vault whose state needs repair (a lost subtree, a wrong link count).
fn needs_repair() -> Built {
    let b = build();
    let v = open(&b);
    let mut s = v.state_copy();
    inode(&mut s, b.small).links = 7;
    s.dirs.insert(ROOT_INO, Dir::default());
    v.install_repaired_state(s).unwrap();
    drop(v);
    b
}

/// After a repair that failed or stopped: the vault opens (with salvage,
/// as repair does), a repair run again leaves nothing, and without
/// salvage it then checks clean with everything in /lost+found.
fn finishes(b: &Built, fs: &MemFs, what: &str) {
    let v = open_opts(fs, &b.mv, true).unwrap_or_else(|e| panic!("{what}: {e}"));
    let r = check(&v, true);
    assert!(r.remaining.is_empty(), "{what}: {:#?}", r.remaining);
    drop(v);
    let v = open_opts(fs, &b.mv, false).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(check(&v, false).is_clean(), "{what}");
    let name = format!("#{}", b.docs);
    assert_eq!(
        read_path(&v, &[b"lost+found", name.as_bytes(), b"big.bin"]),
        b.data,
        "{what}"
    );
}

/// The machine stops in place of each sync of a repair; EIO and ENOSPC at
/// each write and each sync: the repair fails with one error or finishes,
/// and run again it finishes.
#[test]
fn a_repair_stopped_at_any_sync_or_failing_any_write_finishes_when_run_again() {
    let b = needs_repair();
    let probe = b.mv.fs.after_crash(0);
    let (w0, s0) = (probe.writes(), probe.syncs());
    try_repair(&probe, &b.mv).unwrap();
    let (writes, syncs) = (probe.writes() - w0, probe.syncs() - s0);
    assert!(writes > 3 && syncs > 3, "{writes} {syncs}");
    let mut failed = 0;
    for nth in 1..=syncs {
        let fs = b.mv.fs.after_crash(0);
        fs.set_fault(Some(Fault::CrashAtSync {
            nth: fs.syncs() + nth,
        }));
        let _ = try_repair(&fs, &b.mv);
        finishes(&b, &fs.after_crash(0), &format!("stopped at sync {nth}"));
    }
    for (op, count) in [(FaultOp::Write, writes), (FaultOp::Sync, syncs)] {
        for errno in [5, 28] {
            for nth in 1..=count {
                let fs = b.mv.fs.after_crash(0);
                let base = if op == FaultOp::Write {
                    fs.writes()
                } else {
                    fs.syncs()
                };
                fs.set_fault(Some(Fault::Error {
                    op,
                    nth: base + nth,
                    errno,
                }));
                let what = format!("{op:?} {nth} failing with errno {errno}");
                if let Err(e) = try_repair(&fs, &b.mv) {
                    failed += 1;
                    assert!(!e.to_string().contains('\n'), "{what}: {e}");
                }
                fs.set_fault(None);
                finishes(&b, &fs.after_crash(0), &what);
            }
        }
    }
    assert!(failed > 0, "no injected fault reached the caller");
}

/// An interrupted check of every frame resumes where its last
/// DecryptCheckpoint says it got (FORMAT.md §9.2), keeping what it had
/// found, and a finished one is not resumed again.
#[test]
fn an_interrupted_frame_check_resumes_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let options = crypto_core::vault::config::VaultOptions {
        segment_size: 16384,
        argon2: crypto_core::types::Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        ..Default::default()
    };
    let v = Vault::create_vault(&dir, b"pw", &options, EngineOptions::default()).unwrap();
    let f = v.create(ROOT, b"big", 0o644, 0, 0).unwrap().ino;
    v.write(f, 0, &vec![7u8; 3000 * 16384]).unwrap();
    v.close().unwrap();
    // Damage one frame early in the order (the first segment).
    let pack = std::fs::read_dir(dir.join("packs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[64 + 100] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    let full = |v: &Vault| {
        let opts = FsckOptions {
            checkpoint_every: Some(std::time::Duration::ZERO),
            ..Default::default()
        };
        fsck::check(v, opts, &mut |_, _| {}).unwrap()
    };
    // Interrupted (a panic in the progress callback, as a kill would stop it)
    // after a few rounds of 512 frames, each recorded.
    let v = Vault::open_vault(&dir, b"pw", EngineOptions::default()).unwrap();
    let mut calls = 0;
    let opts = FsckOptions {
        checkpoint_every: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fsck::check(&v, opts, &mut |_, _| {
            calls += 1;
            assert!(calls < 4, "interrupted");
        })
    }));
    assert!(stopped.is_err());
    drop(v);
    let v = Vault::open_vault(&dir, b"pw", EngineOptions::default()).unwrap();
    let resumed = full(&v);
    assert_eq!(
        resumed.frames_resumed,
        3 * 512,
        "after the three rounds recorded"
    );
    assert_eq!(resumed.frames_verified, 3000);
    assert_eq!(resumed.findings.len(), 1, "{:?}", resumed.findings);
    assert!(
        resumed.findings[0].detail.contains("segment 0"),
        "{:?}",
        resumed.findings
    );
    v.close().unwrap();
    // Finished: the next check starts afresh.
    let v = Vault::open_vault(&dir, b"pw", EngineOptions::default()).unwrap();
    let again = full(&v);
    assert_eq!((again.frames_resumed, again.findings.len()), (0, 1));
}
