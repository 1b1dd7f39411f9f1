//! An open that writes nothing (`EngineOptions::read_only`: `fusefs mount
//! --read-only`, fsck of a mounted vault): everything an ordinary open
//! would change on disk (a torn tail cut, an orphan reclaimed, a file
//! mended or restored from its copy, a copy refreshed, a stray pack or a
//! temporary removed, a new log file started) is left as it was, while the
//! vault reads as the ordinary open would show it; every change is refused
//! with EROFS; the lock is shared with other readers, refused to and by a
//! writer, and `beside_writer` reads a vault a writer holds.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::memvault::{cheap_options, MemVault};
use crypto_core::fsck::{check, FsckOptions};
use crypto_core::storage::FileSystem;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

const EROFS: i32 = 30;
const EBUSY: i32 = 16;

fn read_only() -> EngineOptions {
    EngineOptions {
        read_only: true,
        ..Default::default()
    }
}

fn read_all(v: &Vault, name: &[u8]) -> Vec<u8> {
    let ino = v.lookup(ROOT, name).unwrap().ino;
    v.read(ino, 0, 1 << 20).unwrap()
}

#[test]
fn after_a_crash_with_an_orphan_and_a_torn_tail_nothing_is_written() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"durable").unwrap();
    let gone = v.create(ROOT, b"gone", 0o644, 0, 0).unwrap().ino;
    v.write(gone, 0, b"unlinked while open").unwrap();
    v.open(gone).unwrap();
    v.unlink(ROOT, b"gone").unwrap();
    v.sync().unwrap();
    m.fs.crash();
    std::mem::forget(v);
    let fs = m.fs.after_crash(0);
    // Part of a record written, never synced: a torn tail.
    let logs = fs.list(Path::new("/v/log")).unwrap();
    let last = Path::new("/v/log").join(logs.last().unwrap());
    fs.poke(&last, |b| b.extend_from_slice(&[3u8; 21]));

    let before = fs.files();
    let writes = fs.writes();
    let ro = m.open_on_with(&fs, read_only());
    assert_eq!(read_all(&ro, b"a"), b"durable");
    assert!(ro.lookup(ROOT, b"gone").is_err());
    let report = ro.bootstrap_report().clone();
    assert!(report.log.torn_bytes_cut > 0, "{report:?}");
    assert!(report.orphans_reclaimed.is_empty());
    // Every change is refused, and refusing writes nothing either.
    let refused = ro.create(ROOT, b"new", 0o644, 0, 0).unwrap_err();
    assert_eq!(refused.errno(), Some(EROFS));
    assert_eq!(ro.write(a, 0, b"x").unwrap_err().errno(), Some(EROFS));
    assert_eq!(ro.unlink(ROOT, b"a").unwrap_err().errno(), Some(EROFS));
    let clean = check(&ro, FsckOptions::default(), &mut |_, _| {}).unwrap();
    let only_orphan = clean.findings.iter().all(|f| f.ino == Some(gone));
    assert!(only_orphan, "{:?}", clean.findings);
    ro.close().unwrap();
    assert_eq!(fs.writes(), writes);
    assert_eq!(fs.files(), before);

    // The ordinary open then does what the read-only one left undone.
    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().orphans_reclaimed, vec![gone]);
    assert!(rw.bootstrap_report().log.torn_bytes_cut > 0);
    assert_eq!(read_all(&rw, b"a"), b"durable");
    rw.close().unwrap();
    assert_ne!(fs.files(), before);
}

/// Every file under `dir` (relative path → bytes and mtime).
fn tree(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mtime = meta.modified().unwrap();
            if meta.is_dir() {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), (vec![], mtime));
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), (bytes, mtime));
            }
        }
    }
    out
}

