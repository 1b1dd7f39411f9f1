//! Byte layout of log files (FORMAT.md §7): version 1 (vaults of format 1)
//! and version 2 (chained, padded records; vaults of format 2).
//!
//! ```text
//! log file  = header ‖ record*
//! header (64 bytes in version 1, 80 in version 2):
//!   0  8 magic "fusefslg"        8 1 version 1 or 2   9 3 reserved 0
//!  12  4 header length 64 | 80  16 16 vault id
//!  32  8 file number (u64)      40 16 file id (random; the file's key is
//!                                      vault::config::subkey(master, "log", file id))
//!  56  8 sequence number of the file's first record
//!  64 16 (v2) chain in: the tag of the record before the file's first one
//! record, version 1:
//!   0  4 sealed length P (u32): payload + 16-byte tag, 17 ≤ P ≤ MAX_RECORD + 16
//!   4  8 sequence number (u64; consecutive across files)
//!  12  4 CRC-32 (IEEE) of bytes 0..12 and the P sealed bytes
//!  16  P AEAD(file key, nonce = record index in file (u64 LE) ‖ 0u32,
//!           AAD = vault id ‖ file number ‖ sequence number)
//! record, version 2:
//!   0  4 sealed length P (u32)      4  8 sequence number
//!  12  4 CRC-32 of bytes 0..12      16  4 CRC-32 of the P sealed bytes
//!  20  P AEAD(file key, nonce as in v1,
//!           AAD = vault id ‖ file number ‖ sequence number ‖ chain),
//!        chain = the previous record's tag (the header's chain in for the
//!        first record), plaintext = entry length (u32) ‖ entry ‖ zeros,
//!        padded to `padded_len` (128, 256, … 2048, then 4608, 8704, …)
//! ```
//!
//! The name (`log/NNNNNNNNNNNNNNNN.ulog`) and the header's first 40 bytes are
//! those of every numbered vault file ([`crate::vaultfile`]).
//!
//! The checksum tells a torn or never-written tail (which recovery cuts)
//! from data that was written whole: a record whose checksum holds but which
//! does not open was tampered with. Version 2's header checksum lets a
//! reader tell in constant time whether a record header starts at an
//! offset, so looking for whole records after damage is linear. Counter
//! nonces are safe because every file has its own random key and a file is
//! never appended to after it was closed or after a crash (recovery starts
//! a new file). The chain makes each record's tag commit to every record
//! before it, back to the vault's first (or to the snapshot the log
//! continues): a reader that knows one record's tag knows the whole history
//! up to it.

use crate::constants::{NONCE_LEN, TAG_LEN};
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::crypto::vault_keys::{purpose, subkey};
use crate::error::{Error, Result};
use crate::types::Cipher;
use crate::vaultfile::{PrefixError, VaultFileKind, VAULT_FILE_HEADER_LEN};

/// The key of one log file's records: subkey(master, "log", the file's id).
pub fn file_key(master: &SecretKey, cipher: Cipher, file_id: &[u8; 16]) -> AeadKey {
    AeadKey::new(cipher, &subkey(master, purpose::LOG, file_id))
}

pub const LOG_MAGIC: &[u8; 8] = b"fusefslg";
/// Length of a version 1 header (the shorter: what every header starts with).
pub const LOG_HEADER_LEN: usize = VAULT_FILE_HEADER_LEN;
/// Log files among the numbered vault files (version 1).
pub const LOG_FILE: VaultFileKind = VaultFileKind {
    magic: LOG_MAGIC,
    version: 1,
    header_len: LOG_HEADER_LEN,
    extension: "ulog",
};
/// Version 2 log files: the header ends with the chain in.
pub const LOG_FILE_V2: VaultFileKind = VaultFileKind {
    header_len: LOG_HEADER_LEN + CHAIN_LEN,
    version: 2,
    ..LOG_FILE
};
pub const RECORD_HEADER_LEN: usize = 16;
/// Largest entry a record carries (a snapshot never goes through the log).
pub const MAX_RECORD: usize = 16 << 20;
/// Length of a chain value (a record's tag).
pub const CHAIN_LEN: usize = TAG_LEN;
/// The chain before a vault's first record.
pub const CHAIN_START: [u8; CHAIN_LEN] = [0; CHAIN_LEN];

