//! A pack file's header and name (FORMAT.md §8.1).
//!
//! ```text
//! packs/NNNNNNNNNNNNNNNN.pack  (16 lowercase hex digits, numbered from 1)
//! pack  = header ‖ pack frame*     (frames of many files, interleaved)
//! header (64 bytes):
//!   0  8 magic "fusefspk"          8  1 version 1        9  3 reserved 0
//!  12  4 header length = 64 (u32) 16 16 vault id
//!  32  8 pack number (u64)        40 24 zero
//! ```
//!
//! The name and the first 40 bytes are those of every numbered vault file
//! ([`crate::vaultfile`]).

use std::path::Path;

use crate::error::{io_at, Result};
use crate::storage::FileSystem;
use crate::vaultfile::{PrefixError, VaultFileKind, KIND_FIELDS_OFFSET, VAULT_FILE_HEADER_LEN};

pub const PACK_MAGIC: &[u8; 8] = b"fusefspk";
pub const PACK_VERSION: u8 = 1;
pub const PACK_HEADER_LEN: usize = VAULT_FILE_HEADER_LEN;
/// Packs among the numbered vault files.
pub const PACK_FILE: VaultFileKind = VaultFileKind {
    magic: PACK_MAGIC,
    version: PACK_VERSION,
    header_len: PACK_HEADER_LEN,
    extension: "pack",
};

pub fn pack_file_name(number: u64) -> String {
    PACK_FILE.file_name(number)
}

/// The number of a pack file name (`NNNNNNNNNNNNNNNN.pack`, lowercase hex).
/// Pack numbers start at 1: `0000000000000000.pack` is not a pack.
pub fn parse_pack_file_name(name: &str) -> Option<u64> {
    PACK_FILE.parse_file_name(name).filter(|&n| n > 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackHeader {
    pub vault_id: [u8; 16],
    pub number: u64,
}

impl PackHeader {
    pub fn encode(&self) -> [u8; PACK_HEADER_LEN] {
        PACK_FILE.encode_header(&self.vault_id, self.number)
    }

    /// Decode a header; the error is a reason for `PackCorrupt`.
    pub fn decode(b: &[u8]) -> std::result::Result<PackHeader, String> {
        let layout = || "unknown header layout".to_string();
        let p = PACK_FILE.decode_header(b).map_err(|e| match e {
            PrefixError::Truncated(n) => {
                format!("header truncated ({n} of {PACK_HEADER_LEN} bytes)")
            }
            PrefixError::BadMagic => "not a pack (bad magic)".into(),
            PrefixError::Version(v) => format!("unsupported pack version {v}"),
            PrefixError::Layout => layout(),
        })?;
        // A pack has no fields of its own: the rest of its header is zero.
        if b[KIND_FIELDS_OFFSET..PACK_HEADER_LEN]
            .iter()
            .any(|&x| x != 0)
        {
            return Err(layout());
        }
        Ok(PackHeader {
            vault_id: p.vault_id,
            number: p.number,
        })
    }
}

/// The numbers of the pack files in `dir`, sorted.
pub(super) fn list_packs(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u64>> {
    let mut numbers: Vec<u64> = fs
        .list(dir)
        .map_err(io_at("cannot list", dir))?
        .iter()
        .filter_map(|n| parse_pack_file_name(n))
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejections() {
        let h = PackHeader {
            vault_id: [9; 16],
            number: 0x1234,
        };
        let b = h.encode();
        assert_eq!(&b[0..8], b"fusefspk");
        assert_eq!(b[8], 1);
        assert_eq!(&b[12..16], &64u32.to_le_bytes());
        assert_eq!(&b[32..40], &0x1234u64.to_le_bytes());
        assert!(b[40..].iter().all(|&x| x == 0));
        assert_eq!(PackHeader::decode(&b), Ok(h));
        assert!(PackHeader::decode(&b[..63]).is_err());
        for (at, v) in [(0, b'F'), (8, 2), (9, 1), (12, 65), (63, 1)] {
            let mut bad = b;
            bad[at] = v;
            assert!(PackHeader::decode(&bad).is_err(), "byte {at}");
        }
        // What each fault reports (the reason of a PackCorrupt), and that the
        // version is judged before the layout.
        let reason = |changes: &[(usize, u8)], len: usize| {
            let mut c = b;
            for &(at, v) in changes {
                c[at] = v;
            }
            PackHeader::decode(&c[..len]).unwrap_err()
        };
        assert_eq!(reason(&[], 10), "header truncated (10 of 64 bytes)");
        assert_eq!(reason(&[(0, b'F')], 64), "not a pack (bad magic)");
        assert_eq!(reason(&[(8, 2)], 64), "unsupported pack version 2");
        assert_eq!(reason(&[(8, 2), (9, 1)], 64), "unsupported pack version 2");
        assert_eq!(reason(&[(9, 1)], 64), "unknown header layout");
        assert_eq!(reason(&[(40, 1)], 64), "unknown header layout");
    }

    #[test]
    fn names() {
        assert_eq!(pack_file_name(1), "0000000000000001.pack");
        assert_eq!(parse_pack_file_name("00000000000000ff.pack"), Some(255));
        for bad in [
            "00000000000000FF.pack",
            "0000000000000000.pack",
            "ff.pack",
            "00000000000000ff.ulog",
            "00000000000000ff.pack.tmp",
        ] {
            assert_eq!(parse_pack_file_name(bad), None, "{bad}");
        }
    }
}
