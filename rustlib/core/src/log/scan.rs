//! Finding records in damaged bytes, for replay (`super::replay`): telling
//! a torn tail from damage (is a record after it?), salvage's next record
//! that authenticates, and mending a file from its copy record by record.

use super::format::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::types::Cipher;

/// Bytes a version 1 scan for whole records may checksum before it gives
/// up (see [`whole_record_after`]).
const V1_SCAN_BUDGET: usize = 64 << 20;

/// True if a record starts anywhere after `from` with a sequence number
/// after `after_seq`: then the damage at `from` is not a torn tail. In
/// version 2 a record header carries its own checksum, so each offset costs
/// constant time and the scan is linear. Version 1 has only the whole
/// record's checksum: each candidate is read whole, and crafted input could
/// make the scan quadratic, so it stops after [`V1_SCAN_BUDGET`] bytes and
/// then answers true (damage, reported, rather than a tail cut unproven).
pub(super) fn whole_record_after(
    bytes: &[u8],
    from: usize,
    after_seq: u64,
    format: LogFormat,
) -> bool {
    let head = format.record_header_len();
    let mut budget = V1_SCAN_BUDGET;
    (from + 1..bytes.len().saturating_sub(head)).any(|at| {
        let seq = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("8"));
        if seq <= after_seq {
            return false;
        }
        if format == LogFormat::V1 {
            let p = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
            budget = budget.saturating_sub(p.min(bytes.len() - at));
            if budget == 0 {
                return true;
            }
        }
        record_starts(bytes, at, format).is_some()
    })
}

/// The chain value a record at `at` follows: the header's for the file's
/// first record, else the tag just before it (the previous record's, if
/// that one is whole there).
pub(super) fn chain_before(bytes: &[u8], at: usize, header: &LogFileHeader) -> [u8; CHAIN_LEN] {
    if at <= header.encoded_len() + CHAIN_LEN {
        return header.chain_in;
    }
    bytes[at - CHAIN_LEN..at].try_into().expect("16")
}

/// The next whole record after `from` that opens under `key` and follows
/// `after_seq`: (offset, its sequence number). Cheap fields are checked
/// before the checksum, so a scan is about linear in the bytes.
pub(super) fn next_good_record(
    bytes: &[u8],
    from: usize,
    after_seq: u64,
    key: &AeadKey,
    header: &LogFileHeader,
) -> Option<(usize, u64)> {
    let head = header.format.record_header_len();
    let limit = (bytes.len() / (head + 17)) as u64 + 1;
    for at in from + 1..bytes.len().saturating_sub(head) {
        let seq = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("8"));
        if seq <= after_seq || seq > after_seq.saturating_add(limit) || seq < header.first_seq {
            continue;
        }
        if let Parsed::Record {
            seq,
            sealed_at,
            sealed_len,
            ..
        } = parse_record(bytes, at, header.format)
        {
            let index = seq - header.first_seq;
            let sealed = &bytes[sealed_at..sealed_at + sealed_len];
            let chain = chain_before(bytes, at, header);
            if open_record(key, header, index, seq, &chain, sealed).is_ok() {
                return Some((at, seq));
            }
        }
    }
    None
}

/// Mend `primary` from `copy`, record by record: each record is taken from
/// whichever copy holds it whole and authentic. Both files are written
/// with identical bytes at identical offsets, so records line up. The
/// header is the copy's (`primary`'s, `header`, may be the damage). `None`
/// when the copy is of another file or mends nothing.
pub(super) fn mend(
    primary: &[u8],
    copy: &[u8],
    header: &LogFileHeader,
    cipher: Cipher,
    master: &SecretKey,
) -> Option<(LogFileHeader, Vec<u8>)> {
    let h = LogFileHeader::decode(copy).ok()?;
    if (h.vault_id, h.number) != (header.vault_id, header.number) {
        return None;
    }
    let key = file_key(master, cipher, &h.file_id);
    let mut out = h.encode();
    let mut mended = primary.len() < h.encoded_len() || primary[..h.encoded_len()] != out[..];
    let mut expected = h.first_seq;
    let mut at = h.encoded_len();
    let mut chain = h.chain_in;
    let whole = |bytes: &[u8], at: usize, expected: u64, chain: &[u8; CHAIN_LEN]| match parse_record(
        bytes, at, h.format,
    ) {
        Parsed::Record {
            seq,
            sealed_at,
            sealed_len,
            len,
        } if seq == expected => {
            let sealed = &bytes[sealed_at..sealed_at + sealed_len];
            open_record(&key, &h, seq - h.first_seq, seq, chain, sealed)
                .ok()
                .map(|_| bytes[at..at + len].to_vec())
        }
        _ => None,
    };
    loop {
        let record = match whole(primary, at, expected, &chain) {
            Some(r) => r,
            None => match whole(copy, at, expected, &chain) {
                Some(r) => {
                    mended = true;
                    r
                }
                None => break,
            },
        };
        chain = tag_of(&record);
        at += record.len();
        out.extend_from_slice(&record);
        expected += 1;
    }
    // Nothing either copy holds whole is kept past this point; what
    // follows in the primary is judged by the caller as before.
    if at < primary.len() {
        out.extend_from_slice(&primary[at..]);
    }
    mended.then_some((h, out))
}

/// Bytes of a torn tail that the crash left written: up to its last
/// non-zero byte. The zeros after it are the reserve the writer keeps past
/// its last record (`active::LOG_RESERVE_BYTES`), which held nothing.
pub(super) fn torn_bytes(tail: &[u8]) -> u64 {
    tail.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1) as u64
}
