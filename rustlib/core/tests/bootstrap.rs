//! Bootstrap over a crashed log: the state is always the one after some
//! prefix of the entries that includes every synced one, orphans reclaimed,
//! and every invariant the checker knows of the state alone holds.

mod common;

use std::path::Path;
use std::sync::Arc;

use crypto_core::crypto::keys::SecretKey;
use crypto_core::log::unified::LogOptions;
use crypto_core::metadata::SegmentRef;
use crypto_core::metadata::{AttrChange, InodeKind, Timespec, UnifiedEntry};
use crypto_core::metadata::{MetadataState, ROOT_INO};
use crypto_core::recovery::bootstrap::load_unified_log;
use crypto_core::storage::memfs::{Fault, MemFs};
use crypto_core::storage::FileSystem;

const T: Timespec = Timespec { sec: 1, nsec: 0 };

fn empty() -> MetadataState {
    MetadataState::new(65536, 0o40755, 0, 0, T)
}

fn entries() -> Vec<UnifiedEntry> {
    let mut v = Vec::new();
    for i in 0..12u64 {
        let ino = 2 + i;
        v.push(UnifiedEntry::CreateInode {
            ino,
            kind: if i % 4 == 0 {
                InodeKind::Dir
            } else {
                InodeKind::File
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            rdev: 0,
            time: T,
            file_id: [i as u8; 16],
            target: vec![],
        });
        v.push(UnifiedEntry::Link {
            parent: ROOT_INO,
            name: format!("n{i}").into_bytes(),
            ino,
            time: T,
        });
        if i % 4 != 0 {
            let r = SegmentRef {
                pack: 1,
                offset: 64 + i * 100,
                stored_len: 90,
                plain_len: 61,
                generation: i + 1,
            };
            v.push(UnifiedEntry::WriteSegments {
                ino,
                size: 61,
                mtime: T,
                segments: vec![(0, r)],
            });
            v.push(UnifiedEntry::SetAttr {
                ino,
                change: AttrChange {
                    mode: Some(0o600),
                    ..Default::default()
                },
            });
        }
        if i % 3 == 1 {
            // Unlinked while "open": an orphan until reclaimed.
            v.push(UnifiedEntry::Unlink {
                parent: ROOT_INO,
                name: format!("n{i}").into_bytes(),
                time: T,
            });
        }
    }
    v
}

fn open(
    fs: &MemFs,
) -> crypto_core::Result<(
    MetadataState,
    crypto_core::log::unified::LogManager,
    crypto_core::recovery::bootstrap::BootstrapReport,
)> {
    let opts = LogOptions {
        rotate_bytes: 700,
        ..Default::default()
    };
    load_unified_log(
        Arc::new(fs.clone()),
        Path::new("/v/log"),
        [1; 16],
        SecretKey::from_bytes([2; 32]),
        opts,
        empty(),
        crypto_core::snapshot::Covers {
            covers_seq: 0,
            chain: Some([0; 16]),
        },
    )
}

/// Appends the entries, syncing every 3rd; returns how many were acknowledged.
fn workload(fs: &MemFs, es: &[UnifiedEntry]) -> usize {
    let Ok((mut state, log, _)) = open(fs) else {
        return 0;
    };
    let mut acked = 0;
    for (k, e) in es.iter().enumerate() {
        state.apply(e).unwrap();
        if log.append(e.encode()).is_err() {
            break;
        }
        if k % 3 == 2 {
            match log.sync() {
                Ok(()) => acked = k + 1,
                Err(_) => break,
            }
        }
    }
    acked
}

fn without_orphans(mut s: MetadataState) -> MetadataState {
    for ino in s.orphans() {
        s.apply(&UnifiedEntry::Forget { ino }).unwrap();
    }
    s
}

#[test]
fn every_crash_point_bootstraps_to_a_prefix_with_all_synced_entries() {
    let es = entries();
    let mut prefixes = vec![empty()];
    for e in &es {
        let mut s = prefixes.last().unwrap().clone();
        s.apply(e).unwrap();
        prefixes.push(s);
    }
    let probe = MemFs::new();
    assert_eq!(workload(&probe, &es), es.len() - es.len() % 3);
    assert!(probe.writes() > 10, "{} writes", probe.writes());
    let mut orphan_cases = 0;
    for nth in 1..=probe.writes() {
        for torn in [0, 3, 20, 500] {
            let fs = MemFs::new();
            fs.set_fault(Some(Fault::Crash { nth }));
            let acked = workload(&fs, &es);
            let rebooted = fs.after_crash(torn);
            let (state, _log, report) =
                open(&rebooted).unwrap_or_else(|e| panic!("write {nth} torn {torn}: {e}"));
            common::oracle::assert_state_clean(&state, &format!("write {nth} torn {torn}"));
            let k = report.entries_replayed as usize;
            assert!(
                k >= acked,
                "write {nth} torn {torn}: replayed {k} < acked {acked}"
            );
            assert_eq!(
                state,
                without_orphans(prefixes[k].clone()),
                "write {nth} torn {torn}"
            );
            // A second bootstrap finds the same state and nothing left to reclaim.
            let (again, _, report2) = open(&rebooted).unwrap();
            assert_eq!(again, state);
            assert!(report2.orphans_reclaimed.is_empty());
            orphan_cases += !report.orphans_reclaimed.is_empty() as usize;
        }
    }
    assert!(
        orphan_cases > 0,
        "some crash points leave orphans to reclaim"
    );
}

mod with_snapshots {
    use super::*;
    use crypto_core::recovery::bootstrap::bootstrap;
    use crypto_core::vault::compaction::compact_unified_log;

    fn open_all(
        fs: &MemFs,
    ) -> crypto_core::Result<(
        MetadataState,
        crypto_core::log::unified::LogManager,
        crypto_core::recovery::bootstrap::BootstrapReport,
    )> {
        // With the metadata's copies, so crashes hit their writes too.
        let opts = LogOptions {
            rotate_bytes: 700,
            copies: Some("/v/mirror/log".into()),
            ..Default::default()
        };
        bootstrap(
            Arc::new(fs.clone()),
            Path::new("/v/snap"),
            Some(Path::new("/v/mirror/snap")),
            Path::new("/v/log"),
            [1; 16],
            SecretKey::from_bytes([2; 32]),
            opts,
            empty(),
        )
    }

    /// Entries with a log compaction after entry 14 and after entry 30.
    fn workload(fs: &MemFs, es: &[UnifiedEntry]) -> usize {
        let Ok((mut state, log, _)) = open_all(fs) else {
            return 0;
        };
        let mut acked = 0;
        for (k, e) in es.iter().enumerate() {
            state.apply(e).unwrap();
            if log.append(e.encode()).is_err() {
                return acked;
            }
            if k % 3 == 2 {
                match log.sync() {
                    Ok(()) => acked = k + 1,
                    Err(_) => return acked,
                }
            }
            if k == 14 || k == 30 {
                match compact_unified_log(
                    &log,
                    &state,
                    Path::new("/v/snap"),
                    Some(Path::new("/v/mirror/snap")),
                ) {
                    Ok(_) => acked = k + 1,
                    Err(_) => return acked,
                }
            }
        }
        acked
    }

    #[test]
    fn compaction_keeps_the_state_and_shrinks_the_log() {
        let es = entries();
        let fs = MemFs::new();
        assert_eq!(workload(&fs, &es), es.len() - es.len() % 3);
        let mut expect = empty();
        for e in &es {
            expect.apply(e).unwrap();
        }
        let (state, _, report) = open_all(&fs).unwrap();
        assert_eq!(report.snapshot, 2);
        assert!(report.entries_replayed < es.len() as u64);
        assert_eq!(state, without_orphans(expect));
        common::oracle::assert_state_clean(&state, "compacted");
        assert_eq!(
            fs.list(Path::new("/v/snap")).unwrap(),
            vec!["0000000000000002.snap".to_string()]
        );
    }

    #[test]
    fn every_crash_point_around_compactions_bootstraps_to_a_prefix() {
        let es = entries();
        let mut prefixes = vec![empty()];
        for e in &es {
            let mut s = prefixes.last().unwrap().clone();
            s.apply(e).unwrap();
            prefixes.push(s);
        }
        let probe = MemFs::new();
        workload(&probe, &es);
        for nth in 1..=probe.writes() {
            for torn in [0, 7, 500] {
                let fs = MemFs::new();
                fs.set_fault(Some(Fault::Crash { nth }));
                let acked = workload(&fs, &es);
                let rebooted = fs.after_crash(torn);
                let (state, _, _) =
                    open_all(&rebooted).unwrap_or_else(|e| panic!("write {nth} torn {torn}: {e}"));
                common::oracle::assert_state_clean(&state, &format!("write {nth} torn {torn}"));
                let ok =
                    (acked..prefixes.len()).any(|k| state == without_orphans(prefixes[k].clone()));
                assert!(ok, "write {nth} torn {torn}: not the state after any prefix of at least {acked} entries");
                let (again, _, _) = open_all(&rebooted).unwrap();
                assert_eq!(again, state);
            }
        }
    }

    #[test]
    fn a_damaged_snapshot_is_read_from_its_copy_and_rewritten() {
        let es = entries();
        let fs = MemFs::new();
        workload(&fs, &es);
        let (want, _, _) = open_all(&fs).unwrap();
        let snap = Path::new("/v/snap/0000000000000002.snap");
        let good = fs.contents(snap).unwrap();
        fs.poke(snap, |b| {
            let n = b.len();
            b[n / 2] ^= 1;
        });
        let (state, _, report) = open_all(&fs).unwrap();
        assert_eq!(state, want);
        assert_eq!(report.snapshots_mended, vec![2]);
        assert_eq!(
            fs.contents(snap).unwrap(),
            good,
            "the snapshot is rewritten"
        );
        // A deleted snapshot comes back the same way.
        fs.remove(snap).unwrap();
        let (state, _, report) = open_all(&fs).unwrap();
        assert_eq!((state, report.snapshots_mended), (want, vec![2]));
        assert_eq!(fs.contents(snap).unwrap(), good);
    }

    #[test]
    fn a_snapshot_damaged_in_both_copies_is_reported_not_silently_used() {
        let es = entries();
        let fs = MemFs::new();
        workload(&fs, &es);
        for p in [
            "/v/snap/0000000000000002.snap",
            "/v/mirror/snap/0000000000000002.snap",
        ] {
            fs.poke(Path::new(p), |b| {
                let n = b.len();
                b[n / 2] ^= 1;
            });
        }
        // The log before snapshot 2 is gone: bootstrap must refuse, not start empty.
        let Err(e) = open_all(&fs) else {
            panic!("bootstrap used a damaged snapshot")
        };
        assert!(matches!(e, crypto_core::Error::LogCorrupt(_)), "{e}");
    }
}
