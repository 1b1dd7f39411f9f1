//! Bootstrap: [`bootstrap`] loads the newest valid snapshot, then
//! [`load_unified_log`] replays the log after it into the metadata state and
//! returns a `LogManager` ready for appends.
//!
//! Replay goes through [`MetadataState::apply`], like live operation. An
//! entry that does not apply to the state its predecessors built means the
//! log is damaged (it is reported, not skipped). Inodes left without a name
//! (unlinked while open when the machine stopped) are reclaimed with a
//! `Forget` entry, made durable before the vault is used.
//!
//! An interrupted log compaction is finished or rolled back by construction:
//! a snapshot whose temporary file never got its final name is removed; a
//! snapshot that exists covers log records that may still be present (they
//! are skipped); a damaged newest snapshot is read from its copy
//! ([`crate::mirror`]) and rewritten from it, or else falls back to an
//! older one when the log still reaches back to it, and is reported
//! otherwise.
//!
//! Opened read-only (`LogOptions::read_only`), bootstrap writes nothing:
//! temporaries stay, a snapshot read from its copy is not rewritten, copies
//! are not refreshed, orphans are kept (they have no name, so nothing shows
//! them), and the log is replayed as [`crate::log`] describes.

use std::path::Path;
use std::sync::Arc;

use super::carried::{CarriedChain, CarriedFrames};
use crate::crypto::keys::SecretKey;
use crate::error::{io_at, Error, Result};
use crate::log::unified::{LogManager, LogOptions, ReplayReport};
use crate::metadata::MetadataState;
use crate::metadata::UnifiedEntry;
use crate::mirror;
use crate::snapshot::{parse_snapshot_file_name, read_snapshot, snapshot_file_name};
use crate::storage::FileSystem;

/// What the upgrade of a vault of format 1 did (`vault::upgrade`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// The last record of format 1 (the new snapshot covers it).
    pub covers_seq: u64,
    /// The new snapshot's number.
    pub snapshot: u64,
    /// Format 1 files deleted (log files and snapshots).
    pub files_deleted: usize,
    /// Leftovers of an interrupted upgrade removed.
    pub leftovers_removed: usize,
}

/// What bootstrap found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootstrapReport {
    pub log: ReplayReport,
    /// The snapshot the state started from (0: none, the empty vault).
    pub snapshot: u64,
    /// Snapshots that could not be read, with why.
    pub bad_snapshots: Vec<(u64, String)>,
    /// Snapshots that did not read (damaged or missing) and were restored
    /// from their copy.
    pub snapshots_mended: Vec<u64>,
    /// Snapshot copies written anew (missing or left behind).
    pub snapshot_copies_refreshed: usize,
    /// Where the config was unlocked from (set by the opens that read it;
    /// `None` when the caller unlocked it).
    pub config_source: Option<crate::mirror::ConfigSource>,
    /// Leftover temporary snapshot files removed.
    pub removed_temporaries: usize,
    /// Log records applied after the snapshot.
    pub entries_replayed: u64,
    /// Orphaned inodes reclaimed.
    pub orphans_reclaimed: Vec<u64>,
    /// With salvage only: records read but not applied (they do not apply
    /// to the state without the records lost before them), with why.
    pub unapplied: Vec<(u64, String)>,
    /// Opened to write nothing: what the fields below say was cut, mended
    /// or removed was so in memory only, and orphans were kept.
    pub read_only: bool,
    /// A vault of format 1 upgraded to format 2 by this open.
    pub upgraded: Option<UpgradeReport>,
    /// The record the snapshot in use covers up to (0: none).
    pub covers_seq: u64,
    /// The sequence number of the first record the log holds (None: none).
    pub first_log_seq: Option<u64>,
    /// The tag of record `LogOptions::acknowledged_seq`, if the log holds it.
    pub acknowledged_tag: Option<[u8; 16]>,
    /// What the local state (rollback protection) had to say, one line
    /// each: a vault never seen here, a rollback accepted, a damaged or
    /// unwritable local state.
    pub local_state_notes: Vec<String>,
    /// (Format 2.) The last DecryptCheckpoint of an unfinished check of
    /// every frame with no change to the state after it: what fsck resumes
    /// from (`UnifiedEntry::DecryptCheckpoint`).
    pub decrypt_checkpoint: Option<UnifiedEntry>,
    /// (Format 2.) The last record of the log is a Close: the session
    /// before this one closed the vault cleanly (false: it crashed, or the
    /// log was cut; also false for an empty log).
    pub closed_cleanly: bool,
    /// (Format 2.) Frames carried by log records (`WriteSegmentsCarried`)
    /// that their segments still refer to after replay, each with what it
    /// is rebuilt from: what a crash may have lost from the packs
    /// (`packs::carried`), to be written back.
    pub carried_frames: Vec<CarriedChain>,
    /// Carried frames written back into their packs by this open.
    pub carried_frames_restored: usize,
    /// Pack files no record refers to, removed (a session that crashed
    /// after creating or filling a pack but before any record of its
    /// frames was durable: nothing in them was ever acknowledged).
    pub stray_packs_removed: Vec<u64>,
}

