//! Pack files: round trips of interleaved files, compression, rotation,
//! tampering, missing packs, frame copies, reopen, crashes at every write
//! with torn tails, and I/O errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto_core::crypto::aead::AeadKey;
use crypto_core::crypto::keys::SecretKey;
use crypto_core::crypto::vault_keys::{purpose, subkey};
use crypto_core::metadata::SegmentRef;
use crypto_core::packs::{
    pack_file_name, PackOptions, PackStore, PACK_FRAME_OVERHEAD as FRAME_OVERHEAD, PACK_HEADER_LEN,
};
use crypto_core::storage::memfs::{Fault, FaultOp, MemFs};
use crypto_core::storage::FileSystem;
use crypto_core::types::Cipher;
use crypto_core::{Error, ErrorClass};

const VAULT: [u8; 16] = [7; 16];
const SEG: usize = 64 << 10;

fn dir() -> &'static Path {
    Path::new("/vault/packs")
}

fn pack_path(n: u64) -> PathBuf {
    dir().join(pack_file_name(n))
}

fn master() -> SecretKey {
    SecretKey::from_bytes([3; 32])
}

fn file_id(f: u64) -> [u8; 16] {
    let mut id = [0xf0; 16];
    id[..8].copy_from_slice(&f.to_le_bytes());
    id
}

fn file_key(f: u64) -> AeadKey {
    AeadKey::new(
        Cipher::Aes256Gcm,
        &subkey(&master(), purpose::FILE, &file_id(f)),
    )
}

fn open(fs: &MemFs, opts: PackOptions) -> PackStore {
    PackStore::open(Arc::new(fs.clone()), dir(), VAULT, Cipher::Aes256Gcm, opts).unwrap()
}

fn opts(size_limit: u64, compression: Option<i32>) -> PackOptions {
    PackOptions {
        size_limit,
        compression,
        ..Default::default() // frames of format 1 (tests/packs_v2.rs: format 2)
    }
}

/// Deterministic bytes: incompressible noise or compressible text.
fn data(seed: u64, len: usize, compressible: bool) -> Vec<u8> {
    if compressible {
        (0..len)
            .map(|i| b"the quick brown fox "[(i + seed as usize) % 20])
            .collect()
    } else {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }
}

fn io_errno(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// (file, index, generation, plaintext, ref)
type Stored = (u64, u64, u64, Vec<u8>, SegmentRef);

fn check_all(store: &PackStore, stored: &[Stored]) {
    for (f, index, _, plain, r) in stored {
        let got = store
            .read_segment(&file_key(*f), &file_id(*f), *index, r)
            .unwrap_or_else(|e| panic!("file {f} segment {index} at {r:?}: {e}"));
        assert_eq!(&got, plain, "file {f} segment {index}");
    }
}

#[test]
fn interleaved_files_round_trip_all_sizes_with_and_without_compression() {
    for compression in [None, Some(3)] {
        let fs = MemFs::new();
        let store = open(&fs, opts(1 << 20, compression));
        let mut stored: Vec<Stored> = Vec::new();
        let sizes = [1usize, 2, 100, 4096, SEG - 1, SEG, 1 << 20];
        for round in 0..6u64 {
            for f in 0..5u64 {
                let segs: Vec<(u64, u64, Vec<u8>)> = (0..3u64)
                    .map(|k| {
                        let index = round * 3 + k;
                        let len = sizes[((f + index) % sizes.len() as u64) as usize];
                        (
                            index,
                            round + 1,
                            data(f * 1000 + index, len, (f + k) % 2 == 0),
                        )
                    })
                    .collect();
                let args: Vec<(u64, u64, &[u8])> = segs
                    .iter()
                    .map(|(i, g, p)| (*i, *g, p.as_slice()))
                    .collect();
                let refs = store
                    .write_segments(&file_key(f), &file_id(f), &args)
                    .unwrap();
                assert_eq!(refs.len(), segs.len());
                for ((i, g, p), r) in segs.into_iter().zip(refs) {
                    assert_eq!(r.plain_len as usize, p.len());
                    assert_eq!(r.generation, g);
                    if compression.is_none() {
                        assert_eq!(r.stored_len as usize, p.len() + FRAME_OVERHEAD);
                    }
                    stored.push((f, i, g, p, r));
                }
            }
        }
        store.sync().unwrap();
        check_all(&store, &stored);
        // Compression: compressible segments shrank, noise never grew.
        let shrunk = stored
            .iter()
            .filter(|s| (s.4.stored_len as usize) < s.3.len())
            .count();
        if compression.is_some() {
            assert!(shrunk > 10, "{shrunk}");
            assert!(stored
                .iter()
                .all(|s| s.4.stored_len as usize <= s.3.len() + FRAME_OVERHEAD));
        } else {
            assert_eq!(shrunk, 0);
        }
        // Batch reads agree.
        let f0: Vec<(u64, SegmentRef)> = stored
            .iter()
            .filter(|s| s.0 == 0)
            .map(|s| (s.1, s.4))
            .collect();
        let got = store.read_segments(&file_key(0), &file_id(0), &f0).unwrap();
        for ((_, _, _, p, _), g) in stored.iter().filter(|s| s.0 == 0).zip(got) {
            assert_eq!(p, &g);
        }
        // And a fresh store reads everything too.
        drop(store);
        check_all(&open(&fs, PackOptions::default()), &stored);
    }
}

#[test]
fn nothing_in_a_pack_is_in_clear() {
    let fs = MemFs::new();
    let store = open(&fs, opts(1 << 20, Some(3)));
    let text = b"SECRET-PLAINTEXT ".repeat(100);
    store
        .write_segments(&file_key(1), &file_id(1), &[(0, 1, &text[..])])
        .unwrap();
    store.sync().unwrap();
    let bytes = fs.contents(&pack_path(1)).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"SECRET"));
    assert!(!bytes.windows(16).any(|w| w == file_id(1)));
}

