//! Byte layout of log files (FORMAT.md §7).
//!
//! ```text
//! log file  = header ‖ record*
//! header (64 bytes):
//!   0  8 magic "fusefslg"        8 1 version 1       9 3 reserved 0
//!  12  4 header length = 64     16 16 vault id
//!  32  8 file number (u64)      40 16 file id (random; the file's key is
//!                                      vault::config::subkey(master, "log", file id))
//!  56  8 sequence number of the file's first record
//! record:
//!   0  4 sealed length P (u32): payload + 16-byte tag, 17 ≤ P ≤ MAX_RECORD + 16
//!   4  8 sequence number (u64; consecutive across files)
//!  12  4 CRC-32 (IEEE) of bytes 0..12 and the P sealed bytes
//!  16  P AEAD(file key, nonce = record index in file (u64 LE) ‖ 0u32,
//!           AAD = vault id ‖ file number ‖ sequence number)
//! ```
//!
//! The name (`log/NNNNNNNNNNNNNNNN.ulog`) and the header's first 40 bytes are
//! those of every numbered vault file ([`crate::vaultfile`]).
//!
//! The checksum tells a torn or never-written tail (which recovery cuts)
//! from data that was written whole: a record whose checksum holds but which
//! does not open was tampered with. Counter nonces are safe because every
//! file has its own random key and a file is never appended to after it was
//! closed or after a crash (recovery starts a new file).

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
pub const LOG_HEADER_LEN: usize = VAULT_FILE_HEADER_LEN;
/// Log files among the numbered vault files.
pub const LOG_FILE: VaultFileKind = VaultFileKind {
    magic: LOG_MAGIC,
    version: 1,
    extension: "ulog",
};
pub const RECORD_HEADER_LEN: usize = 16;
/// Largest record payload (a snapshot never goes through the log).
pub const MAX_RECORD: usize = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFileHeader {
    pub vault_id: [u8; 16],
    pub number: u64,
    pub file_id: [u8; 16],
    pub first_seq: u64,
}

impl LogFileHeader {
    pub fn encode(&self) -> [u8; LOG_HEADER_LEN] {
        let mut b = LOG_FILE.encode_header(&self.vault_id, self.number);
        b[40..56].copy_from_slice(&self.file_id);
        b[56..64].copy_from_slice(&self.first_seq.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<LogFileHeader> {
        let bad = |m: &str| Error::LogCorrupt(format!("log file header: {m}"));
        let p = LOG_FILE.decode_header(b).map_err(|e| match e {
            PrefixError::Truncated(_) => bad("truncated"),
            PrefixError::BadMagic => bad("bad magic"),
            PrefixError::Version(v) => Error::UnsupportedVersion(v),
            PrefixError::Layout => bad("unknown layout"),
        })?;
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&b[40..56]);
        Ok(LogFileHeader {
            vault_id: p.vault_id,
            number: p.number,
            file_id,
            first_seq: u64::from_le_bytes(b[56..64].try_into().expect("8")),
        })
    }
}

pub fn record_nonce(index_in_file: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&index_in_file.to_le_bytes());
    n
}

fn record_aad(vault_id: &[u8; 16], number: u64, seq: u64) -> [u8; 32] {
    let mut a = [0u8; 32];
    a[..16].copy_from_slice(vault_id);
    a[16..24].copy_from_slice(&number.to_le_bytes());
    a[24..32].copy_from_slice(&seq.to_le_bytes());
    a
}

fn checksum(head: &[u8], sealed: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(head);
    h.update(sealed);
    h.finalize()
}

