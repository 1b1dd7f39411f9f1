//! Replay: every log file read back in order at open.
//!
//! * A torn tail of the last file is cut (it was never acknowledged).
//! * Files a snapshot covers whole are not read at all: a file is covered
//!   when the next file starts at or before the first record the state
//!   still needs (`min_next_seq`). So damage in a covered file, e.g. one a
//!   repair has already replaced with a snapshot, stops nothing.
//! * Any other damage (a record cut short or failing its checksum with
//!   valid data after it, a gap in sequence numbers, a record that fails
//!   authentication, a damaged header) is first mended from the file's
//!   second copy (`mirror/log/`, [`crate::mirror`]): the record is taken
//!   from the copy, and the damaged file is rewritten from the mended bytes.
//! * Damage neither copy mends is reported as corruption, never dropped
//!   silently; unless `salvage` is asked for (fsck's repair), in which case
//!   reading resumes at the next record that authenticates and the records
//!   that could not be read are listed in [`ReplayReport::lost`].
//!
//! A copy that is missing or differs in length from its file (a crash
//! while the copy lagged or between a compaction's removal of a copy and of
//! its file, a vault from before copies existed) is rewritten from the file,
//! where there is room (on a full disk it stays as it is, for fsck to report).
//!
//! Read-only (`read_only`), replay writes nothing: a torn tail is left in
//! place and ignored, a mended file is used as mended in memory, a file
//! found only as its copy is read from the copy, and no copy is refreshed.

use std::path::Path;

use super::format::*;
use super::scan::{chain_before, mend, next_good_record, torn_bytes, whole_record_after};
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::error::{io_at, Error, Result};
use crate::storage::durable::{copy_durably, try_copy_durably, write_durably};
use crate::storage::{FileSystem, StorageFile};
use crate::types::Cipher;

/// One record read back by replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    pub payload: Vec<u8>,
    /// Its tag: in version 2, the chain value of the history up to it.
    pub tag: [u8; CHAIN_LEN],
}

/// Records salvage could not read: sequence numbers `first..=last` (as far
/// as they can be told), and where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostRecords {
    pub first: u64,
    pub last: u64,
    pub file: String,
    pub why: String,
}

/// What replay found besides the records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Bytes of torn tail cut from the last file (0 if none), not counting
    /// the zeros of the writer's reserve after them.
    pub torn_bytes_cut: u64,
    /// A last file whose header was never completely written, removed.
    pub removed_torn_file: Option<String>,
    pub files: usize,
    /// Files a snapshot covers whole, not read.
    pub files_skipped: usize,
    /// Files whose damage was mended from their copy (and rewritten).
    pub mended_from_copy: Vec<String>,
    /// Copies rewritten from their file (missing, or left behind).
    pub copies_refreshed: usize,
    /// With salvage only: records that could not be read.
    pub lost: Vec<LostRecords>,
    /// With salvage only: files that do not continue the history before
    /// them (version 2's chain), with why; their records were read.
    pub chain_breaks: Vec<String>,
}

/// How to read the log.
pub(super) struct ReplayOptions<'a> {
    pub cipher: Cipher,
    /// The first record the state needs (what a snapshot covers is before it).
    pub min_next_seq: u64,
    /// Where the files' second copies are, if the vault keeps them.
    pub copies: Option<&'a Path>,
    pub salvage: bool,
    pub read_only: bool,
    /// The layout of the files the vault reads (files a snapshot covers
    /// may be of the older one: left by an upgrade, never read).
    pub format: LogFormat,
    /// The chain value of the state the log continues: the tag of record
    /// `min_next_seq - 1` (a snapshot's), or [`CHAIN_START`]; `None` if
    /// not known (a snapshot of format 1).
    pub chain_base: Option<[u8; CHAIN_LEN]>,
    /// Records up to this one were acknowledged: never a torn tail.
    pub acknowledged_seq: u64,
}

fn read_whole(file: &dyn StorageFile, path: &Path) -> Result<Vec<u8>> {
    let len = file.len().map_err(io_at("cannot read", path))? as usize;
    let mut buf = vec![0u8; len];
    let n = file
        .read_at(&mut buf, 0)
        .map_err(io_at("cannot read", path))?;
    buf.truncate(n);
    Ok(buf)
}