#[test]
fn concurrent_writers_share_packs() {
    let fs = MemFs::new();
    let store = Arc::new(open(&fs, opts(300 << 10, None)));
    let stored: Vec<Stored> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u64)
            .map(|f| {
                let store = store.clone();
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..20u64 {
                        let p = data(f * 100 + i, 10_000 + (i as usize * 997), false);
                        let r = store
                            .write_segments(&file_key(f), &file_id(f), &[(i, 1, &p[..])])
                            .unwrap()[0];
                        store.sync().unwrap();
                        out.push((f, i, 1, p, r));
                    }
                    out
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    check_all(&store, &stored);
    // No two frames overlap.
    let mut spans: Vec<(u64, u64, u64)> = stored
        .iter()
        .map(|s| (s.4.pack, s.4.offset, s.4.offset + s.4.stored_len as u64))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].0 != w[1].0 || w[0].2 <= w[1].1, "{w:?}");
    }
}

#[test]
fn rotation_at_the_size_limit_and_frames_never_span_packs() {
    let fs = MemFs::new();
    let frame = 1000 + FRAME_OVERHEAD as u64;
    let limit = PACK_HEADER_LEN as u64 + 3 * frame + 10;
    let store = open(&fs, opts(limit, None));
    let mut stored: Vec<Stored> = Vec::new();
    for call in 0..7u64 {
        let segs: Vec<Vec<u8>> = (0..call + 1)
            .map(|k| data(call * 10 + k, 1000, false))
            .collect();
        let args: Vec<(u64, u64, &[u8])> = segs
            .iter()
            .enumerate()
            .map(|(k, p)| (call * 10 + k as u64, 1, p.as_slice()))
            .collect();
        let refs = store
            .write_segments(&file_key(9), &file_id(9), &args)
            .unwrap();
        for ((i, g, _), (p, r)) in args.iter().zip(segs.iter().zip(refs)) {
            stored.push((9, *i, *g, p.clone(), r));
        }
    }
    // A frame larger than the limit goes alone into a new pack.
    let big = data(77, 5000, false);
    let r = store
        .write_segments(&file_key(9), &file_id(9), &[(500, 1, &big[..])])
        .unwrap()[0];
    assert_eq!(r.offset, PACK_HEADER_LEN as u64);
    stored.push((9, 500, 1, big, r));
    let after = data(78, 1000, false);
    let r2 = store
        .write_segments(&file_key(9), &file_id(9), &[(501, 1, &after[..])])
        .unwrap()[0];
    assert_eq!((r2.pack, r2.offset), (r.pack + 1, PACK_HEADER_LEN as u64));
    stored.push((9, 501, 1, after, r2));
    store.sync().unwrap();

    let total: usize = (1..=7).sum();
    let packs = store.pack_numbers().unwrap();
    assert_eq!(packs.len(), total.div_ceil(3) + 2, "{packs:?}");
    assert_eq!(packs, (1..=packs.len() as u64).collect::<Vec<_>>());
    for &n in &packs {
        let len = store.pack_len(n).unwrap();
        let frames: Vec<&Stored> = stored.iter().filter(|s| s.4.pack == n).collect();
        assert!(!frames.is_empty());
        assert!(len <= limit || frames.len() == 1, "pack {n}: {len}");
        // Frames tile the pack exactly after its header.
        let mut at = PACK_HEADER_LEN as u64;
        let mut spans: Vec<_> = frames
            .iter()
            .map(|s| (s.4.offset, s.4.stored_len))
            .collect();
        spans.sort();
        for (off, l) in spans {
            assert_eq!(off, at);
            at += l as u64;
        }
        assert_eq!(at, len);
    }
    check_all(&store, &stored);
}