/// The two layouts of log files and their records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    V1,
    #[default]
    V2,
}

impl LogFormat {
    pub fn kind(self) -> VaultFileKind {
        match self {
            LogFormat::V1 => LOG_FILE,
            LogFormat::V2 => LOG_FILE_V2,
        }
    }
    pub fn header_len(self) -> usize {
        self.kind().header_len
    }
    pub fn record_header_len(self) -> usize {
        match self {
            LogFormat::V1 => RECORD_HEADER_LEN,
            LogFormat::V2 => RECORD_HEADER_LEN + 4,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFileHeader {
    pub format: LogFormat,
    pub vault_id: [u8; 16],
    pub number: u64,
    pub file_id: [u8; 16],
    pub first_seq: u64,
    /// Version 2: the tag of the record before the first one (what the
    /// first record's AAD commits to); [`CHAIN_START`] in version 1.
    pub chain_in: [u8; CHAIN_LEN],
}

impl LogFileHeader {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self
            .format
            .kind()
            .encode_header(&self.vault_id, self.number)
            .to_vec();
        b[40..56].copy_from_slice(&self.file_id);
        b[56..64].copy_from_slice(&self.first_seq.to_le_bytes());
        if self.format == LogFormat::V2 {
            b.extend_from_slice(&self.chain_in);
        }
        b
    }

    /// Its length in the file (64 or 80 bytes).
    pub fn encoded_len(&self) -> usize {
        self.format.header_len()
    }

    pub fn decode(b: &[u8]) -> Result<LogFileHeader> {
        let bad = |m: &str| Error::LogCorrupt(format!("log file header: {m}"));
        let format = match b.get(8) {
            Some(2) if b.len() >= 8 && &b[..8] == LOG_MAGIC => LogFormat::V2,
            _ => LogFormat::V1,
        };
        let kind = format.kind();
        let p = kind.decode_header(b).map_err(|e| match e {
            PrefixError::Truncated(_) => bad("truncated"),
            PrefixError::BadMagic => bad("bad magic"),
            PrefixError::Version(v) => Error::UnsupportedVersion(v),
            PrefixError::Layout => bad("unknown layout"),
        })?;
        if b.len() < kind.header_len {
            return Err(bad("truncated"));
        }
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&b[40..56]);
        let mut chain_in = CHAIN_START;
        if format == LogFormat::V2 {
            chain_in.copy_from_slice(&b[64..80]);
        }
        Ok(LogFileHeader {
            format,
            vault_id: p.vault_id,
            number: p.number,
            file_id,
            first_seq: u64::from_le_bytes(b[56..64].try_into().expect("8")),
            chain_in,
        })
    }
}

pub fn record_nonce(index_in_file: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&index_in_file.to_le_bytes());
    n
}

/// A record's AAD: vault id ‖ file number ‖ sequence number, and in
/// version 2 ‖ the chain (the previous record's tag).
fn record_aad(header: &LogFileHeader, seq: u64, chain: &[u8; CHAIN_LEN]) -> Vec<u8> {
    let mut a = Vec::with_capacity(32 + CHAIN_LEN);
    a.extend_from_slice(&header.vault_id);
    a.extend_from_slice(&header.number.to_le_bytes());
    a.extend_from_slice(&seq.to_le_bytes());
    if header.format == LogFormat::V2 {
        a.extend_from_slice(chain);
    }
    a
}

fn checksum(head: &[u8], sealed: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(sealed);
    h.finalize()
}

