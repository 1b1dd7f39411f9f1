//! Frames carried by the log (`packs::carried`, `vault::carry`): an fsync
//! of a small write syncs the log only, whose record carries the frame; a
//! crash that loses the unsynced pack loses nothing fsync'd: the next open
//! writes the frame back (a read-only open serves it from memory), and the
//! vault checks clean. Larger writes sync the packs as before, and a frame
//! no segment refers to any more is never written back.

mod common;

use common::memvault::{content, MemVault, SEG};
use common::oracle::{assert_fsck_clean, close_and_check};
use crypto_core::storage::FileSystem;
use crypto_core::vault::engine::{EngineOptions, ROOT};

#[test]
fn an_fsync_of_a_small_write_is_one_sync_of_the_log_and_survives_a_lost_pack() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.fsync(a).unwrap();
    v.write(a, 0, &[7u8; 4096]).unwrap();
    let syncs = m.fs.syncs();
    v.fsync(a).unwrap();
    assert_eq!(m.fs.syncs() - syncs, 1, "one sync: the log's");
    v.write(a, 4096, &[8u8; 100]).unwrap();
    v.fsync(a).unwrap();
    let fs = m.crash(v);

    // Read-only: the frames come from the log, and nothing is written.
    let writes = fs.writes();
    let ro = m.open_on_with(
        &fs,
        EngineOptions {
            read_only: true,
            ..Default::default()
        },
    );
    let mut want = vec![7u8; 4096];
    want.extend_from_slice(&[8u8; 100]);
    assert_eq!(content(&ro, b"a"), want);
    assert_fsck_clean(&ro, "read-only, the frame in the log only");
    ro.close().unwrap();
    assert_eq!(fs.writes(), writes);

    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 1);
    assert_eq!(content(&rw, b"a"), want);
    close_and_check(rw, || m.open_on(&fs), "after a lost pack");
}

#[test]
fn a_large_write_syncs_the_packs_and_carries_nothing() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    let big: Vec<u8> = (0..SEG as usize * 40).map(|i| (i % 251) as u8).collect();
    v.write(a, 0, &big).unwrap();
    let syncs = m.fs.syncs();
    v.fsync(a).unwrap();
    assert!(m.fs.syncs() - syncs >= 2, "the packs, then the log");
    let fs = m.crash(v);
    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 0);
    assert_eq!(content(&rw, b"a"), big);
    close_and_check(rw, || m.open_on(&fs), "after a large write");
}

#[test]
fn only_the_frame_a_segment_still_refers_to_is_written_back() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    let b = v.create(ROOT, b"b", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"first").unwrap();
    v.fsync(a).unwrap();
    v.write(a, 0, b"second").unwrap();
    v.fsync(a).unwrap();
    v.write(b, 0, b"gone soon").unwrap();
    v.fsync(b).unwrap();
    v.unlink(ROOT, b"b").unwrap();
    v.fsync(a).unwrap();
    let fs = m.crash(v);
    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 1);
    assert_eq!(content(&rw, b"a"), b"second");
    assert!(rw.lookup(ROOT, b"b").is_err());
    close_and_check(rw, || m.open_on(&fs), "after overwrites");
}

#[test]
fn a_snapshot_makes_carried_frames_durable_in_their_packs() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"carried, then snapshotted").unwrap();
    v.fsync(a).unwrap();
    v.compact_log().unwrap();
    let fs = m.crash(v);
    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 0);
    assert_eq!(content(&rw, b"a"), b"carried, then snapshotted");
    close_and_check(rw, || m.open_on(&fs), "after a snapshot");
}

#[test]
fn a_pack_file_removed_is_damage_not_made_again() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"only the log has me").unwrap();
    v.fsync(a).unwrap();
    let fs = m.crash(v);
    let packs = std::path::Path::new("/v/packs");
    for name in fs.list(packs).unwrap() {
        fs.remove(&packs.join(name)).unwrap();
    }
    // Not something a crash does (a pack's name is durable before its
    // frames): the open goes on, and the loss is fsck's to report.
    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 0);
    let a = rw.lookup(ROOT, b"a").unwrap().ino;
    assert!(rw.read(a, 0, 100).is_err());
    assert!(!fs.exists(&packs.join("0000000000000001.pack")));
}

#[test]
fn a_sync_of_the_whole_vault_syncs_the_packs() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 0, b"synced").unwrap();
    v.fsync(a).unwrap();
    v.sync().unwrap();
    let fs = m.crash(v);
    // The record still carries the frame, but the pack holds it: nothing
    // to write back.
    let rw = m.open_on(&fs);
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 0);
    assert_eq!(content(&rw, b"a"), b"synced");
    close_and_check(rw, || m.open_on(&fs), "after a sync");
}
