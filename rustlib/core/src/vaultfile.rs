//! Numbered vault files: the log's files, the packs and the snapshots share
//! a name format and the first 40 bytes of a 64-byte header (FORMAT.md §7.1,
//! §8.1, §9.4). Each kind keeps its own magic, version, extension and the
//! last 24 bytes of the header.
//!
//! ```text
//! name    NNNNNNNNNNNNNNNN.ext: the file's number in 16 lowercase hex digits
//!         log/*.ulog, packs/*.pack, snap/*.snap
//! header  (64 bytes; a snapshot calls it its prefix)
//!   0  8 magic (the kind's)        8  1 version          9  3 reserved 0
//!  12  4 header length = 64 (u32) 16 16 vault id
//!  32  8 file number (u64)        40 24 the kind's own fields
//! ```
//!
//! It sits at the crate root beside [`crate::sealed`], below `log/`, `packs/`
//! and `snapshot`, rather than in `storage/`: it is a byte layout and does no
//! I/O, while `storage` is the file-system trait every kind writes through.

/// Length of the header (a snapshot's prefix).
pub const VAULT_FILE_HEADER_LEN: usize = 64;
/// Where the kind's own fields start in the header.
pub const KIND_FIELDS_OFFSET: usize = 40;

/// One kind of numbered file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaultFileKind {
    pub magic: &'static [u8; 8],
    pub version: u8,
    /// The header's length (the value of its bytes 12‥15): 64, except for
    /// version 2 log files (80: a chain value follows).
    pub header_len: usize,
    /// The name's extension, without the dot.
    pub extension: &'static str,
}

/// The shared fields of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub vault_id: [u8; 16],
    pub number: u64,
}

/// The first shared check a header fails, in the order they are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// Fewer than 64 bytes (this many).
    Truncated(usize),
    BadMagic,
    /// The magic is the kind's, the version (this one) is not.
    Version(u8),
    /// Reserved bytes not zero, or a header length other than 64.
    Layout,
}

impl VaultFileKind {
    /// `NNNNNNNNNNNNNNNN.ext` for `number`.
    pub fn file_name(&self, number: u64) -> String {
        format!("{number:016x}.{}", self.extension)
    }

    /// The number in a file name of this kind: exactly 16 lowercase hex
    /// digits, a dot and the extension; any number, 0 included (what a kind
    /// accepts beyond that is its own rule). Anything else is not this
    /// kind's file (`None`): uppercase digits, other lengths, a sign,
    /// another extension, a `.tmp` suffix.
    pub fn parse_file_name(&self, name: &str) -> Option<u64> {
        let hex = name.strip_suffix(self.extension)?.strip_suffix('.')?;
        if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    }

    /// A header with the shared fields set and the kind's own fields zero.
    pub fn encode_header(&self, vault_id: &[u8; 16], number: u64) -> [u8; VAULT_FILE_HEADER_LEN] {
        let mut b = [0u8; VAULT_FILE_HEADER_LEN];
        b[0..8].copy_from_slice(self.magic);
        b[8] = self.version;
        b[12..16].copy_from_slice(&(self.header_len as u32).to_le_bytes());
        b[16..32].copy_from_slice(vault_id);
        b[32..40].copy_from_slice(&number.to_le_bytes());
        b
    }

    /// Check the shared fields of `b` (a header, or a longer buffer that
    /// starts with one) in this order: length, magic, version, layout.
    /// The kind's own fields are not looked at.
    pub fn decode_header(&self, b: &[u8]) -> Result<Prefix, PrefixError> {
        if b.len() < VAULT_FILE_HEADER_LEN {
            return Err(PrefixError::Truncated(b.len()));
        }
        if &b[0..8] != self.magic {
            return Err(PrefixError::BadMagic);
        }
        if b[8] != self.version {
            return Err(PrefixError::Version(b[8]));
        }
        if b[9..12] != [0, 0, 0] || b[12..16] != (self.header_len as u32).to_le_bytes() {
            return Err(PrefixError::Layout);
        }
        let mut vault_id = [0u8; 16];
        vault_id.copy_from_slice(&b[16..32]);
        Ok(Prefix {
            vault_id,
            number: u64::from_le_bytes(b[32..40].try_into().expect("8 bytes")),
        })
    }
}

/// Whether the reserved bytes of header `b` (at least 16 bytes) are zero and
/// its header length is 64.
pub fn layout_ok(b: &[u8]) -> bool {
    b[9..12] == [0, 0, 0] && b[12..16] == (VAULT_FILE_HEADER_LEN as u32).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: VaultFileKind = VaultFileKind {
        magic: b"fusefsXX",
        version: 3,
        header_len: 64,
        extension: "xx",
    };

    #[test]
    fn names() {
        assert_eq!(KIND.file_name(0xab), "00000000000000ab.xx");
        assert_eq!(KIND.file_name(u64::MAX), "ffffffffffffffff.xx");
        assert_eq!(KIND.parse_file_name("00000000000000ab.xx"), Some(0xab));
        assert_eq!(KIND.parse_file_name("0000000000000000.xx"), Some(0));
        assert_eq!(KIND.parse_file_name("ffffffffffffffff.xx"), Some(u64::MAX));
        for bad in [
            "00000000000000AB.xx",
            "+00000000000000a.xx",
            "00000000000000ab",
            "00000000000000abxx",
            "0000000000000ab.xx",
            "000000000000000ab.xx",
            "00000000000000ab.xx.tmp",
            "00000000000000ab.yy",
            "00000000000000éa.xx",
            ".xx",
        ] {
            assert_eq!(KIND.parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_layout_and_each_check_in_order() {
        let b = KIND.encode_header(&[7; 16], 0x0102);
        assert_eq!(&b[0..8], b"fusefsXX");
        assert_eq!(b[8], 3);
        assert_eq!(&b[9..12], &[0, 0, 0]);
        assert_eq!(&b[12..16], &64u32.to_le_bytes());
        assert_eq!(&b[16..32], &[7; 16]);
        assert_eq!(&b[32..40], &0x0102u64.to_le_bytes());
        assert_eq!(&b[40..], &[0; 24]);
        let p = Prefix {
            vault_id: [7; 16],
            number: 0x0102,
        };
        assert_eq!(KIND.decode_header(&b), Ok(p));
        let mut kind_fields = b;
        kind_fields[40..].fill(0xff);
        assert_eq!(KIND.decode_header(&kind_fields), Ok(p));
        assert_eq!(
            KIND.decode_header(&b[..63]),
            Err(PrefixError::Truncated(63))
        );
        let with = |changes: &[(usize, u8)]| {
            let mut c = b;
            for &(at, v) in changes {
                c[at] = v;
            }
            KIND.decode_header(&c)
        };
        assert_eq!(with(&[(0, b'F')]), Err(PrefixError::BadMagic));
        assert_eq!(with(&[(8, 1)]), Err(PrefixError::Version(1)));
        assert_eq!(with(&[(9, 1)]), Err(PrefixError::Layout));
        assert_eq!(with(&[(12, 65)]), Err(PrefixError::Layout));
        // Several faults: the first check made wins.
        assert_eq!(with(&[(0, 0), (8, 1)]), Err(PrefixError::BadMagic));
        assert_eq!(with(&[(8, 1), (11, 1)]), Err(PrefixError::Version(1)));
        assert!(layout_ok(&b) && !layout_ok(&with_byte(b, 15, 1)));
    }

    fn with_byte(
        mut b: [u8; VAULT_FILE_HEADER_LEN],
        at: usize,
        v: u8,
    ) -> [u8; VAULT_FILE_HEADER_LEN] {
        b[at] = v;
        b
    }
}
