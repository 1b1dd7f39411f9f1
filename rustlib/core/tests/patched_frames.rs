//! Frames carried as patches (entry 18, `packs::carried`): an fsync of a
//! small write into a bigger segment makes its record carry the write's
//! bytes over the segment's previous frame, not the whole new frame. After
//! a crash that loses the unsynced pack, the next open seals the frame
//! again from its base and the patches, byte for byte what the pack had
//! (a read-only open serves it from memory), and the vault checks clean.

mod common;

use std::path::Path;

use common::memvault::{content, MemVault, SEG};
use common::oracle::{assert_fsck_clean, close_and_check};
use crypto_core::metadata::{AttrChange, SegmentRef};
use crypto_core::packs::pack_file_name;
use crypto_core::storage::memfs::MemFs;
use crypto_core::storage::FileSystem;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

/// The stored bytes of `ino`'s frames (segment index, its bytes), as `fs` holds them.
fn frames(fs: &MemFs, v: &Vault, ino: u64) -> Vec<(u64, SegmentRef, Vec<u8>)> {
    let state = v.state();
    let segments = state.inode(ino).unwrap().segments.clone();
    segments
        .iter()
        .map(|(k, r)| {
            let path = Path::new("/v/packs").join(pack_file_name(r.pack));
            let mut bytes = vec![0u8; r.stored_len as usize];
            let file = fs.open_read(&path).unwrap();
            let n = file.read_at(&mut bytes, r.offset).unwrap_or(0);
            bytes.truncate(n);
            (*k, *r, bytes)
        })
        .collect()
}

fn log_len(fs: &MemFs) -> u64 {
    let mut total = 0;
    for name in fs.list(Path::new("/v/log")).unwrap() {
        let file = fs.open_read(&Path::new("/v/log").join(name)).unwrap();
        // Up to the last non-zero byte: the reserve past the records is zeros.
        let mut bytes = vec![0u8; file.len().unwrap() as usize];
        file.read_at(&mut bytes, 0).unwrap();
        total += bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1) as u64;
    }
    total
}

/// A file of three full segments, durable in its pack; its contents.
fn durable_file(v: &Vault) -> (u64, Vec<u8>) {
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    let data: Vec<u8> = (0..3 * SEG as usize).map(|i| (i % 251) as u8).collect();
    v.write(a, 0, &data).unwrap();
    v.sync().unwrap();
    (a, data)
}

#[test]
fn small_writes_into_big_segments_carry_their_bytes_and_survive_a_lost_pack() {
    let m = MemVault::new();
    let v = m.open();
    let (a, mut want) = durable_file(&v);

    // A patch over a frame durable in its pack, then one over that patch.
    let log_before = log_len(&m.fs);
    v.write(a, 100, b"first patch").unwrap();
    want[100..111].copy_from_slice(b"first patch");
    v.fsync(a).unwrap();
    let grew = log_len(&m.fs) - log_before;
    assert!(
        grew < SEG as u64 / 4,
        "the record carries the write's bytes, not the {SEG}-byte frame: {grew} bytes of log"
    );
    v.write(a, 5000, b"second patch, same segment").unwrap();
    want[5000..5026].copy_from_slice(b"second patch, same segment");
    v.fsync(a).unwrap();
    // Two segments at once, the second partly past the end of the file.
    let edge = 3 * SEG as usize - 10;
    v.write(a, edge as u64, &[0xee; 30]).unwrap();
    want.truncate(edge);
    want.extend_from_slice(&[0xee; 30]);
    v.fsync(a).unwrap();
    // Cut by a truncate; then written past the cut (zeros between).
    let cut = SEG as usize + 7;
    let size = AttrChange {
        size: Some(cut as u64),
        ..Default::default()
    };
    v.setattr(a, size).unwrap();
    want.truncate(cut);
    v.fsync(a).unwrap();
    v.write(a, cut as u64 + 20, b"after a gap").unwrap();
    want.resize(cut + 20, 0);
    want.extend_from_slice(b"after a gap");
    v.fsync(a).unwrap();
    let before_crash = frames(&m.fs, &v, a);
    let fs = m.crash(v);

    // Read-only: the frames are rebuilt in memory; nothing is written.
    let writes = fs.writes();
    let ro = m.open_on_with(
        &fs,
        EngineOptions {
            read_only: true,
            ..Default::default()
        },
    );
    assert_eq!(content(&ro, b"a"), want);
    assert_fsck_clean(&ro, "read-only, patched frames rebuilt in memory");
    ro.close().unwrap();
    assert_eq!(fs.writes(), writes);

    let rw = m.open_on(&fs);
    assert!(rw.bootstrap_report().carried_frames_restored >= 1);
    assert_eq!(content(&rw, b"a"), want);
    // Sealed again byte for byte: the same nonce never seals other bytes.
    assert_eq!(frames(&fs, &rw, a), before_crash);
    close_and_check(rw, || m.open_on(&fs), "after patched frames were restored");
}