#[test]
fn a_frame_opens_only_as_its_own_file_index_generation_length_and_key() {
    let fs = MemFs::new();
    let store = open(&fs, PackOptions::default());
    let p = data(1, 3000, false);
    let r = store
        .write_segments(&file_key(1), &file_id(1), &[(5, 2, &p[..])])
        .unwrap()[0];
    // Another frame of the same file, to try substitution.
    let r_other = store
        .write_segments(&file_key(1), &file_id(1), &[(6, 2, &p[..])])
        .unwrap()[0];
    let r_old = store
        .write_segments(&file_key(1), &file_id(1), &[(5, 1, &p[..])])
        .unwrap()[0];
    store.sync().unwrap();
    assert_eq!(
        store
            .read_segment(&file_key(1), &file_id(1), 5, &r)
            .unwrap(),
        p
    );
    let fails = |key: &AeadKey, fid: [u8; 16], index: u64, r: SegmentRef| {
        let e = store.read_segment(key, &fid, index, &r).unwrap_err();
        assert_eq!(e.class(), ErrorClass::Integrity, "{e}");
        match &e {
            Error::PackCorrupt { pack, offset, .. } => {
                assert_eq!((*pack, *offset), (r.pack, r.offset));
                let msg = e.to_string();
                assert!(msg.contains("0000000000000001.pack"), "{msg}");
                assert!(msg.contains(&format!("offset {}", r.offset)), "{msg}");
            }
            other => panic!("{other}"),
        }
    };
    fails(&file_key(1), file_id(2), 5, r); // another file's id
    fails(&file_key(2), file_id(1), 5, r); // another key
    fails(&file_key(1), file_id(1), 6, r); // another index
    fails(
        &file_key(1),
        file_id(1),
        5,
        SegmentRef { generation: 1, ..r },
    );
    fails(
        &file_key(1),
        file_id(1),
        5,
        SegmentRef { generation: 3, ..r },
    );
    fails(
        &file_key(1),
        file_id(1),
        5,
        SegmentRef {
            plain_len: 2999,
            ..r
        },
    );
    fails(
        &file_key(1),
        file_id(1),
        5,
        SegmentRef {
            plain_len: 3001,
            ..r
        },
    );
    // Moved: another segment's frame in this position.
    fails(
        &file_key(1),
        file_id(1),
        5,
        SegmentRef {
            offset: r_other.offset,
            ..r
        },
    );
    // Replayed: the older generation's frame where generation 2 is expected.
    fails(
        &file_key(1),
        file_id(1),
        5,
        SegmentRef {
            offset: r_old.offset,
            ..r
        },
    );
    let e = store
        .read_segment(&file_key(1), &file_id(1), 5, &SegmentRef { offset: 3, ..r })
        .unwrap_err();
    assert!(matches!(e, Error::InvalidParams(_)), "{e}");
}