fn read_path(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    let file = fs.open_read(path).map_err(io_at("cannot open", path))?;
    read_whole(&*file, path)
}

/// Where reading a file's records stopped before its end.
struct Stop {
    at: usize,
    /// A record cut short or failing its checksum (perhaps a torn tail),
    /// rather than one that is whole but wrong.
    broken: bool,
    why: String,
}

/// The records of one file read from `bytes` (its header already decoded)
/// into `out`, up to the first damage: the next sequence number, and the
/// damage, if reading stopped before the end.
fn read_records(
    bytes: &[u8],
    header: &LogFileHeader,
    key: &AeadKey,
    from_at: usize,
    from_seq: u64,
    out: &mut Vec<LogRecord>,
) -> (u64, Option<Stop>) {
    let mut expected = from_seq;
    let mut at = from_at;
    let mut chain = chain_before(bytes, at, header);
    loop {
        match parse_record(bytes, at, header.format) {
            Parsed::End => return (expected, None),
            Parsed::Broken => {
                let why = format!("damaged record at offset {at}");
                return (
                    expected,
                    Some(Stop {
                        at,
                        broken: true,
                        why,
                    }),
                );
            }
            Parsed::Record {
                seq,
                sealed_at,
                sealed_len,
                len,
            } => {
                let stop = |why: String| {
                    Some(Stop {
                        at,
                        broken: false,
                        why,
                    })
                };
                if seq != expected {
                    let why = format!("record {seq} where {expected} was expected");
                    return (expected, stop(why));
                }
                let index = seq - header.first_seq;
                let sealed = &bytes[sealed_at..sealed_at + sealed_len];
                match open_record(key, header, index, seq, &chain, sealed) {
                    Ok(payload) => {
                        chain = tag_of(sealed);
                        out.push(LogRecord {
                            seq,
                            payload,
                            tag: chain,
                        })
                    }
                    Err(e) => return (expected, stop(e.to_string())),
                }
                expected += 1;
                at += len;
            }
        }
    }
}

