//! The metadata state machine: namespace rules with their errnos, segment
//! maps and pack accounting, and replay == live for random entry sequences.

use crypto_core::metadata::state_codec::{decode_state, encode_state};
use crypto_core::metadata::SegmentRef;
use crypto_core::metadata::{AttrChange, InodeKind, Timespec, UnifiedEntry};
use crypto_core::metadata::{MetadataState, PackUsage, ROOT_INO};
use crypto_core::Error;
use proptest::prelude::*;

const T: Timespec = Timespec {
    sec: 1_700_000_000,
    nsec: 5,
};

fn state() -> MetadataState {
    MetadataState::new(65536, 0o40755, 0, 0, T)
}

fn create(s: &mut MetadataState, ino: u64, kind: InodeKind) {
    s.apply(&UnifiedEntry::CreateInode {
        ino,
        kind,
        mode: 0o644,
        uid: 1,
        gid: 2,
        rdev: 0,
        time: T,
        file_id: [ino as u8; 16],
        target: vec![],
    })
    .unwrap();
}

fn link(parent: u64, name: &str, ino: u64) -> UnifiedEntry {
    UnifiedEntry::Link {
        parent,
        name: name.into(),
        ino,
        time: T,
    }
}

fn errno(r: crypto_core::Result<()>) -> i32 {
    match r {
        Err(Error::Fs { errno, .. }) => errno,
        other => panic!("expected an errno, got {other:?}"),
    }
}

#[test]
fn namespace_rules_and_errnos() {
    let mut s = state();
    create(&mut s, 2, InodeKind::Dir);
    s.apply(&link(ROOT_INO, "d", 2)).unwrap();
    create(&mut s, 3, InodeKind::File);
    s.apply(&link(2, "f", 3)).unwrap();
    s.apply(&link(ROOT_INO, "hard", 3)).unwrap();
    assert_eq!(s.nlink(3), 2);
    assert_eq!(s.nlink(ROOT_INO), 3); // ".", "..", and d's ".."
    assert_eq!(s.lookup(2, b"f").unwrap(), 3);
    assert_eq!(errno(s.apply(&link(2, "f", 3))), 17);
    assert_eq!(errno(s.apply(&link(2, &"x".repeat(256), 3))), 36);
    assert_eq!(errno(s.apply(&link(3, "y", 3))), 20);
    let before = s.clone();
    assert_eq!(
        errno(s.apply(&UnifiedEntry::Unlink {
            parent: ROOT_INO,
            name: b"d".to_vec(),
            time: T
        })),
        39
    );
    assert_eq!(s, before, "a refused entry changes nothing");
    // A directory cannot move into itself or below itself.
    create(&mut s, 4, InodeKind::Dir);
    s.apply(&link(2, "sub", 4)).unwrap();
    let mv = |np, nn: &str| UnifiedEntry::Rename {
        parent: ROOT_INO,
        name: b"d".to_vec(),
        new_parent: np,
        new_name: nn.into(),
        exchange: false,
        time: T,
    };
    assert_eq!(errno(s.apply(&mv(4, "x"))), 22);
    assert_eq!(errno(s.apply(&mv(2, "x"))), 22);
    // Replacing: a file over a file drops the old one's link.
    create(&mut s, 5, InodeKind::File);
    s.apply(&link(ROOT_INO, "g", 5)).unwrap();
    s.apply(&UnifiedEntry::Rename {
        parent: ROOT_INO,
        name: b"g".to_vec(),
        new_parent: ROOT_INO,
        new_name: b"hard".to_vec(),
        exchange: false,
        time: T,
    })
    .unwrap();
    assert_eq!(s.lookup(ROOT_INO, b"hard").unwrap(), 5);
    assert_eq!(s.inode(3).unwrap().links, 1);
    // A directory over a file, or a file over a directory, is refused.
    assert_eq!(errno(s.apply(&mv(ROOT_INO, "hard"))), 20);
    assert_eq!(
        errno(s.apply(&UnifiedEntry::Rename {
            parent: ROOT_INO,
            name: b"hard".to_vec(),
            new_parent: ROOT_INO,
            new_name: b"d".to_vec(),
            exchange: false,
            time: T
        })),
        21
    );
    // Exchange swaps a file and a directory.
    s.apply(&UnifiedEntry::Rename {
        parent: ROOT_INO,
        name: b"hard".to_vec(),
        new_parent: ROOT_INO,
        new_name: b"d".to_vec(),
        exchange: true,
        time: T,
    })
    .unwrap();
    assert_eq!(s.lookup(ROOT_INO, b"d").unwrap(), 5);
    assert_eq!(s.lookup(ROOT_INO, b"hard").unwrap(), 2);
    // Unlinking the last name leaves an orphan until Forget.
    s.apply(&UnifiedEntry::Unlink {
        parent: 2,
        name: b"f".to_vec(),
        time: T,
    })
    .unwrap();
    assert_eq!(s.orphans(), vec![3]);
    s.apply(&UnifiedEntry::Forget { ino: 3 }).unwrap();
    assert!(s.orphans().is_empty());
    assert_eq!(errno(s.apply(&UnifiedEntry::Forget { ino: 5 })), 22);
}

