//! Encodings of every entry round-trip; cut or padded ones are refused.

use super::*;
use crate::metadata::carried::FramePatch;

pub(crate) fn samples() -> Vec<UnifiedEntry> {
    let t = Timespec {
        sec: 1_700_000_000,
        nsec: 123_456_789,
    };
    let seg = SegmentRef {
        pack: 3,
        offset: 64,
        stored_len: 1000,
        plain_len: 971,
        generation: 7,
    };
    vec![
        UnifiedEntry::CreateInode {
            ino: 5,
            kind: InodeKind::Symlink,
            mode: 0o777,
            uid: 1000,
            gid: 100,
            rdev: 0,
            time: t,
            file_id: [9; 16],
            target: b"../x".to_vec(),
        },
        UnifiedEntry::Link {
            parent: 1,
            name: b"a".to_vec(),
            ino: 5,
            time: t,
        },
        UnifiedEntry::Unlink {
            parent: 1,
            name: vec![0xff; 255],
            time: t,
        },
        UnifiedEntry::Rename {
            parent: 1,
            name: b"a".to_vec(),
            new_parent: 2,
            new_name: b"b".to_vec(),
            exchange: true,
            time: t,
        },
        UnifiedEntry::SetAttr {
            ino: 5,
            change: AttrChange {
                mode: Some(0o600),
                size: Some(0),
                mtime: Some(t),
                ..Default::default()
            },
        },
        UnifiedEntry::SetXattr {
            ino: 5,
            name: b"user.k".to_vec(),
            value: vec![],
        },
        UnifiedEntry::RemoveXattr {
            ino: 5,
            name: b"user.k".to_vec(),
        },
        UnifiedEntry::WriteSegments {
            ino: 5,
            size: 1 << 40,
            mtime: t,
            segments: vec![(0, seg), (u64::MAX, seg)],
        },
        UnifiedEntry::Forget { ino: 5 },
        UnifiedEntry::Scheduler { cycle: 3, time: t },
        UnifiedEntry::SnapshotCheckpoint {
            number: 2,
            covers_seq: 99,
        },
        UnifiedEntry::MoveSegments {
            moves: vec![(5, 0, seg, SegmentRef { pack: 9, ..seg })],
        },
        UnifiedEntry::PackDeleted { pack: 3 },
        UnifiedEntry::Close { time: t },
        UnifiedEntry::ReserveGenerations { up_to: 1 << 36 },
        UnifiedEntry::DecryptCheckpoint {
            run: [7; 16],
            total: 9,
            done: 4,
            damaged: vec![(2, 0), (5, 3)],
        },
        UnifiedEntry::WriteSegmentsCarried {
            ino: 5,
            size: 4096,
            mtime: t,
            segments: vec![(0, seg), (1, seg)],
            carried: vec![Carried::Frame(vec![0xab; 1000]), Carried::Nothing],
        },
        UnifiedEntry::WriteSegmentsCarried {
            ino: 5,
            size: 4096,
            mtime: t,
            segments: vec![(0, seg), (1, seg), (2, seg)],
            carried: vec![
                Carried::Patch(FramePatch {
                    base_generation: 6,
                    keep: 900,
                    offset: 10,
                    bytes: vec![1; 961],
                }),
                Carried::Nothing,
                Carried::Frame(vec![0xcd; 1000]),
            ],
        },
    ]
}

#[test]
fn a_carried_frame_must_have_its_stored_length() {
    for mut e in samples().into_iter().rev().take(2) {
        if let UnifiedEntry::WriteSegmentsCarried { carried, .. } = &mut e {
            for c in carried.iter_mut() {
                if let Carried::Frame(b) = c {
                    b.pop();
                }
            }
        }
        assert!(UnifiedEntry::decode(&e.encode()).is_err());
    }
}

#[test]
fn a_patch_that_does_not_fit_its_segment_is_refused() {
    let patched = |f: &dyn Fn(&mut FramePatch)| {
        let mut e = samples().pop().expect("a sample");
        if let UnifiedEntry::WriteSegmentsCarried { carried, .. } = &mut e {
            if let Carried::Patch(p) = &mut carried[0] {
                f(p);
            }
        }
        UnifiedEntry::decode(&e.encode())
    };
    assert!(patched(&|_| {}).is_ok());
    assert!(
        patched(&|p| p.keep = 972).is_err(),
        "keep past plain_len 971"
    );
    assert!(patched(&|p| p.offset = 11).is_err(), "patch past plain_len");
    assert!(
        patched(&|p| p.base_generation = 7).is_err(),
        "base not older"
    );
    assert!(
        patched(&|p| p.base_generation = 0).is_err(),
        "no base, keep > 0"
    );
    assert!(patched(&|p| {
        p.base_generation = 0;
        p.keep = 0
    })
    .is_ok());
    let mut bytes = samples().pop().expect("a sample").encode();
    let kind_at = 1 + 8 + 8 + 12 + 4 + 40;
    assert_eq!(bytes[kind_at], 2);
    bytes[kind_at] = 3;
    assert!(UnifiedEntry::decode(&bytes).is_err(), "unknown carry kind");
}

#[test]
fn every_entry_round_trips_and_every_cut_is_refused() {
    for e in samples() {
        let b = e.encode();
        assert_eq!(UnifiedEntry::decode(&b).unwrap(), e);
        for n in 0..b.len() {
            assert!(UnifiedEntry::decode(&b[..n]).is_err(), "{e:?} cut at {n}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(UnifiedEntry::decode(&longer).is_err());
    }
    assert!(UnifiedEntry::decode(&[0]).is_err());
    assert!(UnifiedEntry::decode(&[
        8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255,
        255, 255, 255
    ])
    .is_err());
}
