//! What format 2 fixes, each shown on the engine (issue 14): a frame
//! written just before a crash and never committed cannot stand in for the
//! frame committed later in its place (generations are reserved durably,
//! so the later one has another generation, another nonce); and a crafted
//! torn tail of many MiB opens in linear time (a record header carries its
//! own check).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::memvault::MemVault;
use crypto_core::storage::memfs::MemFs;
use crypto_core::storage::FileSystem;
use crypto_core::vault::engine::{EngineOptions, ROOT};

fn packs(fs: &MemFs) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs
        .list(Path::new("/v/packs"))
        .unwrap()
        .into_iter()
        .map(|n| Path::new("/v/packs").join(n))
        .collect();
    v.sort();
    v
}

#[test]
fn an_uncommitted_frame_from_before_a_crash_cannot_replace_a_later_one() {
    let m = MemVault::new();
    let v = m.open();
    let f = v.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    v.write(f, 0, &[1u8; 1000]).unwrap();
    v.sync().unwrap();
    // Written to its pack, never committed: the machine stops first.
    v.write(f, 0, &[2u8; 1000]).unwrap();
    m.fs.crash();
    std::mem::forget(v);
    let fs = m.fs.after_crash(1 << 20);
    let all = packs(&fs);
    assert_eq!(all.len(), 1);
    let old = fs.contents(&all[0]).unwrap();

    // The next session writes the same segment, same length: committed.
    let v = m.open_on(&fs);
    assert_eq!(v.read(f, 0, 1000).unwrap(), vec![1u8; 1000]);
    v.write(f, 0, &[3u8; 1000]).unwrap();
    v.sync().unwrap();
    let r = v.state().inode(f).unwrap().segments[&0];
    drop(v);
    // Put the uncommitted frame (the last one of the old pack) in its place.
    let uncommitted = old[old.len() - r.stored_len as usize..].to_vec();
    let committed_pack = Path::new("/v/packs").join(format!("{:016x}.pack", r.pack));
    fs.poke(&committed_pack, |b| {
        let at = r.offset as usize;
        b[at..at + uncommitted.len()].copy_from_slice(&uncommitted);
    });
    let v = m.open_on(&fs);
    let e = v.read(f, 0, 1000).unwrap_err();
    assert_eq!(
        e.errno(),
        Some(5),
        "read as damage (EIO), never as data: {e}"
    );
}

#[test]
fn a_crafted_torn_tail_of_16_mib_opens_in_linear_time() {
    let m = MemVault::new();
    let v = m.open_on_with(&m.fs, EngineOptions::default());
    let f = v.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    v.write(f, 0, b"kept").unwrap();
    v.close().unwrap();
    let mut logs = m.fs.list(Path::new("/v/log")).unwrap();
    logs.sort();
    let last = Path::new("/v/log").join(logs.last().unwrap());
    // At every offset: a length reaching to the end and a sequence number
    // just ahead, the worst for a reader that checksums every candidate
    // whole; no header check holds (crafting them would only make the
    // damage be reported at once).
    let mut tail = vec![0u8; 16 << 20];
    for (i, b) in tail.iter_mut().enumerate() {
        *b = match i % 4 {
            0 => 0x00,
            1 => 0x00,
            2 => 0xf0,
            _ => 0x00,
        };
    }
    m.fs.poke(&last, |b| b.extend_from_slice(&tail));
    let started = Instant::now();
    let v = m.open_on(&m.fs);
    let took = started.elapsed();
    // Up to the tail's last non-zero byte: the zero after it could be the
    // writer's reserve (FORMAT.md §7.3) and is not counted as torn.
    assert_eq!(v.bootstrap_report().log.torn_bytes_cut, (16 << 20) - 1);
    assert_eq!(v.read(f, 0, 10).unwrap(), b"kept");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