/// Append the encoded record for `payload` to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    key: &AeadKey,
    header: &LogFileHeader,
    index_in_file: u64,
    seq: u64,
    payload: &[u8],
) {
    let start = out.len();
    let p = (payload.len() + TAG_LEN) as u32;
    out.extend_from_slice(&p.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let body = out.len();
    out.extend_from_slice(payload);
    let tag = key.seal(
        &record_nonce(index_in_file),
        &record_aad(&header.vault_id, header.number, seq),
        &mut out[body..],
    );
    out.extend_from_slice(&tag);
    let crc = checksum(&out[start..start + 12], &out[body..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
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

/// Look at the record starting at `at` in `file` (a whole log file's bytes).
pub fn parse_record(file: &[u8], at: usize) -> Parsed {
    if at == file.len() {
        return Parsed::End;
    }
    if file.len() - at < RECORD_HEADER_LEN {
        return Parsed::Broken;
    }
    let h = &file[at..at + RECORD_HEADER_LEN];
    let p = u32::from_le_bytes(h[0..4].try_into().expect("4")) as usize;
    if !(TAG_LEN + 1..=MAX_RECORD + TAG_LEN).contains(&p) || file.len() - at - RECORD_HEADER_LEN < p
    {
        return Parsed::Broken;
    }
    let sealed = &file[at + RECORD_HEADER_LEN..at + RECORD_HEADER_LEN + p];
    let crc = u32::from_le_bytes(h[12..16].try_into().expect("4"));
    if checksum(&h[..12], sealed) != crc {
        return Parsed::Broken;
    }
    let seq = u64::from_le_bytes(h[4..12].try_into().expect("8"));
    Parsed::Record {
        seq,
        sealed_at: at + RECORD_HEADER_LEN,
        sealed_len: p,
        len: RECORD_HEADER_LEN + p,
    }
}

/// Open a record's payload (checksum already verified).
pub fn open_record(
    key: &AeadKey,
    header: &LogFileHeader,
    index_in_file: u64,
    seq: u64,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let mut buf = sealed.to_vec();
    let n = key
        .open(
            &record_nonce(index_in_file),
            &record_aad(&header.vault_id, header.number, seq),
            &mut buf,
        )
        .map_err(|_| Error::LogCorrupt(format!("log record {seq} failed authentication")))?;
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_and_what_each_fault_reports() {
        let h = LogFileHeader {
            vault_id: [1; 16],
            number: 2,
            file_id: [3; 16],
            first_seq: 4,
        };
        let b = h.encode();
        assert_eq!(&b[0..16], b"fusefslg\x01\0\0\0\x40\0\0\0");
        assert_eq!(&b[16..32], &[1; 16]);
        assert_eq!(&b[32..40], &2u64.to_le_bytes());
        assert_eq!(&b[40..56], &[3; 16]);
        assert_eq!(&b[56..64], &4u64.to_le_bytes());
        assert_eq!(LogFileHeader::decode(&b).unwrap(), h);
        let msg = |changes: &[(usize, u8)], len: usize| {
            let mut c = b;
            for &(at, v) in changes {
                c[at] = v;
            }
            LogFileHeader::decode(&c[..len])
                .err()
                .map(|e| e.to_string())
        };
        let damaged = |m: &str| Some(format!("log damaged: log file header: {m}"));
        assert_eq!(msg(&[], 63), damaged("truncated"));
        assert_eq!(msg(&[(7, b'G')], 64), damaged("bad magic"));
        assert_eq!(msg(&[(8, 2)], 64), Some("unsupported version 2".into()));
        assert_eq!(msg(&[(11, 1)], 64), damaged("unknown layout"));
        assert_eq!(msg(&[(15, 1)], 64), damaged("unknown layout"));
        // The version is judged before the layout.
        assert_eq!(
            msg(&[(8, 2), (9, 1)], 64),
            Some("unsupported version 2".into())
        );
    }

    #[test]
    fn names() {
        assert_eq!(LOG_FILE.file_name(1), "0000000000000001.ulog");
        assert_eq!(LOG_FILE.parse_file_name("00000000000000ff.ulog"), Some(255));
        assert_eq!(LOG_FILE.parse_file_name("0000000000000000.ulog"), Some(0));
        for bad in [
            "00000000000000FF.ulog",
            "ff.ulog",
            "00000000000000ff.pack",
            "00000000000000ff.ulog.tmp",
        ] {
            assert_eq!(LOG_FILE.parse_file_name(bad), None, "{bad}");
        }
    }
}
