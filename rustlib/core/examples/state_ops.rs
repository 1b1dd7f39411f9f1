//! Cost of the metadata state's live operations at scale, without the log
//! or the lock: create (CreateInode + Link), lookup, getattr's inode read,
//! readdir, a write's segment-map update (in a small file and in a
//! 16384-segment file), and taking a copy of the whole state.
//! `cargo run -p crypto-core --release --example state_ops -- [FILES]`
use std::time::Instant;

use crypto_core::metadata::SegmentRef;
use crypto_core::metadata::{InodeKind, Timespec, UnifiedEntry};
use crypto_core::metadata::{MetadataState, ROOT_INO};

const FILES_PER_DIR: u64 = 1000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn per_op(what: &str, ops: u64, t: Instant) {
    println!(
        "{what:<44} {:>8.0} ns/op",
        t.elapsed().as_nanos() as f64 / ops as f64
    );
}

fn seg(pack: u64, generation: u64) -> SegmentRef {
    SegmentRef {
        pack,
        offset: generation * 100,
        stored_len: 100,
        plain_len: 4096,
        generation,
    }
}

/// A write's record: segment `index` of `ino` rewritten, the file `size` long.
fn segment_write(
    ino: u64,
    size: u64,
    index: u64,
    generation: u64,
    mtime: Timespec,
) -> UnifiedEntry {
    UnifiedEntry::WriteSegments {
        ino,
        size,
        mtime,
        segments: vec![(index, seg(generation / 1000, generation))],
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t0 = Timespec {
        sec: 1_700_000_000,
        nsec: 0,
    };
    let mut s = MetadataState::new(65536, 0o755, 0, 0, t0);
    let dirs = n.div_ceil(FILES_PER_DIR);
    let create = |s: &mut MetadataState, ino: u64, kind: InodeKind, parent: u64, name: Vec<u8>| {
        let e = UnifiedEntry::CreateInode {
            ino,
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            rdev: 0,
            time: t0,
            file_id: [(ino % 251) as u8; 16],
            target: vec![],
        };
        s.apply(&e).unwrap();
        let e = UnifiedEntry::Link {
            parent,
            name,
            ino,
            time: t0,
        };
        s.apply(&e).unwrap();
    };
    for d in 0..dirs {
        create(
            &mut s,
            2 + d,
            InodeKind::Dir,
            ROOT_INO,
            format!("d{d}").into_bytes(),
        );
    }
    let names: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("file-{i}.txt").into_bytes())
        .collect();
    let first = 2 + dirs;
    let t = Instant::now();
    for (i, name) in names.iter().enumerate() {
        let i = i as u64;
        create(
            &mut s,
            first + i,
            InodeKind::File,
            2 + i / FILES_PER_DIR,
            name.clone(),
        );
    }
    per_op(&format!("create (CreateInode + Link), {n} files"), n, t);

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let ops = 2_000_000;
    let t = Instant::now();
    let mut sum = 0u64;
    for _ in 0..ops {
        let i = rng.next() % n;
        sum += s.lookup(2 + i / FILES_PER_DIR, &names[i as usize]).unwrap();
    }
    per_op("lookup (random name)", ops, t);
    let t = Instant::now();
    for _ in 0..ops {
        let ino = first + rng.next() % n;
        let i = s.inode(ino).unwrap();
        sum += i.size + i.mode as u64 + s.nlink(ino) as u64;
    }
    per_op("getattr's inode read (random inode)", ops, t);
    let t = Instant::now();
    let mut entries = 0u64;
    for _ in 0..ops / 100 {
        let d = 2 + rng.next() % dirs;
        let mut cookie = 0;
        loop {
            let chunk: Vec<(u64, u64)> = s
                .dir(d)
                .unwrap()
                .after(cookie)
                .take(100)
                .map(|(c, _, ino)| (c, s.inode(ino).unwrap().size + ino))
                .collect();
            let Some(last) = chunk.last() else { break };
            cookie = last.0;
            entries += chunk.len() as u64;
        }
    }
    per_op("readdir (chunks of 100, per entry)", entries, t);

    // A write's segment-map update: small files (one segment each), then
    // one file of 16384 segments (1 GiB at 64 KiB).
    let mut generation = 1u64;
    let t = Instant::now();
    for _ in 0..ops {
        let ino = first + rng.next() % n;
        generation += 1;
        s.apply(&segment_write(ino, 4096, 0, generation, t0))
            .unwrap();
    }
    per_op("write, 1 segment of a small file", ops, t);
    let big = first;
    for k in 0..16384u64 {
        generation += 1;
        s.apply(&segment_write(big, (k + 1) * 65536, k, generation, t0))
            .unwrap();
    }
    let t = Instant::now();
    for _ in 0..ops {
        let k = rng.next() % 16384;
        generation += 1;
        s.apply(&segment_write(big, 16384 * 65536, k, generation, t0))
            .unwrap();
    }
    per_op("write, 1 segment of a 16384-segment file", ops, t);

    let t = Instant::now();
    let copy = s.clone();
    println!(
        "{:<44} {:>8.3} ms",
        "copy of the whole state",
        t.elapsed().as_secs_f64() * 1e3
    );
    // The first changes after a copy pay for what they unshare.
    let t = Instant::now();
    for _ in 0..1000 {
        let ino = first + rng.next() % n;
        generation += 1;
        s.apply(&segment_write(ino, 4096, 0, generation, t0))
            .unwrap();
    }
    per_op("write after a copy (first 1000)", 1000, t);
    let t = Instant::now();
    drop(copy);
    println!(
        "{:<44} {:>8.3} ms",
        "drop of the copy",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!("(checksum {})", sum % 7);
}
