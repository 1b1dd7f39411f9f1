//! Random mixes of what a mounted vault does, cut by a crash: writes (the
//! small ones carried by fsync's records as patches, `packs::carried`),
//! fsyncs, the scheduler's syncs (which punch the frames records freed,
//! `vault::reclaim`), truncates, log and pack compactions, unlinks, renames
//! and reopens. The crash comes at the end, or at any write or sync of the
//! file system, keeping a torn tail of unsynced bytes or none. After it the
//! files read as they were after some prefix of the operations no shorter
//! than the last fsync or sync that returned, and the vault checks clean.
//!
//! Found so far: a patched frame rebuilt down its chain to a base the
//! scheduler's sync had punched (`PackStore::rebuild_carried`), and fsck
//! reporting the state a crash inside a truncate leaves by design
//! (`fsck::state_checks::check_segment_maps`).

mod common;

use common::memvault::{content, MemVault, SEG};
use common::oracle::close_and_check;
use crypto_core::metadata::AttrChange;
use crypto_core::storage::memfs::Fault;
use crypto_core::vault::engine::{RenameFlags, Vault, ROOT};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A write of file `.0` at `.1`, `.2` bytes of `.3`.
    Write(usize, u32, u16, u8),
    Fsync(usize),
    /// The scheduler's flush: packs and log synced, freed frames punched.
    Sync,
    Truncate(usize, u32),
    CompactLog,
    CompactPacks,
    /// Close the vault and open it again (a clean unmount and mount).
    Reopen,
    /// Unlink file `.0` and create it again, empty (a new inode).
    Recreate(usize),
    /// Exchange the two files' names (`renameat2(RENAME_EXCHANGE)`).
    Swap,
}

fn op() -> impl Strategy<Value = Op> {
    let seg = SEG;
    prop_oneof![
        5 => (0..2usize, 0..3 * seg, 1u16..3000, any::<u8>()).prop_map(|(f, o, l, b)| Op::Write(f, o, l, b)),
        1 => (0..2usize, 0..3 * seg, 3000u16..40_000, any::<u8>()).prop_map(|(f, o, l, b)| Op::Write(f, o, l, b)),
        4 => (0..2usize).prop_map(Op::Fsync),
        2 => Just(Op::Sync),
        1 => (0..2usize, 0..3 * seg).prop_map(|(f, s)| Op::Truncate(f, s)),
        1 => Just(Op::CompactLog),
        1 => Just(Op::CompactPacks),
        1 => Just(Op::Reopen),
        1 => (0..2usize).prop_map(Op::Recreate),
        1 => Just(Op::Swap),
    ]
}

/// Two files and their model: their contents after each prefix of the
/// operations (`None`: between the unlink and the create of a recreate),
/// and the longest prefix an fsync or sync made durable.
struct Mix {
    inos: [u64; 2],
    model: [Vec<u8>; 2],
    after: Vec<Files>,
    durable: usize,
}

/// Both files' contents, `None` where absent.
type Files = [Option<Vec<u8>>; 2];

impl Mix {
    /// Two files made durable (they exist whatever a crash keeps).
    fn start(v: &Vault) -> Mix {
        let mut inos = [0; 2];
        for (i, ino) in inos.iter_mut().enumerate() {
            *ino = v
                .create(ROOT, format!("f{i}").as_bytes(), 0o644, 0, 0)
                .unwrap()
                .ino;
        }
        v.sync().unwrap();
        let model = [Vec::new(), Vec::new()];
        Mix {
            inos,
            after: vec![[Some(Vec::new()), Some(Vec::new())]],
            model,
            durable: 0,
        }
    }

    fn files(&self) -> Files {
        self.model.clone().map(Some)
    }

    /// The operation done, after a reopen too: note the model's state.
    fn done(&mut self, durable: bool) {
        self.after.push(self.files());
        if durable {
            self.durable = self.after.len() - 1;
        }
    }

    /// Do `o` to `v` and to the model (whatever `v` answers: a failed
    /// operation may have taken effect before the crash stopped it).
    fn apply(&mut self, v: &Vault, o: &Op) -> crypto_core::Result<()> {
        let result = match *o {
            Op::Write(f, off, len, byte) => {
                let data: Vec<u8> = (0..len).map(|k| byte.wrapping_add(k as u8)).collect();
                let m = &mut self.model[f];
                let end = off as usize + data.len();
                if m.len() < end {
                    m.resize(end, 0);
                }
                m[off as usize..end].copy_from_slice(&data);
                v.write(self.inos[f], off as u64, &data).map(drop)
            }
            Op::Fsync(f) => v.fsync(self.inos[f]),
            Op::Sync => v.sync(),
            Op::Truncate(f, size) => {
                self.model[f].resize(size as usize, 0);
                let change = AttrChange {
                    size: Some(size as u64),
                    ..Default::default()
                };
                v.setattr(self.inos[f], change).map(drop)
            }
            Op::CompactLog => v.compact_log().map(drop),
            Op::CompactPacks => v.compact_packs(0.0).map(drop),
            Op::Recreate(f) => {
                self.model[f].clear();
                let mut unlinked = self.files();
                unlinked[f] = None;
                self.after.push(unlinked);
                let name = format!("f{f}");
                v.unlink(ROOT, name.as_bytes()).and_then(|()| {
                    self.inos[f] = v.create(ROOT, name.as_bytes(), 0o644, 0, 0)?.ino;
                    Ok(())
                })
            }
            Op::Swap => {
                self.model.swap(0, 1);
                self.inos.swap(0, 1);
                let exchange = RenameFlags {
                    exchange: true,
                    noreplace: false,
                };
                v.rename(ROOT, b"f0", ROOT, b"f1", exchange)
            }
            Op::Reopen => unreachable!("the caller reopens"),
        };
        self.done(result.is_ok() && matches!(o, Op::Fsync(_) | Op::Sync));
        result
    }