#[test]
fn a_flipped_bit_anywhere_in_a_frame_fails() {
    for compression in [None, Some(3)] {
        let fs = MemFs::new();
        let store = open(&fs, opts(1 << 20, compression));
        let before = data(1, 50, false);
        let after = data(3, 50, false);
        let p = data(2, 200, compression.is_some());
        let refs = store
            .write_segments(
                &file_key(1),
                &file_id(1),
                &[(0, 1, &before[..]), (1, 1, &p[..]), (2, 1, &after[..])],
            )
            .unwrap();
        store.sync().unwrap();
        let r = refs[1];
        for at in r.offset..r.offset + r.stored_len as u64 {
            for bit in [0x01u8, 0x80] {
                fs.poke(&pack_path(1), |b| b[at as usize] ^= bit);
                let e = store
                    .read_segment(&file_key(1), &file_id(1), 1, &r)
                    .unwrap_err();
                assert!(matches!(e, Error::PackCorrupt { .. }), "byte {at}: {e}");
                fs.poke(&pack_path(1), |b| b[at as usize] ^= bit);
            }
        }
        // Neighbours are untouched, and the frame reads again once restored.
        assert_eq!(
            store
                .read_segment(&file_key(1), &file_id(1), 1, &r)
                .unwrap(),
            p
        );
        assert_eq!(
            store
                .read_segment(&file_key(1), &file_id(1), 0, &refs[0])
                .unwrap(),
            before
        );
        // A truncated pack: the frame is cut short.
        fs.poke(&pack_path(1), |b| {
            b.truncate((refs[2].offset + 10) as usize)
        });
        let e = store
            .read_segment(&file_key(1), &file_id(1), 2, &refs[2])
            .unwrap_err();
        assert!(matches!(e, Error::PackCorrupt { .. }), "{e}");
    }
}

#[test]
fn a_damaged_pack_header_or_a_foreign_pack_is_reported() {
    let fs = MemFs::new();
    let store = open(&fs, PackOptions::default());
    let p = data(1, 100, false);
    let r = store
        .write_segments(&file_key(1), &file_id(1), &[(0, 1, &p[..])])
        .unwrap()[0];
    store.sync().unwrap();
    drop(store);
    fs.poke(&pack_path(1), |b| b[20] ^= 1); // vault id
    let e = open(&fs, PackOptions::default())
        .read_segment(&file_key(1), &file_id(1), 0, &r)
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::PackCorrupt {
                pack: 1,
                offset: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("another vault"), "{e}");
}

#[test]
fn a_missing_pack_is_a_clear_error() {
    let fs = MemFs::new();
    let store = open(&fs, opts(PACK_HEADER_LEN as u64 + 200, None));
    let a = data(1, 100, false);
    let refs = store
        .write_segments(&file_key(1), &file_id(1), &[(0, 1, &a[..]), (1, 1, &a[..])])
        .unwrap();
    assert_eq!((refs[0].pack, refs[1].pack), (1, 2));
    store.sync().unwrap();
    // The active pack cannot be deleted.
    assert!(matches!(store.delete_pack(2), Err(Error::InvalidParams(_))));
    store.delete_pack(1).unwrap();
    assert_eq!(store.pack_numbers().unwrap(), vec![2]);
    assert!(
        !fs.after_crash(0).exists(&pack_path(1)),
        "deletion is durable"
    );
    let e = store
        .read_segment(&file_key(1), &file_id(1), 0, &refs[0])
        .unwrap_err();
    assert!(matches!(e, Error::PackMissing { pack: 1 }), "{e}");
    assert_eq!(e.class(), ErrorClass::Integrity);
    assert!(
        e.to_string().contains("0000000000000001.pack is missing"),
        "{e}"
    );
    assert!(matches!(
        store.delete_pack(1),
        Err(Error::PackMissing { pack: 1 })
    ));
    assert!(matches!(
        store.pack_len(1),
        Err(Error::PackMissing { pack: 1 })
    ));
    assert!(matches!(
        store.copy_frame(&refs[0]),
        Err(Error::PackMissing { pack: 1 })
    ));
    // Removed behind a fresh store's back.
    drop(store);
    fs.remove(&pack_path(2)).unwrap();
    let e = open(&fs, PackOptions::default())
        .read_segment(&file_key(1), &file_id(1), 1, &refs[1])
        .unwrap_err();
    assert!(matches!(e, Error::PackMissing { pack: 2 }), "{e}");
}

