//! The vault checker: every invariant of an open vault, one function each,
//! each finding named by its check, the inode and (where it has one) the
//! path. `fusefs fsck` runs it; so does the end of every engine and mount
//! test (a clean vault finds nothing).
//!
//! * [`finding`]: what a check reports;
//! * [`state_checks`]: the metadata state alone (tree, link and
//!   subdirectory counts, segment maps, shared frames, records, pack
//!   accounting);
//! * here: the state against the disk: pack files missing, too short, or
//!   referenced by nothing, and (unless `quick`) every frame a segment map
//!   points at read and authenticated, as the data path reads it.
//!
//! * [`repair`]: the repaired form of a state; here, with
//!   `FsckOptions::repair`, it is installed and the rest mended (copies
//!   rewritten, unreferenced packs deleted), then everything is checked
//!   again.
//!
//! Opening the vault is itself the first check: the config must unlock and
//! authenticate, and the snapshot and log must replay, each mended from its
//! copy where it is damaged (a file damaged in both copies fails the open,
//! with the reason, unless it is opened with salvage: then the records that
//! could not be read or applied are findings here).

pub mod damage;
pub mod finding;
pub mod repair;
pub mod state_checks;

pub use finding::{Check, Finding};

use std::collections::HashMap;

use crate::error::Result;
use crate::metadata::paths::PathIndex;
use crate::metadata::{InodeKind, MetadataState, UnifiedEntry};
use crate::pipeline::for_each_split;
use crate::vault::Vault;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsckOptions {
    /// Metadata only: no frame is read.
    pub quick: bool,
    /// Repair what can be repaired, then check again.
    pub repair: bool,
    /// How often the frame pass records a DecryptCheckpoint, for an
    /// interrupted check to resume from (`None`: every
    /// [`CHECKPOINT_INTERVAL`]).
    pub checkpoint_every: Option<std::time::Duration>,
}

/// How often a check of every frame records how far it got.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// What a check found, and how much it looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    pub findings: Vec<Finding>,
    pub inodes: u64,
    pub directories: u64,
    pub files: u64,
    pub packs: u64,
    /// Frames read and authenticated (0 with `quick`), and their plaintext bytes.
    pub frames_verified: u64,
    /// Of those, frames an interrupted earlier check had verified: this
    /// one resumed after them (its DecryptCheckpoint).
    pub frames_resumed: u64,
    pub bytes_verified: u64,
    /// With repair: what it changed, a line each.
    pub repairs: Vec<String>,
    /// With repair: what the check after it still found.
    pub remaining: Vec<Finding>,
    /// Damaged segments found (inode, (index, generation, start, end)):
    /// what a repair records ([`damage`]).
    pub damaged: Vec<(u64, damage::Damaged)>,
    /// Damage recorded by an earlier repair, a line each (not findings).
    pub known_damage: Vec<String>,
    /// Metadata files whose copy is missing or differs (what `Copy`
    /// findings name; what repair rewrites).
    pub copies_differing: Vec<String>,
}

impl FsckReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Frames verified per round; progress is reported between rounds.
const ROUND: usize = 512;

