//! Replay: every log file read back in order at open. A torn tail of the
//! last file is cut (it was never acknowledged), while damage followed by
//! valid records, a gap in sequence numbers or a record that fails
//! authentication is reported as corruption, never dropped silently.

use std::path::Path;

use super::format::*;
use crate::crypto::keys::SecretKey;
use crate::error::{io_at, Error, Result};
use crate::storage::{FileSystem, StorageFile};
use crate::types::Cipher;

/// One record read back by replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// What replay found besides the records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Bytes of torn tail cut from the last file (0 if none).
    pub torn_bytes_cut: u64,
    /// A last file whose header was never completely written, removed.
    pub removed_torn_file: Option<String>,
    pub files: usize,
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

/// True if a whole, checksummed record starts anywhere after `from`.
fn valid_record_after(bytes: &[u8], from: usize, after_seq: u64) -> bool {
    (from + 1..bytes.len().saturating_sub(RECORD_HEADER_LEN))
        .any(|at| matches!(parse_record(bytes, at), Parsed::Record { seq, .. } if seq > after_seq))
}

/// Replay all files; returns records, report, last file number, next sequence number.
pub(super) fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    vault_id: &[u8; 16],
    master: &SecretKey,
    cipher: Cipher,
    min_next_seq: u64,
) -> Result<(Vec<LogRecord>, ReplayReport, u64, u64)> {
    let mut numbers: Vec<(u64, String)> = fs
        .list(dir)
        .map_err(io_at("cannot list", dir))?
        .into_iter()
        .filter_map(|n| LOG_FILE.parse_file_name(&n).map(|num| (num, n)))
        .collect();
    numbers.sort();
    let mut report = ReplayReport {
        files: numbers.len(),
        ..Default::default()
    };
    let mut records = Vec::new();
    let mut next_seq: Option<u64> = None;
    let mut last_number = 0;
    let count = numbers.len();
    for (i, (number, name)) in numbers.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let path = dir.join(&name);
        let corrupt = |m: String| Error::LogCorrupt(format!("{name}: {m}"));
        let file = fs.open(&path).map_err(io_at("cannot open", &path))?;
        let bytes = read_whole(&*file, &path)?;
        last_number = number;
        if bytes.len() < LOG_HEADER_LEN && is_last {
            // Crashed while creating the file: nothing in it was ever acknowledged.
            fs.remove(&path).map_err(io_at("cannot remove", &path))?;
            fs.sync_dir(dir).map_err(io_at("cannot sync", dir))?;
            report.removed_torn_file = Some(name);
            continue;
        }
        let header = LogFileHeader::decode(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if header.vault_id != *vault_id {
            return Err(corrupt("belongs to another vault".into()));
        }
        if header.number != number {
            return Err(corrupt(format!("header says file {}", header.number)));
        }
        match next_seq {
            // A gap is harmless where a snapshot covers everything before the
            // later file (a compaction deletes the files it covers one by one;
            // a crash may keep any subset of them).
            Some(expected) if header.first_seq > expected && header.first_seq <= min_next_seq => {}
            Some(expected) if header.first_seq != expected => {
                return Err(corrupt(format!(
                    "starts at record {}, expected {expected} (a log file is missing)",
                    header.first_seq
                )))
            }
            _ => {}
        }
        let key = file_key(master, cipher, &header.file_id);
        let mut expected = header.first_seq;
        let mut at = LOG_HEADER_LEN;
        let mut index = 0u64;
        loop {
            match parse_record(&bytes, at) {
                Parsed::End => break,
                Parsed::Record {
                    seq,
                    sealed_at,
                    sealed_len,
                    len,
                } => {
                    if seq != expected {
                        return Err(corrupt(format!(
                            "record {seq} where {expected} was expected"
                        )));
                    }
                    let payload = open_record(
                        &key,
                        &header,
                        index,
                        seq,
                        &bytes[sealed_at..sealed_at + sealed_len],
                    )
                    .map_err(|e| corrupt(e.to_string()))?;
                    records.push(LogRecord { seq, payload });
                    expected += 1;
                    index += 1;
                    at += len;
                }
                Parsed::Broken => {
                    if !is_last || valid_record_after(&bytes, at, expected.saturating_sub(1)) {
                        return Err(corrupt(format!(
                            "damaged record at offset {at}, followed by more data"
                        )));
                    }
                    // A torn tail: written but never synced, so never acknowledged.
                    file.set_len(at as u64)
                        .map_err(io_at("cannot truncate", &path))?;
                    file.sync_data().map_err(io_at("cannot sync", &path))?;
                    report.torn_bytes_cut = (bytes.len() - at) as u64;
                    break;
                }
            }
        }
        next_seq = Some(expected);
    }
    Ok((records, report, last_number, next_seq.unwrap_or(1)))
}