/// Load `snap_dir`'s newest valid snapshot (or `empty` if there is none),
/// then replay `log_dir` after it.
#[allow(clippy::too_many_arguments)]
pub fn bootstrap(
    fs: Arc<dyn FileSystem>,
    snap_dir: &Path,
    snap_copies: Option<&Path>,
    log_dir: &Path,
    vault_id: [u8; 16],
    master: SecretKey,
    opts: LogOptions,
    empty: MetadataState,
) -> Result<(MetadataState, LogManager, BootstrapReport)> {
    let read_only = opts.read_only;
    let names = if read_only {
        match fs.list(snap_dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            r => r.map_err(io_at("cannot list", snap_dir))?,
        }
    } else {
        fs.create_dir_all(snap_dir)
            .map_err(io_at("cannot create", snap_dir))?;
        fs.list(snap_dir).map_err(io_at("cannot list", snap_dir))?
    };
    let mut removed = 0;
    let temporaries = names.iter().filter(|n| n.ends_with(".snap.tmp"));
    for n in temporaries.filter(|_| !read_only) {
        let p = snap_dir.join(n);
        fs.remove(&p).map_err(io_at("cannot remove", &p))?;
        removed += 1;
    }
    if removed > 0 {
        fs.sync_dir(snap_dir)
            .map_err(io_at("cannot sync", snap_dir))?;
    }
    let mut numbers: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_snapshot_file_name(n))
        .collect();
    // A copy whose snapshot is gone stands in for it (copies are removed
    // after their snapshot, never before).
    if let Some(c) = snap_copies {
        for n in fs.list(c).unwrap_or_default() {
            if n.ends_with(".fusefs-tmp") && !read_only {
                let p = c.join(&n);
                fs.remove(&p).map_err(io_at("cannot remove", &p))?;
            } else if let Some(number) = parse_snapshot_file_name(&n) {
                if !numbers.contains(&number) {
                    numbers.push(number);
                }
            }
        }
    }
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    let mut bad = Vec::new();
    let mut mended = Vec::new();
    let mut refreshed = 0;
    let start = crate::snapshot::Covers {
        covers_seq: 0,
        chain: Some(crate::log::format::CHAIN_START),
    };
    let mut base = (0, start, empty);
    for n in numbers {
        let path = snap_dir.join(snapshot_file_name(n));
        let copy = snap_copies.map(|c| c.join(snapshot_file_name(n)));
        // A vault reads snapshots of its own format only (FORMAT.md §9.4).
        let format = opts.format;
        let read = |p: &Path| {
            read_snapshot(&*fs, p, vault_id, &master).and_then(|(covers, state)| {
                match (format, covers.chain) {
                    (crate::log::format::LogFormat::V2, None) => Err(Error::SnapshotCorrupt(
                        "a snapshot of format 1 in a vault of format 2".into(),
                    )),
                    (crate::log::format::LogFormat::V1, Some(_)) => Err(Error::SnapshotCorrupt(
                        "a snapshot of format 2 in a vault of format 1".into(),
                    )),
                    _ => Ok((covers, state)),
                }
            })
        };
        let first = if fs.exists(&path) {
            read(&path)
        } else {
            Err(Error::SnapshotCorrupt("the file is missing".into()))
        };
        match (first, &copy) {
            (Ok((covers, state)), copy) => {
                if let Some(copy) = copy.as_ref().filter(|_| !read_only) {
                    if !mirror::looks_current(&*fs, &path, copy) {
                        mirror::refresh(&*fs, &path, copy)?;
                        refreshed += 1;
                    }
                }
                base = (n, covers, state);
                break;
            }
            (Err(e), Some(copy)) if fs.exists(copy) => match read(copy) {
                Ok((covers, state)) => {
                    if !read_only {
                        mirror::refresh(&*fs, copy, &path)?;
                    }
                    mended.push(n);
                    base = (n, covers, state);
                    break;
                }
                Err(e2) => bad.push((n, format!("{e}; its copy: {e2}"))),
            },
            (Err(e), _) => bad.push((n, e.to_string())),
        }
    }
    let (number, covers, state) = base;
    let (state, log, mut report) =
        load_unified_log(fs, log_dir, vault_id, master, opts, state, covers).map_err(|e| {
            match (&e, bad.first()) {
                // Say why the snapshot the log needed could not be used.
                (Error::LogCorrupt(m), Some((n, why))) => {
                    Error::LogCorrupt(format!("{m}; snapshot {n} could not be read: {why}"))
                }
                _ => e,
            }
        })?;
    report.snapshot = number;
    report.bad_snapshots = bad;
    report.snapshots_mended = mended;
    report.snapshot_copies_refreshed = refreshed;
    report.removed_temporaries = removed;
    report.read_only = read_only;
    Ok((state, log, report))
}