/// Check `vault`; `progress(done, total)` is called with plaintext bytes of
/// frames verified (0, 0 with `quick`).
pub fn check(
    vault: &Vault,
    opts: FsckOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<FsckReport> {
    let mut report = check_once(vault, opts, true, progress)?;
    if opts.repair && !report.findings.is_empty() {
        report.repairs = repair_vault(vault, &report)?;
        let after = check_once(vault, opts, false, &mut |_, _| {})?;
        report.remaining = after.findings;
    }
    Ok(report)
}

/// Repair what `report` found; returns what was done.
fn repair_vault(vault: &Vault, report: &FsckReport) -> Result<Vec<String>> {
    let findings = &report.findings;
    let mut done = Vec::new();
    let has = |c: Check| findings.iter().any(|f| f.check == c);
    let s = vault.state_copy();
    let now = crate::vault::engine::now();
    let (mut repaired, mut changes) = repair::repair_state(&s, &|i| vault.in_use(i), now);
    let on_disk: HashMap<u64, u64> = vault.pack_files()?.into_iter().collect();
    changes.extend(repair::record_damage(
        &mut repaired,
        &report.damaged,
        &on_disk,
    ));
    if !changes.is_empty() || has(Check::LostRecords) {
        let r = vault.install_repaired_state(repaired)?;
        done.extend(changes);
        done.push(format!(
            "wrote snapshot {} of the repaired state (covers log records up to {}; {} log files it replaces removed)",
            r.snapshot, r.covers_seq, r.log_files_deleted
        ));
    }
    for f in findings
        .iter()
        .filter(|f| f.check == Check::UnreferencedPack)
    {
        if let Some(p) = f.pack {
            vault.delete_unreferenced_pack(p)?;
            done.push(format!("deleted pack {p}, which nothing refers to"));
        }
    }
    for name in &report.copies_differing {
        vault.refresh_copy(name)?;
        done.push(format!("rewrote the copy of {name} from the file"));
    }
    Ok(done)
}

/// One pass of every check; `with_log` adds what opening could not read.
fn check_once(
    vault: &Vault,
    opts: FsckOptions,
    with_log: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<FsckReport> {
    let s = vault.state_copy();
    let mut findings = state_checks::check_state(&s);
    // A nameless inode still open, or still known to the kernel, lives on
    // by design (it is reclaimed when the last reference goes).
    findings.retain(|f| !(f.check == Check::Orphan && f.ino.is_some_and(|i| vault.in_use(i))));
    let on_disk: HashMap<u64, u64> = vault.pack_files()?.into_iter().collect();
    // Opened to write nothing, packs the state does not know are not
    // findings: a writer beside us filling them (its records not durable
    // yet), or what a crash left, which a read-write open removes as strays.
    let unknown_packs_are_findings = !vault.read_only();
    findings.extend(check_pack_files(
        &s,
        &on_disk,
        vault.active_pack(),
        unknown_packs_are_findings,
    ));
    let copies_differing = vault.differing_copies();
    for name in &copies_differing {
        findings.push(Finding::new(
            Check::Copy,
            None,
            format!("the copy of {name} (mirror/{name}) is missing or differs"),
        ));
    }
    if with_log {
        findings.extend(lost_records(vault));
    }
    findings.extend(stale_damage_records(&s));
    let mut report = FsckReport {
        copies_differing,
        inodes: s.inodes.len() as u64,
        directories: s.dirs.len() as u64,
        files: s
            .inodes
            .values()
            .filter(|i| i.kind == InodeKind::File)
            .count() as u64,
        packs: on_disk.len() as u64,
        ..Default::default()
    };
    if !opts.quick {
        let every = opts.checkpoint_every.unwrap_or(CHECKPOINT_INTERVAL);
        // (Only the first pass resumes: the one after a repair sees other frames.)
        let resume = with_log;
        findings.extend(verify_frames(
            &s,
            vault,
            &mut report,
            every,
            resume,
            progress,
        ));
    }
    let paths = PathIndex::new(&s);
    for f in &mut findings {
        if f.path.is_none() {
            f.path = f.ino.and_then(|i| paths.path(&s, i));
        }
    }
    findings.sort_by_key(|f| (f.check, f.ino));
    report.findings = findings;
    Ok(report)
}

/// Damage records (see [`damage`]) of segments the file no longer has in
/// that generation: written again since, or cut off.
fn stale_damage_records(s: &MetadataState) -> Vec<Finding> {
    let mut out = Vec::new();
    for (&ino, inode) in s.inodes.iter() {
        let Some(v) = inode.xattrs.get(damage::DAMAGE_XATTR) else {
            continue;
        };
        for (index, generation, ..) in damage::parse(v) {
            if inode
                .segments
                .get(&index)
                .is_none_or(|r| r.generation != generation)
            {
                out.push(Finding::new(
                    Check::Record,
                    Some(ino),
                    format!("a damage record of segment {index} generation {generation}, which the file no longer has"),
                ));
            }
        }
    }
    out
}

/// What opening with salvage could not read or apply.
fn lost_records(vault: &Vault) -> Vec<Finding> {
    let r = vault.bootstrap_report();
    let mut out: Vec<Finding> = r
        .log
        .lost
        .iter()
        .map(|l| {
            let range = if l.first == l.last {
                format!("record {}", l.first)
            } else {
                format!("records {}..={}", l.first, l.last)
            };
            let file = if l.file.is_empty() {
                String::new()
            } else {
                format!(" in log/{}", l.file)
            };
            Finding::new(
                Check::LostRecords,
                None,
                format!("{range}{file} could not be read: {}", l.why),
            )
        })
        .collect();
    out.extend(r.unapplied.iter().map(|(seq, why)| {
        Finding::new(
            Check::LostRecords,
            None,
            format!("record {seq} was read but not applied: {why}"),
        )
    }));
    out
}

/// Every pack a segment points into exists (`on_disk`: number → length)
/// and is long enough; every pack file on disk is known to the state (else
/// it is space nothing can reach).
fn check_pack_files(
    s: &MetadataState,
    on_disk: &HashMap<u64, u64>,
    active: Option<u64>,
    unknown_are_findings: bool,
) -> Vec<Finding> {
    let mut needed: HashMap<u64, u64> = HashMap::new();
    for (_, inode) in s.inodes.iter() {
        let known = damage::recorded(inode);
        for (&index, r) in inode.segments.iter() {
            if known.contains(&(index, r.generation)) {
                continue;
            }
            let end = needed.entry(r.pack).or_default();
            *end = (*end).max(r.offset + r.stored_len as u64);
        }
    }
    let mut out = Vec::new();
    let mut packs: Vec<(u64, u64)> = needed.into_iter().collect();
    packs.sort_unstable();
    for (p, end) in packs {
        match on_disk.get(&p) {
            None => out.push(Finding::new(
                Check::MissingPack,
                None,
                format!("pack {p} is missing; segments of files point into it"),
            )),
            Some(&len) if len < end => out.push(Finding::new(
                Check::TruncatedPack,
                None,
                format!("pack {p} has {len} bytes; frames reach byte {end}"),
            )),
            _ => {}
        }
    }
    let mut unknown: Vec<u64> = on_disk
        .keys()
        .filter(|&&p| unknown_are_findings && !s.packs.contains_key(&p) && active != Some(p))
        .copied()
        .collect();
    unknown.sort_unstable();
    for p in unknown {
        let mut f = Finding::new(
            Check::UnreferencedPack,
            None,
            format!(
                "pack {p} ({} bytes) is not referenced by the vault",
                on_disk[&p]
            ),
        );
        f.pack = Some(p);
        out.push(f);
    }
    out
}

/// Read and authenticate every frame a segment map points at, on every core.
/// In the order of increasing (inode, segment index), the one a
/// DecryptCheckpoint counts in; every `every`, how far it got is recorded
/// (FORMAT.md §9.2), and a check that finds an unfinished run of the same
/// frames resumes after them.
fn verify_frames(
    s: &MetadataState,
    vault: &Vault,
    report: &mut FsckReport,
    every: std::time::Duration,
    resume: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Vec<Finding> {
    struct Job {
        ino: u64,
        file_id: [u8; 16],
        index: u64,
        r: crate::metadata::SegmentRef,
        error: Option<String>,
    }
    let mut jobs: Vec<Job> = Vec::new();
    let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
    inos.sort_unstable();
    for ino in inos {
        let inode = &s.inodes[&ino];
        for (&index, &r) in inode.segments.iter() {
            jobs.push(Job {
                ino,
                file_id: inode.file_id,
                index,
                r,
                error: None,
            });
        }
    }
    let total: u64 = jobs.iter().map(|j| j.r.plain_len as u64).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut done = 0u64;
    // Resume an interrupted run of these very frames.
    let checkpoint = vault.bootstrap_report().decrypt_checkpoint.clone();
    let (run, skip) = match checkpoint.filter(|_| resume) {
        Some(UnifiedEntry::DecryptCheckpoint {
            run,
            total: t,
            done: d,
            damaged,
        }) if t == jobs.len() as u64 && d <= t => {
            for j in jobs.iter_mut().take(d as usize) {
                if damaged.contains(&(j.ino, j.index)) {
                    j.error = Some("did not read when an interrupted check verified it".into());
                }
            }
            (run, d as usize)
        }
        _ => (crate::crypto::random::bytes().unwrap_or([0; 16]), 0),
    };
    report.frames_resumed = skip as u64;
    done += jobs[..skip]
        .iter()
        .map(|j| j.r.plain_len as u64)
        .sum::<u64>();
    progress(done, total);
    let mut last_checkpoint = std::time::Instant::now();
    let mut verified = skip;
    let mut recording = true;
    let mut recorded = false;
    let count = jobs.len();
    while verified < count {
        let round = &mut jobs[verified..(verified + ROUND).min(count)];
        // Each job keeps its own outcome, so one bad frame stops nothing.
        let _ = for_each_split(threads, round, |j| {
            if let Err(e) = vault.verify_segment(&j.file_id, j.index, &j.r) {
                j.error = Some(e.to_string());
            }
            Ok(())
        });
        done += round.iter().map(|j| j.r.plain_len as u64).sum::<u64>();
        verified += round.len();
        if recording && last_checkpoint.elapsed() >= every && verified < jobs.len() {
            let damaged = jobs[..verified]
                .iter()
                .filter(|j| j.error.is_some())
                .map(|j| (j.ino, j.index))
                .collect();
            let entry = UnifiedEntry::DecryptCheckpoint {
                run,
                total: jobs.len() as u64,
                done: verified as u64,
                damaged,
            };
            // Best effort: a check goes on where its progress cannot be
            // recorded (read-only, format 1, a full disk).
            recording = vault.record_decrypt_checkpoint(entry).unwrap_or(false);
            recorded |= recording;
            last_checkpoint = std::time::Instant::now();
        }
        progress(done, total);
    }
    if report.frames_resumed > 0 || recorded {
        // The run is finished: nothing to resume from any more.
        let _ = vault.record_decrypt_checkpoint(UnifiedEntry::DecryptCheckpoint {
            run,
            total: jobs.len() as u64,
            done: jobs.len() as u64,
            damaged: Vec::new(),
        });
    }
    report.frames_verified = jobs.len() as u64;
    report.bytes_verified = total;
    let paths = PathIndex::new(s);
    jobs.into_iter()
        .filter_map(|j| {
            let (start, end) = state_checks::segment_range(s, j.index, &j.r);
            let e = j.error?;
            if damage::recorded(&s.inodes[&j.ino]).contains(&(j.index, j.r.generation)) {
                let path = paths
                    .path(s, j.ino)
                    .unwrap_or_else(|| format!("inode {}", j.ino));
                report.known_damage.push(format!(
                    "{path}: bytes {start}..{end} (recorded by a repair)"
                ));
                return None;
            }
            report
                .damaged
                .push((j.ino, (j.index, j.r.generation, start, end)));
            Some(e).map(|e| {
                Finding::new(
                    Check::Frame,
                    Some(j.ino),
                    format!(
                        "bytes {start}..{end} (segment {}, pack {} offset {}) cannot be read: {e}",
                        j.index, j.r.pack, j.r.offset
                    ),
                )
            })
        })
        .collect()
}