/// Replay all files; returns records, report, last file number, next sequence number.
pub(super) fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    vault_id: &[u8; 16],
    master: &SecretKey,
    opts: &ReplayOptions<'_>,
) -> Result<(Vec<LogRecord>, ReplayReport, u64, u64)> {
    let mut report = ReplayReport::default();
    let numbers = list_files(fs, dir, opts, &mut report)?;
    report.files = numbers.len();
    // Each file's first record, from its header (None: unreadable).
    let firsts: Vec<Option<u64>> = numbers
        .iter()
        .map(|(_, _, path)| read_header(fs, path).map(|h| h.first_seq))
        .collect();
    let mut records = Vec::new();
    let mut next_seq: Option<u64> = None;
    // The chain value the next file must start from, when known (the
    // previous file was read).
    let mut chain: Option<[u8; CHAIN_LEN]> = None;
    let mut last_number = 0;
    let count = numbers.len();
    for (i, (number, name, path)) in numbers.iter().enumerate() {
        let (number, name) = (*number, name.as_str());
        last_number = number;
        let is_last = i + 1 == count;
        let copy_path = opts.copies.map(|c| c.join(name));
        if !is_last && matches!(firsts[i + 1], Some(f) if f <= opts.min_next_seq) {
            report.files_skipped += 1;
            chain = None;
            // Not read, but its copy is kept whole (fsck compares them).
            if let (Some(c), false) = (&copy_path, opts.read_only) {
                if fs.file_len(c).ok() != fs.file_len(path).ok() {
                    report.copies_refreshed += try_copy_durably(fs, path, c) as usize;
                }
            }
            continue;
        }
        let corrupt = |m: String| Error::LogCorrupt(format!("{name}: {m}"));
        let mut bytes = read_path(fs, path)?;
        let short = bytes.len() < opts.format.header_len();
        if short && is_last && opts.read_only {
            continue; // as below, in memory only
        }
        if short && is_last {
            // Crashed while creating the file: nothing in it was ever acknowledged.
            fs.remove(path).map_err(io_at("cannot remove", path))?;
            fs.sync_dir(dir).map_err(io_at("cannot sync", dir))?;
            if let Some(c) = &copy_path {
                let _ = fs.remove(c);
            }
            report.removed_torn_file = Some(name.to_string());
            continue;
        }
        let copy = || copy_path.as_ref().and_then(|c| read_path(fs, c).ok());
        let ours = |h: &LogFileHeader| h.vault_id == *vault_id && h.number == number;
        let mut mended = false;
        let header = match LogFileHeader::decode(&bytes) {
            Ok(h) if ours(&h) => h,
            damaged => {
                // A damaged header: the copy's, if it is of this file.
                let from_copy = copy().and_then(|c| {
                    let h = LogFileHeader::decode(&c).ok().filter(|h| ours(h))?;
                    Some((h, c))
                });
                let why = match damaged {
                    Err(e) => e.to_string(),
                    Ok(h) if h.vault_id != *vault_id => "belongs to another vault".into(),
                    Ok(h) => format!("header says file {}", h.number),
                };
                match from_copy {
                    Some((h, c)) => {
                        bytes = c;
                        mended = true;
                        h
                    }
                    None if opts.salvage => {
                        // Its records are lost; the next file says which.
                        let first = next_seq.unwrap_or(opts.min_next_seq);
                        let following = firsts[i + 1..].iter().flatten().next().copied();
                        report.lost.push(LostRecords {
                            first,
                            last: following.map_or(first, |f| f.saturating_sub(1).max(first)),
                            file: name.to_string(),
                            why,
                        });
                        next_seq = following.or(next_seq);
                        continue;
                    }
                    None => return Err(corrupt(why)),
                }
            }
        };
        let header = match copy_header(fs, copy_path.as_deref()) {
            Some(theirs) if theirs != header && !mended => {
                // The two headers differ: one is damaged. Keep the one
                // under which the file reads.
                let works = |h: &LogFileHeader| header_reads(&bytes, h, next_seq, opts, master);
                let same_layout = theirs.format == header.format;
                if !works(&header) && ours(&theirs) && same_layout && works(&theirs) {
                    bytes[..theirs.encoded_len()].copy_from_slice(&theirs.encode());
                    mended = true;
                    theirs
                } else {
                    header
                }
            }
            _ => header,
        };
        match next_seq {
            // A gap is harmless where a snapshot covers everything before the
            // later file (a compaction deletes the files it covers one by one;
            // a crash may keep any subset of them).
            Some(expected)
                if header.first_seq > expected && header.first_seq <= opts.min_next_seq => {}
            Some(expected) if header.first_seq != expected => {
                let why = format!(
                    "starts at record {}, expected {expected} (a log file is missing)",
                    header.first_seq
                );
                if !opts.salvage || header.first_seq < expected {
                    return Err(corrupt(why));
                }
                report.lost.push(LostRecords {
                    first: expected,
                    last: header.first_seq - 1,
                    file: name.to_string(),
                    why,
                });
            }
            _ => {}
        }
        if header.format != opts.format {
            let f = |v: LogFormat| if v == LogFormat::V1 { 1 } else { 2 };
            return Err(corrupt(format!(
                "a log file of format {} in a vault of format {}",
                f(header.format),
                f(opts.format)
            )));
        }
        // The file must continue the history before it: the snapshot's
        // when it starts right after it, else the previous file's.
        let from = match header.first_seq == opts.min_next_seq {
            true => opts.chain_base,
            false => chain,
        };
        if header.format == LogFormat::V2 && from.is_some_and(|c| c != header.chain_in) {
            let why = "does not continue the log before it (its chain differs: \
                       a file of another history, or of an older copy of the vault)";
            if !opts.salvage {
                return Err(corrupt(why.into()));
            }
            report.chain_breaks.push(format!("{name}: {why}"));
        }
        let before = records.len();
        let (header, expected, cut_at) = read_file(
            &mut bytes,
            header,
            name,
            is_last,
            &mut mended,
            &copy,
            master,
            opts,
            &firsts[i + 1..],
            &mut records,
            &mut report,
        )?;
        debug_assert_eq!(header.number, number);
        next_seq = Some(expected);
        let read = &records[before..];
        chain = Some(read.last().map_or(header.chain_in, |r| r.tag));
        // A file holding the record the snapshot covers up to must hold
        // that very record (the snapshot keeps its tag).
        let covers = opts.min_next_seq - 1;
        let at_covers = read.iter().find(|r| r.seq == covers);
        let other = |r: &&LogRecord| opts.chain_base.is_some_and(|c| c != r.tag);
        if header.format == LogFormat::V2 && at_covers.is_some_and(|r| other(&r)) {
            let why = format!(
                "record {covers} is not the one the snapshot was made after (another history)"
            );
            if !opts.salvage {
                return Err(corrupt(why));
            }
            report.chain_breaks.push(format!("{name}: {why}"));
        }
        if opts.read_only {
            // What would be rewritten or cut is used in memory only.
            if mended {
                report.mended_from_copy.push(name.to_string());
            }
            if let Some(cut) = cut_at {
                report.torn_bytes_cut = torn_bytes(&bytes[cut..]);
            }
            continue;
        }
        if mended {
            write_durably(fs, path, &bytes)?;
            report.mended_from_copy.push(name.to_string());
        }
        if let Some(cut) = cut_at {
            let file = fs.open(path).map_err(io_at("cannot open", path))?;
            file.set_len(cut as u64)
                .map_err(io_at("cannot truncate", path))?;
            file.sync_data().map_err(io_at("cannot sync", path))?;
            report.torn_bytes_cut = torn_bytes(&bytes[cut..]);
        }
        if let Some(c) = &copy_path {
            let want = cut_at.unwrap_or(bytes.len()) as u64;
            if fs.file_len(c).ok() != Some(want) {
                if let Some(parent) = c.parent() {
                    fs.create_dir_all(parent)
                        .map_err(io_at("cannot create", parent))?;
                }
                report.copies_refreshed += try_copy_durably(fs, path, c) as usize;
            }
        }
    }
    Ok((records, report, last_number, next_seq.unwrap_or(1)))
}

