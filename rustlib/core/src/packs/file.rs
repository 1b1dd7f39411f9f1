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

pub const PACK_MAGIC: &[u8; 8] = b"fusefspk";
pub const PACK_VERSION: u8 = 1;
pub const PACK_HEADER_LEN: usize = 64;

pub fn pack_file_name(number: u64) -> String {
    format!("{number:016x}.pack")
}

/// The number of a pack file name (`NNNNNNNNNNNNNNNN.pack`, lowercase hex).
pub fn parse_pack_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".pack")?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|&n| n > 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackHeader {
    pub vault_id: [u8; 16],
    pub number: u64,
}

impl PackHeader {
    pub fn encode(&self) -> [u8; PACK_HEADER_LEN] {
        let mut b = [0u8; PACK_HEADER_LEN];
        b[0..8].copy_from_slice(PACK_MAGIC);
        b[8] = PACK_VERSION;
        b[12..16].copy_from_slice(&(PACK_HEADER_LEN as u32).to_le_bytes());
        b[16..32].copy_from_slice(&self.vault_id);
        b[32..40].copy_from_slice(&self.number.to_le_bytes());
        b
    }

    /// Decode a header; the error is a reason for `PackCorrupt`.
    pub fn decode(b: &[u8]) -> std::result::Result<PackHeader, String> {
        if b.len() < PACK_HEADER_LEN {
            return Err(format!(
                "header truncated ({} of {PACK_HEADER_LEN} bytes)",
                b.len()
            ));
        }
        if &b[0..8] != PACK_MAGIC {
            return Err("not a pack (bad magic)".into());
        }
        if b[8] != PACK_VERSION {
            return Err(format!("unsupported pack version {}", b[8]));
        }
        if b[9..12] != [0, 0, 0]
            || u32::from_le_bytes(b[12..16].try_into().expect("4")) != PACK_HEADER_LEN as u32
            || b[40..64].iter().any(|&x| x != 0)
        {
            return Err("unknown header layout".into());
        }
        let mut vault_id = [0u8; 16];
        vault_id.copy_from_slice(&b[16..32]);
        Ok(PackHeader {
            vault_id,
            number: u64::from_le_bytes(b[32..40].try_into().expect("8")),
        })
    }
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