fn only_name(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

#[test]
fn on_disk_every_repair_an_open_would_make_is_left_undone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let v = Vault::create_vault(&dir, b"pw", &cheap_options(), EngineOptions::default()).unwrap();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"before the snapshot").unwrap();
    v.compact_log().unwrap();
    let b = v.create(ROOT, b"b", 0o644, 0, 0).unwrap().ino;
    v.write(b, 0, b"in the first log file").unwrap();
    v.close().unwrap();
    let v = Vault::open_vault(&dir, b"pw", EngineOptions::default()).unwrap();
    let c = v.create(ROOT, b"c", 0o644, 0, 0).unwrap().ino;
    v.write(c, 0, b"in the last log file").unwrap();
    v.close().unwrap();

    let logs = only_name(&dir.join("log"), ".ulog");
    assert!(logs.len() >= 2, "{logs:?}");
    // Damage an open mends: a record of the first file flipped (its copy
    // is whole), the snapshot's copy gone, a torn tail on the last file, a
    // stray pack, an interrupted snapshot, a log file only its copy holds.
    let first = &logs[0];
    let mut bytes = std::fs::read(first).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    std::fs::write(first, bytes).unwrap();
    for s in only_name(&dir.join("mirror/snap"), ".snap") {
        std::fs::remove_file(s).unwrap();
    }
    let last = logs.last().unwrap();
    let mut tail = std::fs::read(last).unwrap();
    tail.extend_from_slice(&[0x55; 37]);
    std::fs::write(last, tail).unwrap();
    std::fs::write(dir.join("packs/00000000000000ff.pack"), b"stray").unwrap();
    std::fs::write(dir.join("snap/00000000000000ff.snap.tmp"), b"half").unwrap();
    let middle = &logs[logs.len() - 2];
    if middle != first {
        std::fs::remove_file(middle).unwrap();
    }

    let before = tree(&dir);
    let ro = Vault::open_vault(&dir, b"pw", read_only()).unwrap();
    assert_eq!(read_all(&ro, b"a"), b"before the snapshot");
    assert_eq!(read_all(&ro, b"b"), b"in the first log file");
    assert_eq!(read_all(&ro, b"c"), b"in the last log file");
    let report = ro.bootstrap_report().clone();
    assert!(!report.log.mended_from_copy.is_empty(), "{report:?}");
    assert_eq!(report.log.torn_bytes_cut, 37);
    assert!(report.stray_packs_removed.is_empty());
    assert_eq!(report.removed_temporaries, 0);
    let e = ro.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap_err();
    assert_eq!(e.errno(), Some(EROFS));
    ro.close().unwrap();
    assert_eq!(tree(&dir), before, "a read-only open changed the vault");

    let rw = Vault::open_vault(&dir, b"pw", EngineOptions::default()).unwrap();
    assert_eq!(rw.bootstrap_report().log.torn_bytes_cut, 37);
    assert_eq!(rw.bootstrap_report().stray_packs_removed, vec![0xff]);
    rw.close().unwrap();
    assert_ne!(tree(&dir), before);
}

#[test]
fn readers_share_the_lock_a_writer_excludes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let v = Vault::create_vault(&dir, b"pw", &cheap_options(), EngineOptions::default()).unwrap();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"synced").unwrap();
    v.sync().unwrap();

    // A writer holds it: a reader is refused, unless it reads beside it.
    let e = Vault::open_vault(&dir, b"pw", read_only()).err().unwrap();
    assert_eq!(e.errno_at_open(), Some(EBUSY));
    let beside = EngineOptions {
        beside_writer: true,
        ..read_only()
    };
    let r = Vault::open_vault(&dir, b"pw", beside.clone()).unwrap();
    assert_eq!(read_all(&r, b"a"), b"synced");
    drop(r);
    v.close().unwrap();

    // Readers share it; a writer waits for them all.
    let r1 = Vault::open_vault(&dir, b"pw", read_only()).unwrap();
    let r2 = Vault::open_vault(&dir, b"pw", read_only()).unwrap();
    let e = Vault::open_vault(&dir, b"pw", EngineOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.errno_at_open(), Some(EBUSY));
    assert!(e.to_string().contains("already open"), "{e}");
    drop(r1);
    assert!(Vault::open_vault(&dir, b"pw", EngineOptions::default()).is_err());
    drop(r2);
    Vault::open_vault(&dir, b"pw", EngineOptions::default())
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn a_vault_without_a_lock_file_or_log_opens_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let v = Vault::create_vault(&dir, b"pw", &cheap_options(), EngineOptions::default()).unwrap();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"kept").unwrap();
    v.compact_log().unwrap();
    v.close().unwrap();
    // As copied by a tool that keeps only what it knows (e.g. to read-only media).
    std::fs::remove_file(dir.join("fusefs.lock")).unwrap();
    let before = tree(&dir);
    let ro = Vault::open_vault(&dir, b"pw", read_only()).unwrap();
    assert_eq!(read_all(&ro, b"a"), b"kept");
    ro.close().unwrap();
    assert_eq!(tree(&dir), before);
}