fn seg(pack: u64, len: u32, generation: u64) -> SegmentRef {
    SegmentRef {
        pack,
        offset: 64,
        stored_len: len + 29,
        plain_len: len,
        generation,
    }
}

#[test]
fn segments_generations_and_pack_accounting() {
    let mut s = state();
    create(&mut s, 2, InodeKind::File);
    s.apply(&link(ROOT_INO, "f", 2)).unwrap();
    let w = |segments: Vec<(u64, SegmentRef)>, size| UnifiedEntry::WriteSegments {
        ino: 2,
        size,
        mtime: T,
        segments,
    };
    s.apply(&w(
        vec![
            (0, seg(1, 65536, 1)),
            (1, seg(1, 65536, 1)),
            (2, seg(1, 100, 1)),
        ],
        131172,
    ))
    .unwrap();
    assert_eq!(
        s.packs[&1],
        PackUsage {
            live: 3 * 29 + 131172,
            dead: 0
        }
    );
    // An older or equal generation is a replay: refused.
    assert_eq!(errno(s.apply(&w(vec![(1, seg(2, 65536, 1))], 131172))), 22);
    s.apply(&w(vec![(1, seg(2, 65536, 2))], 131172)).unwrap();
    assert_eq!(s.packs[&1].dead, 65536 + 29);
    assert_eq!(s.packs[&2].live, 65536 + 29);
    // Truncating to 70000 keeps segments 0 and 1, drops 2.
    s.apply(&UnifiedEntry::SetAttr {
        ino: 2,
        change: AttrChange {
            size: Some(70000),
            ..Default::default()
        },
    })
    .unwrap();
    assert_eq!(
        s.inode(2)
            .unwrap()
            .segments
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(s.packs[&1].dead, 65536 + 29 + 129);
    s.apply(&UnifiedEntry::Unlink {
        parent: ROOT_INO,
        name: b"f".to_vec(),
        time: T,
    })
    .unwrap();
    s.apply(&UnifiedEntry::Forget { ino: 2 }).unwrap();
    assert_eq!(s.packs[&1].live + s.packs[&2].live, 0);
    // Content of a directory is refused.
    assert_eq!(
        errno(s.apply(&UnifiedEntry::WriteSegments {
            ino: ROOT_INO,
            size: 1,
            mtime: T,
            segments: vec![]
        })),
        21
    );
}

#[derive(Clone, Debug)]
enum Op {
    Create(u8, bool),
    Link(u8, u8, u8),
    Unlink(u8, u8),
    Rename(u8, u8, u8, u8, bool),
    Write(u8, u8, u16),
    Truncate(u8, u32),
    Xattr(u8, u8, bool),
    Forget(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), any::<bool>()).prop_map(|(a, d)| Op::Create(a, d)),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Op::Link(a, b, c)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Unlink(a, b)),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<bool>()
        )
            .prop_map(|(a, b, c, d, x)| Op::Rename(a, b, c, d, x)),
        (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(a, b, c)| Op::Write(a, b, c)),
        (any::<u8>(), any::<u32>()).prop_map(|(a, b)| Op::Truncate(a, b)),
        (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, c)| Op::Xattr(a, b, c)),
        any::<u8>().prop_map(Op::Forget),
    ]
}