#[test]
fn copied_frames_read_back_identically_and_old_packs_can_go() {
    let fs = MemFs::new();
    let store = open(&fs, opts(PACK_HEADER_LEN as u64 + 3000, Some(3)));
    let mut stored: Vec<Stored> = Vec::new();
    for i in 0..6u64 {
        let p = data(i, 900, i % 2 == 0);
        let r = store
            .write_segments(&file_key(i % 2), &file_id(i % 2), &[(i, 4, &p[..])])
            .unwrap()[0];
        stored.push((i % 2, i, 4, p, r));
    }
    store.sync().unwrap();
    let old_packs = store.pack_numbers().unwrap();
    drop(store);
    // Compaction in a later session: copy every live frame, then delete.
    let store = open(&fs, opts(1 << 20, Some(3)));
    let mut moved = Vec::new();
    for (f, i, g, p, r) in &stored {
        let frame = fs.contents(&pack_path(r.pack)).unwrap()
            [r.offset as usize..(r.offset + r.stored_len as u64) as usize]
            .to_vec();
        let n = store.copy_frame(r).unwrap();
        assert!(!old_packs.contains(&n.pack));
        assert_eq!(
            (n.stored_len, n.plain_len, n.generation),
            (r.stored_len, r.plain_len, r.generation)
        );
        let copied = fs.contents(&pack_path(n.pack)).unwrap()
            [n.offset as usize..(n.offset + n.stored_len as u64) as usize]
            .to_vec();
        assert_eq!(frame, copied, "bytes unchanged");
        moved.push((*f, *i, *g, p.clone(), n));
    }
    store.sync().unwrap();
    for n in old_packs {
        store.delete_pack(n).unwrap();
    }
    check_all(&store, &moved);
    check_all(&open(&fs.after_crash(0), PackOptions::default()), &moved);
}

#[test]
fn reopen_starts_a_new_pack_and_never_appends_to_an_old_one() {
    let fs = MemFs::new();
    let mut stored: Vec<Stored> = Vec::new();
    let mut snapshots: Vec<(u64, Vec<u8>)> = Vec::new();
    for session in 0..4u64 {
        let store = open(&fs, PackOptions::default());
        assert_eq!(store.active_pack(), None);
        assert_eq!(store.pack_numbers().unwrap().len() as u64, session);
        let p = data(session, 5000, false);
        let r = store
            .write_segments(&file_key(1), &file_id(1), &[(session, 1, &p[..])])
            .unwrap()[0];
        assert_eq!((r.pack, r.offset), (session + 1, PACK_HEADER_LEN as u64));
        store.sync().unwrap();
        stored.push((1, session, 1, p, r));
        for (n, bytes) in &snapshots {
            assert_eq!(
                &fs.contents(&pack_path(*n)).unwrap(),
                bytes,
                "pack {n} changed"
            );
        }
        snapshots.push((r.pack, fs.contents(&pack_path(r.pack)).unwrap()));
        check_all(&store, &stored);
    }
    // An unsynced torn pack left by a crash is not reused either.
    let crashed = MemFs::new();
    let store = open(&crashed, PackOptions::default());
    store
        .write_segments(&file_key(1), &file_id(1), &[(0, 1, &[1u8; 10][..])])
        .unwrap();
    let after = crashed.after_crash(0);
    assert!(after.exists(&pack_path(1)), "the name was made durable");
    let store = open(&after, PackOptions::default());
    let r = store
        .write_segments(&file_key(1), &file_id(1), &[(0, 1, &[2u8; 10][..])])
        .unwrap()[0];
    assert_eq!(r.pack, 2);
}

/// The crash-matrix workload: a few calls of several files, each followed by
/// a sync; returns what was acknowledged (write and sync both Ok).
fn workload(fs: &MemFs, acked: &mut Vec<Stored>) {
    let store = match PackStore::open(
        Arc::new(fs.clone()),
        dir(),
        VAULT,
        Cipher::Aes256Gcm,
        opts(
            PACK_HEADER_LEN as u64 + 2 * (300 + FRAME_OVERHEAD as u64),
            Some(3),
        ),
    ) {
        Ok(s) => s,
        Err(_) => return,
    };
    for call in 0..6u64 {
        let f = call % 3;
        let segs: Vec<Vec<u8>> = (0..2u64)
            .map(|k| data(call * 2 + k, 300, (call + k) % 2 == 0))
            .collect();
        let args: Vec<(u64, u64, &[u8])> = segs
            .iter()
            .enumerate()
            .map(|(k, p)| (call * 2 + k as u64, call + 1, p.as_slice()))
            .collect();
        let Ok(refs) = store.write_segments(&file_key(f), &file_id(f), &args) else {
            return;
        };
        if store.sync().is_err() {
            return;
        }
        for ((i, g, _), (p, r)) in args.iter().zip(segs.iter().zip(refs)) {
            acked.push((f, *i, *g, p.clone(), r));
        }
    }
}