/// The header of the copy at `path`, if it has one that decodes.
fn copy_header(fs: &dyn FileSystem, path: Option<&Path>) -> Option<LogFileHeader> {
    read_header(fs, path?)
}

/// The header of the log file at `path`, if it has one that decodes.
fn read_header(fs: &dyn FileSystem, path: &Path) -> Option<LogFileHeader> {
    let file = fs.open_read(path).ok()?;
    let mut b = [0u8; LOG_HEADER_LEN + CHAIN_LEN];
    let n = file.read_at(&mut b, 0).ok()?;
    LogFileHeader::decode(&b[..n]).ok()
}

/// True if `header` fits the file `bytes`: its first record (if any) opens
/// under it with the header's first sequence number; with no record, the
/// first sequence number follows the previous file's (if known).
fn header_reads(
    bytes: &[u8],
    header: &LogFileHeader,
    next_seq: Option<u64>,
    opts: &ReplayOptions<'_>,
    master: &SecretKey,
) -> bool {
    match parse_record(bytes, header.encoded_len(), header.format) {
        Parsed::Record {
            seq,
            sealed_at,
            sealed_len,
            ..
        } if seq == header.first_seq => {
            let key = file_key(master, opts.cipher, &header.file_id);
            let sealed = &bytes[sealed_at..sealed_at + sealed_len];
            open_record(&key, header, 0, seq, &header.chain_in, sealed).is_ok()
        }
        Parsed::End => {
            next_seq.is_none_or(|n| n == header.first_seq || header.first_seq <= opts.min_next_seq)
        }
        _ => false,
    }
}