#[test]
fn a_patch_chain_across_many_fsyncs_is_rebuilt() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    // Appends of 1 KiB, each fsync'd: each frame a patch over the last.
    let mut want = Vec::new();
    for i in 0..40u8 {
        let chunk = vec![i; 1024];
        v.write(a, want.len() as u64, &chunk).unwrap();
        want.extend_from_slice(&chunk);
        v.fsync(a).unwrap();
    }
    let before_crash = frames(&m.fs, &v, a);
    let fs = m.crash(v);
    let rw = m.open_on(&fs);
    assert_eq!(
        rw.bootstrap_report().carried_frames_restored,
        3,
        "segments 0-2"
    );
    assert_eq!(content(&rw, b"a"), want);
    assert_eq!(frames(&fs, &rw, a), before_crash);
    close_and_check(rw, || m.open_on(&fs), "after a chain of patches");
}

#[test]
fn a_clean_close_leaves_nothing_to_rebuild() {
    let m = MemVault::new();
    let v = m.open();
    let (a, mut want) = durable_file(&v);
    v.write(a, 10, b"patched").unwrap();
    want[10..17].copy_from_slice(b"patched");
    v.fsync(a).unwrap();
    v.close().unwrap();
    let rw = m.open();
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 0);
    assert_eq!(content(&rw, b"a"), want);
    close_and_check(rw, || m.open(), "after a clean close");
}

#[test]
fn a_base_lost_with_its_pack_leaves_the_patched_frame_damaged_not_wrong() {
    let m = MemVault::new();
    let v = m.open();
    let (a, _) = durable_file(&v);
    v.write(a, 10, b"patched").unwrap();
    v.fsync(a).unwrap();
    let base_pack = frames(&m.fs, &v, a)[1].1.pack;
    let fs = m.crash(v);
    // Damage the durable base (segment 0's old frame, in the first pack):
    // the patched frame cannot be sealed again, and is not made up.
    let path = Path::new("/v/packs").join(pack_file_name(base_pack));
    let f = fs.open(&path).unwrap();
    let len = f.len().unwrap();
    f.write_all_at(&vec![0x55; (len - 64) as usize], 64)
        .unwrap();
    drop(f);
    let rw = m.open_on(&fs);
    let ino = rw.lookup(ROOT, b"a").unwrap().ino;
    assert!(rw.read(ino, 0, 100).is_err(), "segment 0 is damaged");
}

#[test]
fn a_patched_frame_cut_from_its_pack_after_a_clean_close_is_sealed_again() {
    // A new file's first small write: a patch with no base. (A patch over
    // a base is not rebuilt after a clean close: the close synced the
    // packs, then punched the base; a pack cut after that is damage.)
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(a, 100, b"patched, no base").unwrap();
    v.fsync(a).unwrap();
    let newest = frames(&m.fs, &v, a)[0].clone();
    v.close().unwrap();
    // The pack loses the frame's last bytes (as an unsynced tail would).
    let path = Path::new("/v/packs").join(pack_file_name(newest.1.pack));
    let f = m.fs.open(&path).unwrap();
    assert_eq!(
        f.len().unwrap(),
        newest.1.offset + newest.1.stored_len as u64
    );
    f.set_len(f.len().unwrap() - 10).unwrap();
    drop(f);
    let rw = m.open();
    assert_eq!(rw.bootstrap_report().carried_frames_restored, 1);
    let mut want = vec![0u8; 100];
    want.extend_from_slice(b"patched, no base");
    assert_eq!(content(&rw, b"a"), want);
    assert_eq!(frames(&m.fs, &rw, a)[0], newest);
    close_and_check(rw, || m.open(), "after the pack lost a patched frame");
}

#[test]
fn a_patch_over_a_synced_patched_frame_survives_its_old_base_being_punched() {
    // g1 (a patch over g0) is carried, then made durable in its pack by a
    // sync, which lets g0 be punched; g2, a patch over g1, is carried and
    // its pack write lost. g2 is rebuilt from g1 as its pack holds it.
    let m = MemVault::new();
    let v = m.open();
    let (a, mut want) = durable_file(&v);
    v.write(a, 10, b"first").unwrap();
    want[10..15].copy_from_slice(b"first");
    v.fsync(a).unwrap();
    v.sync().unwrap();
    v.sync().unwrap();
    v.write(a, 20, b"second").unwrap();
    want[20..26].copy_from_slice(b"second");
    v.fsync(a).unwrap();
    let fs = m.crash(v);
    let rw = m.open_on(&fs);
    assert_eq!(content(&rw, b"a"), want);
    close_and_check(rw, || m.open_on(&fs), "after a patch over a synced patch");
}