#[test]
fn crash_at_every_write_keeps_every_acknowledged_segment() {
    let probe = MemFs::new();
    let mut all = Vec::new();
    workload(&probe, &mut all);
    assert_eq!(all.len(), 12);
    let writes = probe.writes();
    assert!(writes >= 10, "{writes}");
    for nth in 1..=writes + 1 {
        let fs = MemFs::new();
        fs.set_fault(Some(Fault::Crash { nth }));
        let mut acked = Vec::new();
        workload(&fs, &mut acked);
        for torn in [0usize, 1, 100] {
            let after = fs.after_crash(torn);
            let store = PackStore::open(
                Arc::new(after.clone()),
                dir(),
                VAULT,
                Cipher::Aes256Gcm,
                PackOptions::default(),
            )
            .unwrap();
            check_all(&store, &acked);
            // Life goes on in a new pack.
            let old: Vec<(u64, Vec<u8>)> = store
                .pack_numbers()
                .unwrap()
                .into_iter()
                .map(|n| (n, after.contents(&pack_path(n)).unwrap()))
                .collect();
            let r = store
                .write_segments(&file_key(0), &file_id(0), &[(99, 9, &b"after"[..])])
                .unwrap()[0];
            store.sync().unwrap();
            assert!(old.iter().all(|(n, _)| *n < r.pack));
            for (n, bytes) in old {
                assert_eq!(after.contents(&pack_path(n)).unwrap(), bytes);
            }
            check_all(&store, &acked);
            assert_eq!(
                store
                    .read_segment(&file_key(0), &file_id(0), 99, &r)
                    .unwrap(),
                b"after"
            );
        }
    }
}

#[test]
fn write_and_sync_errors_reach_the_caller_and_stop_further_writes() {
    let p = data(1, 1000, false);
    // (fault, whether the store keeps working after it): a failed write or
    // a pack that could not be started is cut off and left (a full disk is
    // survivable); a failed fsync leaves durability unknown, so writes stop.
    let cases = [
        (FaultOp::Write, 1, 5, true),  // the first pack's header
        (FaultOp::Write, 2, 28, true), // the first frame (ENOSPC)
        (FaultOp::Write, 4, 5, true),  // a frame after rotation
        (FaultOp::Sync, 1, 5, true),   // the directory sync of a new pack
        (FaultOp::Sync, 2, 5, false),  // the first fsync
        (FaultOp::Sync, 4, 28, false), // a later fsync
    ];
    for (op, nth, errno, recovers) in cases {
        let fs = MemFs::new();
        let store = open(&fs, opts(PACK_HEADER_LEN as u64 + 1100, None));
        let mut acked = Vec::new();
        fs.set_fault(Some(Fault::Error { op, nth, errno }));
        let mut first_error = None;
        for i in 0..4u64 {
            let r = store
                .write_segments(&file_key(1), &file_id(1), &[(i, 1, &p[..])])
                .and_then(|r| store.sync().map(|()| r[0]));
            match r {
                Ok(r) => acked.push((1, i, 1, p.clone(), r)),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        let e = first_error.unwrap_or_else(|| panic!("{op:?} {nth}: no error"));
        assert_eq!(io_errno(&e), Some(errno), "{op:?} {nth}: {e}");
        let later = store
            .write_segments(&file_key(1), &file_id(1), &[(9, 2, &p[..])])
            .and_then(|r| store.sync().map(|()| r[0]));
        if recovers {
            let r = later.unwrap_or_else(|e| panic!("{op:?} {nth}: not recovered: {e}"));
            acked.push((1, 9, 2, p.clone(), r));
        } else {
            // Refused from now on, even though the disk works again.
            let e = later.unwrap_err();
            assert!(matches!(e, Error::PacksFailed(_)), "{e}");
            assert_eq!(e.class(), ErrorClass::Io);
            assert!(matches!(store.sync(), Err(Error::PacksFailed(_))));
            if let Some(a) = acked.first() {
                assert!(matches!(store.copy_frame(&a.4), Err(Error::PacksFailed(_))));
            }
        }
        // Reads still work, and everything acknowledged survives a crash.
        check_all(&store, &acked);
        let reopened = open(&fs.after_crash(0), PackOptions::default());
        check_all(&reopened, &acked);
    }
}