/// Read one file's records into `records`, mending from its copy (once),
/// cutting a torn tail of the last file, and, with salvage, reading past
/// damage. Returns the header in effect (the copy's if it was mended from
/// it), the next sequence number, and where to cut a torn tail.
#[allow(clippy::too_many_arguments)]
fn read_file(
    bytes: &mut Vec<u8>,
    mut header: LogFileHeader,
    name: &str,
    is_last: bool,
    mended: &mut bool,
    copy: &dyn Fn() -> Option<Vec<u8>>,
    master: &SecretKey,
    opts: &ReplayOptions<'_>,
    following: &[Option<u64>],
    records: &mut Vec<LogRecord>,
    report: &mut ReplayReport,
) -> Result<(LogFileHeader, u64, Option<usize>)> {
    let corrupt = |m: String| Error::LogCorrupt(format!("{name}: {m}"));
    let before = records.len();
    let mut key = file_key(master, opts.cipher, &header.file_id);
    let mut at = header.encoded_len();
    let mut expected = header.first_seq;
    loop {
        let (next, stop) = read_records(bytes, &header, &key, at, expected, records);
        expected = next;
        let Some(stop) = stop else {
            return Ok((header, expected, None));
        };
        if !*mended {
            if let Some((h, m)) = copy().and_then(|c| mend(bytes, &c, &header, opts.cipher, master))
            {
                // Read the file again, whole, from the mended bytes.
                *bytes = m;
                *mended = true;
                header = h;
                key = file_key(master, opts.cipher, &header.file_id);
                records.truncate(before);
                at = header.encoded_len();
                expected = header.first_seq;
                continue;
            }
        }
        if stop.broken && is_last && bytes[stop.at..].iter().all(|&b| b == 0) {
            // Zeros to the end of the last file: the writer's reserve
            // (FORMAT.md §7.3), where the records end. Records this machine
            // saw durable and that are not here make the vault one that was
            // rolled back (the local state's check), not a damaged one.
            return Ok((header, expected, Some(stop.at)));
        }
        let after = expected.saturating_sub(1);
        // Records this machine saw durable are never a torn tail, whatever
        // follows them: damage, mended above or reported below.
        let unacknowledged = expected > opts.acknowledged_seq;
        if stop.broken
            && is_last
            && unacknowledged
            && !whole_record_after(bytes, stop.at, after, header.format)
        {
            // A torn tail: written but never synced, so never acknowledged.
            return Ok((header, expected, Some(stop.at)));
        }
        if !opts.salvage {
            let why = if stop.broken {
                format!("{}, followed by more data", stop.why)
            } else {
                stop.why
            };
            return Err(corrupt(why));
        }
        match next_good_record(bytes, stop.at, expected.saturating_sub(1), &key, &header) {
            Some((resume, seq)) => {
                report.lost.push(LostRecords {
                    first: expected,
                    last: seq - 1,
                    file: name.to_string(),
                    why: stop.why,
                });
                at = resume;
                expected = seq;
            }
            None => {
                // Nothing readable follows in this file: what the next file
                // starts at says what was lost.
                let last = following
                    .iter()
                    .flatten()
                    .next()
                    .map_or(expected, |f| f.saturating_sub(1));
                if !is_last || last >= expected {
                    report.lost.push(LostRecords {
                        first: expected,
                        last: last.max(expected),
                        file: name.to_string(),
                        why: stop.why,
                    });
                }
                return Ok((header, expected, is_last.then_some(stop.at)));
            }
        }
    }
}

/// The log files of `dir`, sorted, each with the path to read it from; a
/// file whose copy survives it (the file is missing: copies are deleted
/// before their file, never after) is restored from the copy first (read
/// from the copy when read-only). Copies' leftover temporaries are removed.
/// Read-only, a missing `dir` holds no file.
fn list_files(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &ReplayOptions<'_>,
    report: &mut ReplayReport,
) -> Result<Vec<(u64, String, std::path::PathBuf)>> {
    let listed = |d: &Path| match fs.list(d) {
        Err(e) if opts.read_only && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        r => r.map_err(io_at("cannot list", d)),
    };
    let names = listed(dir)?;
    let mut from_copies = Vec::new();
    if let Some(c) = opts.copies {
        for n in fs.list(c).unwrap_or_default() {
            let p = c.join(&n);
            if opts.read_only {
                if LOG_FILE.parse_file_name(&n).is_some() && !names.contains(&n) {
                    report.mended_from_copy.push(n.clone());
                    from_copies.push((n, p));
                }
            } else if n.ends_with(".fusefs-tmp") {
                fs.remove(&p).map_err(io_at("cannot remove", &p))?;
            } else if LOG_FILE.parse_file_name(&n).is_some() && !names.contains(&n) {
                copy_durably(fs, &p, &dir.join(&n))?;
                report.mended_from_copy.push(n);
            }
        }
    }
    let mut numbers: Vec<(u64, String, std::path::PathBuf)> = listed(dir)?
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            (n, p)
        })
        .chain(from_copies)
        .filter_map(|(n, p)| LOG_FILE.parse_file_name(&n).map(|num| (num, n, p)))
        .collect();
    numbers.sort();
    Ok(numbers)
}