/// The padded plaintext length of a version 2 record carrying an entry of
/// `entry_len` bytes: 4 + `entry_len` rounded up to 128, 256, 512, 1024 or
/// 2048, past that to 512 more than a multiple of 4096 (4608, 8704, …).
/// Record lengths then tell an observer a bucket, not an entry's kind or a
/// name's length. The 512 is room for the entry around a 4 KiB write's
/// bytes (an fsync's patch, §9.2 entry 18): its record takes 4608 bytes,
/// not 8192 as when buckets were multiples of 4096; a bucket is as wide as
/// before (4096 bytes past 4608, and 2048..4608 wider than 2048..4096).
pub fn padded_len(entry_len: usize) -> usize {
    let n = 4 + entry_len;
    if n <= 2048 {
        n.next_power_of_two().max(128)
    } else {
        LARGE_RECORD_SLACK + (n - LARGE_RECORD_SLACK).div_ceil(4096) * 4096
    }
}

/// What a large record's padded length has beyond a multiple of 4096.
const LARGE_RECORD_SLACK: usize = 512;

/// The longest padded plaintext a reader accepts: that of an entry of
/// [`MAX_RECORD`] bytes under the first rule of version 2 (multiples of
/// 4096 past 4096), so a record any writer of version 2 made is read. The
/// rule of [`padded_len`] never pads past it.
pub const MAX_PADDED: usize = MAX_RECORD + 4096;

/// Append the encoded record for `payload` (one encoded entry) to `out`;
/// `chain` is the previous record's tag (version 2). Returns this record's
/// tag: the next record's chain.
pub fn encode_record(
    out: &mut Vec<u8>,
    key: &AeadKey,
    header: &LogFileHeader,
    index_in_file: u64,
    seq: u64,
    chain: &[u8; CHAIN_LEN],
    payload: &[u8],
) -> [u8; CHAIN_LEN] {
    let plain_len = match header.format {
        LogFormat::V2 => padded_len(payload.len()),
        LogFormat::V1 => payload.len(),
    };
    encode_padded(
        out,
        key,
        header,
        index_in_file,
        seq,
        chain,
        payload,
        plain_len,
    )
}