    /// The files of `rebooted` read as after some prefix from the last
    /// durable one on.
    fn check(&self, rebooted: &Vault) -> std::result::Result<(), TestCaseError> {
        let found = [b"f0", b"f1"].map(|name| {
            let present = rebooted.lookup(ROOT, name).is_ok();
            present.then(|| content(rebooted, name))
        });
        prop_assert!(
            self.after[self.durable..].contains(&found),
            "after the crash the files are not as after any prefix of at least {} operations",
            self.durable
        );
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The crash after the last operation (and after an fsync, or not).
    #[test]
    fn a_crash_after_any_mix_keeps_what_was_synced(
        ops in proptest::collection::vec(op(), 1..50),
        fsync_last in any::<bool>(),
        compress in any::<bool>(),
    ) {
        let m = MemVault::compressed(compress);
        let mut v = m.open();
        let mut mix = Mix::start(&v);
        for o in &ops {
            if let Op::Reopen = o {
                v.close().unwrap();
                v = m.open();
                mix.done(true);
            } else {
                mix.apply(&v, o).unwrap();
            }
        }
        if fsync_last {
            mix.apply(&v, &Op::Fsync(0)).unwrap();
        }
        m.fs.crash();
        let fs = m.fs.after_crash(0);
        drop(v); // as above
        m.check_reboot(&fs, |v| mix.check(v))?;
    }

    /// The crash at the `nth` write (`at_sync`: instead of the `nth` sync)
    /// of the file system after the files were made: the operation then
    /// under way fails and the machine stops; `torn` bytes of each file's
    /// unsynced tail survive.
    #[test]
    fn a_crash_anywhere_in_any_mix_keeps_what_was_synced(
        ops in proptest::collection::vec(op(), 1..40),
        nth in 1u64..400,
        at_sync in any::<bool>(),
        torn in prop_oneof![Just(0usize), Just(100), Just(5000)],
        compress in any::<bool>(),
    ) {
        let m = MemVault::compressed(compress);
        let v = m.open();
        let mut mix = Mix::start(&v);
        m.fs.set_fault(Some(if at_sync {
            Fault::CrashAtSync { nth: m.fs.syncs() + nth }
        } else {
            Fault::Crash { nth: m.fs.writes() + nth }
        }));
        // (No reopen here: a reopen after the crash point is the recovery
        // below.)
        for o in ops.iter().filter(|o| !matches!(o, Op::Reopen)) {
            if mix.apply(&v, o).is_err() {
                break;
            }
        }
        m.fs.crash();
        let fs = m.fs.after_crash(torn);
        // Dropped, not forgotten (thousands of cases would pile up their
        // vaults): whatever its drop tries, the stopped machine refuses.
        drop(v);
        m.check_reboot(&fs, |v| mix.check(v))?;
    }
}

/// The crash the first property found after a reopen: the truncate's size
/// record made durable (by the sync of the generations a new session
/// reserves first) without the record of the segment it cuts. The file
/// reads at its new size, and fsck finds nothing (the whole old segment
/// reaching past the size is what the engine expects after such a crash).
#[test]
fn a_crash_between_the_two_records_of_a_truncate_checks_clean() {
    let m = MemVault::new();
    let v = m.open();
    let a = v.create(ROOT, b"f0", 0o644, 0, 0).unwrap().ino;
    let data: Vec<u8> = (0..2 * SEG as usize - 48).map(|i| i as u8).collect();
    v.write(a, 0, &data).unwrap();
    v.close().unwrap();
    let v = m.open();
    let size = SEG as u64 + 1;
    let change = AttrChange {
        size: Some(size),
        ..Default::default()
    };
    v.setattr(a, change).unwrap();
    let fs = m.crash(v);
    let rw = m.open_on(&fs);
    let state = rw.state();
    let segment = *state.inode(a).unwrap().segments.get(&1).unwrap();
    assert_eq!(
        segment.plain_len,
        SEG - 48,
        "the cut segment's record was lost"
    );
    assert_eq!(content(&rw, b"f0"), data[..size as usize]);
    close_and_check(rw, || m.open_on(&fs), "after a crash inside a truncate");
}