fn entry(o: &Op, s: &MetadataState, generation: &mut u64) -> UnifiedEntry {
    let ino = |x: u8| 1 + (x % 12) as u64;
    let name = |x: u8| vec![b'a' + x % 5];
    match o {
        Op::Create(a, d) => UnifiedEntry::CreateInode {
            ino: s.next_ino + (*a % 2) as u64,
            kind: if *d { InodeKind::Dir } else { InodeKind::File },
            mode: 0o600,
            uid: 0,
            gid: 0,
            rdev: 0,
            time: T,
            file_id: [*a; 16],
            target: vec![],
        },
        Op::Link(p, n, i) => UnifiedEntry::Link {
            parent: ino(*p),
            name: name(*n),
            ino: ino(*i),
            time: T,
        },
        Op::Unlink(p, n) => UnifiedEntry::Unlink {
            parent: ino(*p),
            name: name(*n),
            time: T,
        },
        Op::Rename(p, n, q, m, x) => UnifiedEntry::Rename {
            parent: ino(*p),
            name: name(*n),
            new_parent: ino(*q),
            new_name: name(*m),
            exchange: *x,
            time: T,
        },
        Op::Write(i, idx, len) => {
            *generation += 1;
            let index = (*idx % 4) as u64;
            UnifiedEntry::WriteSegments {
                ino: ino(*i),
                size: index * 65536 + *len as u64,
                mtime: T,
                segments: vec![(
                    index,
                    seg(1 + (*idx % 3) as u64, (*len as u32).min(65536), *generation),
                )],
            }
        }
        Op::Truncate(i, size) => UnifiedEntry::SetAttr {
            ino: ino(*i),
            change: AttrChange {
                size: Some((*size % 300_000) as u64),
                ..Default::default()
            },
        },
        Op::Xattr(i, n, set) => {
            if *set {
                UnifiedEntry::SetXattr {
                    ino: ino(*i),
                    name: name(*n),
                    value: vec![*n],
                }
            } else {
                UnifiedEntry::RemoveXattr {
                    ino: ino(*i),
                    name: name(*n),
                }
            }
        }
        Op::Forget(i) => UnifiedEntry::Forget { ino: ino(*i) },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Random sequences: a refused entry changes nothing; replaying the
    /// accepted entries (through their encoding) rebuilds the same state;
    /// invariants hold after every step; a copy taken midway (what a
    /// compaction snapshots from) keeps its contents while the live state
    /// goes on changing.
    #[test]
    fn replay_equals_live(ops in proptest::collection::vec(op(), 1..120), copy_at in 0usize..120) {
        let mut live = state();
        let mut log = Vec::new();
        let mut generation = 0;
        let mut copy = None;
        for (k, o) in ops.iter().enumerate() {
            if k == copy_at.min(ops.len() - 1) {
                let c = live.clone();
                copy = Some((encode_state(&c), log.len(), c));
            }
            let e = entry(o, &live, &mut generation);
            let before = live.clone();
            match live.apply(&e) {
                Ok(()) => log.push(e.encode()),
                Err(Error::Fs { .. }) => prop_assert_eq!(&live, &before),
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
            // Invariants: every entry names a live inode; link counts match entries;
            // directories form a tree under the root.
            let mut names: std::collections::HashMap<u64, u32> = Default::default();
            for entries in live.dirs.values() {
                for ino in entries.values() {
                    prop_assert!(live.inodes.contains_key(&ino));
                    *names.entry(ino).or_default() += 1;
                }
                // Derived: the subdirectory count, and one cookie per entry, increasing.
                let subdirs = entries.values().filter(|c| live.dirs.contains_key(c)).count();
                prop_assert_eq!(entries.subdirs() as usize, subdirs);
                let by_cookie: Vec<(u64, &[u8], u64)> = entries.after(0).collect();
                prop_assert_eq!(by_cookie.len(), entries.len());
                prop_assert!(by_cookie.windows(2).all(|w| w[0].0 < w[1].0));
                for (_, name, ino) in &by_cookie {
                    prop_assert_eq!(entries.get(name), Some(*ino));
                }
            }
            // Derived: stored bytes per inode and in total.
            let mut total = 0;
            for i in live.inodes.values() {
                let stored: u64 = i.segments.values().map(|r| r.plain_len as u64).sum();
                prop_assert_eq!(i.stored, stored);
                total += stored;
            }
            prop_assert_eq!(live.stored_bytes, total);
            for (ino, i) in &live.inodes {
                if *ino != ROOT_INO {
                    prop_assert_eq!(i.links, names.get(ino).copied().unwrap_or(0));
                }
            }
            let live_bytes: u64 = live.inodes.values().flat_map(|i| i.segments.values()).map(|r| r.stored_len as u64).sum();
            prop_assert_eq!(live_bytes, live.packs.values().map(|p| p.live).sum::<u64>());
        }
        let mut replayed = state();
        for b in &log {
            replayed.apply(&UnifiedEntry::decode(b).unwrap()).unwrap();
        }
        // Through a snapshot: the same state, derived fields recomputed.
        let loaded = decode_state(&encode_state(&live), 2).unwrap();
        prop_assert_eq!(&loaded, &live);
        prop_assert_eq!(loaded.stored_bytes, live.stored_bytes);
        for (d, entries) in &live.dirs {
            prop_assert_eq!(loaded.dirs[d].subdirs(), entries.subdirs());
        }
        prop_assert_eq!(&replayed, &live);
        let (bytes, at, copy) = copy.expect("taken");
        prop_assert_eq!(&encode_state(&copy), &bytes);
        let mut prefix = state();
        for b in &log[..at] {
            prefix.apply(&UnifiedEntry::decode(b).unwrap()).unwrap();
        }
        prop_assert_eq!(&prefix, &copy);
    }
}