/// [`encode_record`] with the padded length given (version 2; version 1
/// pads nothing and takes `payload.len()`).
#[allow(clippy::too_many_arguments)]
fn encode_padded(
    out: &mut Vec<u8>,
    key: &AeadKey,
    header: &LogFileHeader,
    index_in_file: u64,
    seq: u64,
    chain: &[u8; CHAIN_LEN],
    payload: &[u8],
    plain_len: usize,
) -> [u8; CHAIN_LEN] {
    let start = out.len();
    let v2 = header.format == LogFormat::V2;
    let p = (plain_len + TAG_LEN) as u32;
    out.extend_from_slice(&p.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    if v2 {
        out.extend_from_slice(&[0; 4]);
    }
    let body = out.len();
    if v2 {
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out.resize(body + plain_len, 0);
    } else {
        out.extend_from_slice(payload);
    }
    let tag = key.seal(
        &record_nonce(index_in_file),
        &record_aad(header, seq, chain),
        &mut out[body..],
    );
    out.extend_from_slice(&tag);
    if v2 {
        let head = checksum(&out[start..start + 12], &[]);
        out[start + 12..start + 16].copy_from_slice(&head.to_le_bytes());
        let crc = checksum(&out[body..], &[]);
        out[start + 16..start + 20].copy_from_slice(&crc.to_le_bytes());
    } else {
        let crc = checksum(&out[start..start + 12], &out[body..]);
        out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
    }
    tag
}

/// What the bytes at a position of a log file hold.
pub enum Parsed {
    /// A whole record whose checksum holds; `len` bytes long in the file.
    Record {
        seq: u64,
        sealed_at: usize,
        sealed_len: usize,
        len: usize,
    },
    /// The file ends here, exactly at a record boundary.
    End,
    /// A record that is cut short or whose checksum fails: torn, or damaged.
    Broken,
}

/// The sequence number of a record header at `at` if one starts there:
/// in version 2, its own checksum holds (constant time, so a scan for
/// whole records is linear); in version 1, the whole record's checksum
/// holds (the record is read: a scan may take time quadratic in the
/// length of crafted input, see `log::replay`).
pub fn record_starts(file: &[u8], at: usize, format: LogFormat) -> Option<u64> {
    match format {
        LogFormat::V2 => {
            let h = file.get(at..at + format.record_header_len())?;
            let crc = u32::from_le_bytes(h[12..16].try_into().expect("4"));
            (checksum(&h[..12], &[]) == crc)
                .then(|| u64::from_le_bytes(h[4..12].try_into().expect("8")))
        }
        LogFormat::V1 => match parse_record(file, at, format) {
            Parsed::Record { seq, .. } => Some(seq),
            _ => None,
        },
    }
}

/// Look at the record starting at `at` in `file` (a whole log file's bytes).
pub fn parse_record(file: &[u8], at: usize, format: LogFormat) -> Parsed {
    if at >= file.len() {
        // Past the end: a caller reading two copies of a file side by side
        // (`scan::mend`) may ask the shorter one about a longer one's offset.
        return if at == file.len() {
            Parsed::End
        } else {
            Parsed::Broken
        };
    }
    let head_len = format.record_header_len();
    if file.len() - at < head_len {
        return Parsed::Broken;
    }
    let h = &file[at..at + head_len];
    let p = u32::from_le_bytes(h[0..4].try_into().expect("4")) as usize;
    let max = match format {
        LogFormat::V1 => MAX_RECORD + TAG_LEN,
        LogFormat::V2 => MAX_PADDED + TAG_LEN,
    };
    if !(TAG_LEN + 1..=max).contains(&p) || file.len() - at - head_len < p {
        return Parsed::Broken;
    }
    let sealed = &file[at + head_len..at + head_len + p];
    let whole = match format {
        LogFormat::V1 => {
            checksum(&h[..12], sealed) == u32::from_le_bytes(h[12..16].try_into().expect("4"))
        }
        LogFormat::V2 => {
            checksum(&h[..12], &[]) == u32::from_le_bytes(h[12..16].try_into().expect("4"))
                && checksum(sealed, &[]) == u32::from_le_bytes(h[16..20].try_into().expect("4"))
        }
    };
    if !whole {
        return Parsed::Broken;
    }
    let seq = u64::from_le_bytes(h[4..12].try_into().expect("8"));
    Parsed::Record {
        seq,
        sealed_at: at + head_len,
        sealed_len: p,
        len: head_len + p,
    }
}

/// The tag of a record (its sealed bytes' last 16): the next record's chain.
pub fn tag_of(sealed: &[u8]) -> [u8; CHAIN_LEN] {
    sealed[sealed.len() - CHAIN_LEN..].try_into().expect("16")
}

/// Open a record's payload (checksum already verified); `chain` is the
/// previous record's tag (version 2). Version 2's padding is taken off:
/// an entry length that does not fit, or padding that is not zero, is
/// damage.
pub fn open_record(
    key: &AeadKey,
    header: &LogFileHeader,
    index_in_file: u64,
    seq: u64,
    chain: &[u8; CHAIN_LEN],
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let mut buf = sealed.to_vec();
    let n = key
        .open(
            &record_nonce(index_in_file),
            &record_aad(header, seq, chain),
            &mut buf,
        )
        .map_err(|_| Error::LogCorrupt(format!("log record {seq} failed authentication")))?;
    buf.truncate(n);
    if header.format == LogFormat::V1 {
        return Ok(buf);
    }
    let bad = || Error::LogCorrupt(format!("log record {seq}: bad padding"));
    let len = u32::from_le_bytes(buf.get(..4).ok_or_else(bad)?.try_into().expect("4")) as usize;
    if len > buf.len() - 4 || buf[4 + len..].iter().any(|&b| b != 0) {
        return Err(bad());
    }
    buf.truncate(4 + len);
    buf.drain(..4);
    Ok(buf)
}

#[cfg(test)]
mod tests;