/// Keep `entry` (a record's payload) if it is the DecryptCheckpoint of an
/// unfinished check; forget the one kept if it changes the state (a check
/// resumed must see the frames it started with).
fn note_checkpoint(kept: &mut Option<UnifiedEntry>, payload: &[u8]) {
    match UnifiedEntry::decode(payload) {
        Ok(e @ UnifiedEntry::DecryptCheckpoint { .. }) => {
            let unfinished =
                matches!(e, UnifiedEntry::DecryptCheckpoint { total, done, .. } if done < total);
            *kept = unfinished.then_some(e);
        }
        Ok(
            UnifiedEntry::Scheduler { .. }
            | UnifiedEntry::SnapshotCheckpoint { .. }
            | UnifiedEntry::Close { .. }
            | UnifiedEntry::ReserveGenerations { .. },
        ) => {}
        _ => *kept = None,
    }
}

/// Replay the log in `log_dir` onto `base` (the empty vault's state, or a
/// snapshot's, covering records up to `covers.covers_seq`) and open the
/// log for appending.
pub fn load_unified_log(
    fs: Arc<dyn FileSystem>,
    log_dir: &Path,
    vault_id: [u8; 16],
    master: SecretKey,
    opts: LogOptions,
    mut base: MetadataState,
    covers: crate::snapshot::Covers,
) -> Result<(MetadataState, LogManager, BootstrapReport)> {
    // New records must follow what the snapshot covers, even if no log file is left.
    let salvage = opts.salvage;
    let read_only = opts.read_only;
    let covers_seq = covers.covers_seq;
    let acknowledged = opts.acknowledged_seq;
    let opts = LogOptions {
        min_next_seq: opts.min_next_seq.max(covers_seq + 1),
        chain_base: covers.chain,
        ..opts
    };
    let (log, records, replay) = LogManager::open(fs, log_dir, vault_id, master, opts)?;
    let mut report = BootstrapReport {
        log: replay,
        ..Default::default()
    };
    let oldest = records.first().map(|r| r.seq);
    let reaches_back = !matches!(oldest, Some(o) if o > covers_seq + 1);
    if !reaches_back && salvage {
        let first = oldest.unwrap_or(0);
        report.log.lost.insert(
            0,
            crate::log::unified::LostRecords {
                first: covers_seq + 1,
                last: first - 1,
                file: String::new(),
                why: "no snapshot covers them and no log file holds them".into(),
            },
        );
    } else if !reaches_back {
        return Err(Error::LogCorrupt(format!(
            "the log starts at record {} but the state only covers records up to {covers_seq} \
             (a snapshot is missing or damaged)",
            oldest.unwrap_or(0)
        )));
    }
    // The chains of carried frames of each (inode, segment index).
    let mut carried = CarriedFrames::default();
    for r in records.iter().filter(|r| r.seq > covers_seq) {
        let applied = UnifiedEntry::decode(&r.payload)
            .map_err(|e| Error::LogCorrupt(format!("record {}: {e}", r.seq)))
            .and_then(|entry| {
                carried.note(&base, &entry);
                base.apply(&entry).map_err(|e| {
                    Error::LogCorrupt(format!(
                        "record {} does not apply to the state before it: {e}",
                        r.seq
                    ))
                })
            });
        match applied {
            Ok(()) => {
                report.entries_replayed += 1;
                note_checkpoint(&mut report.decrypt_checkpoint, &r.payload);
            }
            // What depends on a lost record is lost with it; the rest is
            // kept, and fsck's repair makes the whole consistent.
            Err(e) if salvage => report.unapplied.push((r.seq, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    report.carried_frames = carried.live(&base);
    report.covers_seq = covers_seq;
    report.first_log_seq = records.first().map(|r| r.seq);
    report.acknowledged_tag = records
        .iter()
        .find(|r| r.seq == acknowledged && acknowledged > 0)
        .map(|r| r.tag);
    report.closed_cleanly = records.last().is_some_and(|r| {
        matches!(
            UnifiedEntry::decode(&r.payload),
            Ok(UnifiedEntry::Close { .. })
        )
    });
    let orphans = if read_only {
        Vec::new()
    } else {
        base.orphans()
    };
    if !orphans.is_empty() {
        for &ino in &orphans {
            let forget = UnifiedEntry::Forget { ino };
            base.apply(&forget)?;
            log.append(forget.encode())?;
        }
        log.sync()?;
        report.orphans_reclaimed = orphans;
        report.decrypt_checkpoint = None; // the frames changed
    }
    Ok((base, log, report))
}
