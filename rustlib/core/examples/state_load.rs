//! Loading the metadata state of a vault of many small files, as a mount
//! does: decode the snapshot's state bytes (FORMAT.md §9.5) into a
//! [`MetadataState`]. Prints the fastest of several runs of each phase.
//! `cargo run -p crypto-core --release --example state_load -- [FILES] [RUNS]`
use std::sync::Arc;
use std::time::{Duration, Instant};

use imbl::OrdMap;

use crypto_core::metadata::state_codec::{decode_state, encode_state};
use crypto_core::metadata::ROOT_INO;
use crypto_core::metadata::{
    Inode, InodeKind, MetadataState, PackUsage, SegmentMap, SegmentRef, Timespec,
};

fn inode(kind: InodeKind, parent: u64, segments: SegmentMap) -> Arc<Inode> {
    let t = Timespec {
        sec: 1_700_000_000,
        nsec: 0,
    };
    Arc::new(Inode {
        kind,
        mode: if kind == InodeKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        rdev: 0,
        size: 20,
        links: 1,
        atime: t,
        mtime: t,
        ctime: t,
        file_id: [7; 16],
        target: vec![],
        xattrs: OrdMap::new(),
        segments,
        parent,
        stored: 0,
    })
}

/// `files` files of one segment each, 1,000 to a directory (bench_mount.py's shape).
fn state(files: u64) -> MetadataState {
    let dirs = files.div_ceil(1000);
    let mut inodes = vec![(ROOT_INO, inode(InodeKind::Dir, ROOT_INO, SegmentMap::new()))];
    let mut entries = vec![(ROOT_INO, Vec::new())];
    let mut next = 2;
    for d in 0..dirs {
        let dir = next;
        next += 1;
        inodes.push((dir, inode(InodeKind::Dir, ROOT_INO, SegmentMap::new())));
        entries[0].1.push((format!("dir{d:05}").into_bytes(), dir));
        let mut names = Vec::new();
        for i in d * 1000..((d + 1) * 1000).min(files) {
            let seg = SegmentRef {
                pack: 1,
                offset: i * 64,
                stored_len: 60,
                plain_len: 20,
                generation: i + 1,
            };
            inodes.push((next, inode(InodeKind::File, 0, SegmentMap::unit(0, seg))));
            names.push((format!("file-{i:07}.txt").into_bytes(), next));
            next += 1;
        }
        entries.push((dir, names));
    }
    let packs = OrdMap::unit(
        1,
        PackUsage {
            live: files * 64,
            dead: 0,
        },
    );
    MetadataState::from_parts(65536, inodes, entries, packs, next, 0, files + 1).unwrap()
}

fn fastest(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let s = state(files);
    let bytes = encode_state(&s);
    println!(
        "{files} files: state of {:.1} MiB",
        bytes.len() as f64 / 1048576.0
    );
    let decode = fastest(runs, || {
        let back = decode_state(&bytes, 2).unwrap();
        assert_eq!(back.inodes.len(), s.inodes.len());
        std::mem::forget(back); // timed apart, below
    });
    let drop = fastest(runs, || std::mem::drop(decode_state(&bytes, 2).unwrap()));
    println!("decode: {:.1} ms", decode.as_secs_f64() * 1e3);
    println!("decode + drop: {:.1} ms", drop.as_secs_f64() * 1e3);
    assert_eq!(decode_state(&bytes, 2).unwrap(), s);
}
