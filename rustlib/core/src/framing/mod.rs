//! v2 stream frames (FORMAT.md §4.1): the 41-byte stream frame header,
//! encoded and decoded, and the AAD that binds a stream frame to its place.
//! (Pack frames, which have no header, are [`crate::packs::frame`]'s.)
//!
//! ```text
//! off len field
//!   0   4 sealed length P (u32 LE): ciphertext + 16-byte tag that follow
//!   4  16 stream id
//!  20   8 segment index (u64 LE); the trailer carries the data-frame count
//!  28   1 kind: 0 data, 1 final data, 2 trailer
//!  29  12 nonce
//!  41   P sealed payload (crate::sealed): AEAD(encoding ‖ body) ‖ tag
//! AAD = header MAC (32) ‖ bytes 0..29
//! ```

use crate::constants::*;
use crate::error::{Error, Result};
use crate::sealed::PAYLOAD_OVERHEAD;

/// What a stream frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFrameKind {
    Data,
    FinalData,
    Trailer,
}

impl StreamFrameKind {
    pub fn id(self) -> u8 {
        match self {
            StreamFrameKind::Data => 0,
            StreamFrameKind::FinalData => 1,
            StreamFrameKind::Trailer => 2,
        }
    }
}

/// The 41-byte header in front of each stream frame's sealed payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamFrameHeader {
    pub sealed_len: u32,
    pub stream_id: [u8; STREAM_ID_LEN],
    pub index: u64,
    pub kind: StreamFrameKind,
    pub nonce: [u8; NONCE_LEN],
}

/// Largest sealed payload of a data frame: encoding byte + segment + tag.
pub fn max_sealed_len(segment_size: u32) -> u32 {
    segment_size + PAYLOAD_OVERHEAD as u32
}

/// Sealed payload length of the trailer.
pub const TRAILER_SEALED_LEN: u32 = (TRAILER_PLAINTEXT_LEN + TAG_LEN) as u32;

impl StreamFrameHeader {
    pub fn encode_into(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.sealed_len.to_le_bytes());
        out[4..20].copy_from_slice(&self.stream_id);
        out[20..28].copy_from_slice(&self.index.to_le_bytes());
        out[28] = self.kind.id();
        out[29..41].copy_from_slice(&self.nonce);
    }

    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        self.encode_into(&mut b);
        b
    }

    /// Parse a frame header and check the sealed length against the limits
    /// for `segment_size`. Never panics; `expected_index` is only used to
    /// name the segment in errors.
    pub fn parse(
        b: &[u8; FRAME_HEADER_LEN],
        segment_size: u32,
        expected_index: u64,
    ) -> Result<StreamFrameHeader> {
        let sealed_len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let kind = match b[28] {
            0 => StreamFrameKind::Data,
            1 => StreamFrameKind::FinalData,
            2 => StreamFrameKind::Trailer,
            k => {
                return Err(Error::InvalidFrame {
                    index: expected_index,
                    reason: format!("unknown frame kind {k}"),
                })
            }
        };
        let ok = match kind {
            StreamFrameKind::Trailer => sealed_len == TRAILER_SEALED_LEN,
            _ => (PAYLOAD_OVERHEAD as u32..=max_sealed_len(segment_size)).contains(&sealed_len),
        };
        if !ok {
            return Err(Error::InvalidFrame {
                index: expected_index,
                reason: format!("sealed length {sealed_len} out of range"),
            });
        }
        let mut h = StreamFrameHeader {
            sealed_len,
            stream_id: [0; 16],
            index: 0,
            kind,
            nonce: [0; 12],
        };
        h.stream_id.copy_from_slice(&b[4..20]);
        h.index = u64::from_le_bytes(b[20..28].try_into().expect("8 bytes"));
        h.nonce.copy_from_slice(&b[29..41]);
        Ok(h)
    }
}

/// AAD of a stream frame: header MAC ‖ the first 29 bytes of its header.
pub fn stream_frame_aad(
    header_mac: &[u8; MAC_LEN],
    frame_header: &[u8],
) -> [u8; MAC_LEN + STREAM_FRAME_AAD_LEN] {
    let mut aad = [0u8; MAC_LEN + STREAM_FRAME_AAD_LEN];
    aad[..MAC_LEN].copy_from_slice(header_mac);
    aad[MAC_LEN..].copy_from_slice(&frame_header[..STREAM_FRAME_AAD_LEN]);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = StreamFrameHeader {
            sealed_len: 100,
            stream_id: [3; 16],
            index: 42,
            kind: StreamFrameKind::FinalData,
            nonce: [9; 12],
        };
        assert_eq!(StreamFrameHeader::parse(&h.encode(), 4096, 0).unwrap(), h);
    }

    #[test]
    fn limits_and_kinds() {
        let mut h = StreamFrameHeader {
            sealed_len: 16,
            stream_id: [3; 16],
            index: 0,
            kind: StreamFrameKind::Data,
            nonce: [9; 12],
        };
        assert!(StreamFrameHeader::parse(&h.encode(), 4096, 0).is_err());
        h.sealed_len = 4096 + 17;
        assert!(StreamFrameHeader::parse(&h.encode(), 4096, 0).is_ok());
        h.sealed_len += 1;
        assert!(StreamFrameHeader::parse(&h.encode(), 4096, 0).is_err());
        h.kind = StreamFrameKind::Trailer;
        h.sealed_len = TRAILER_SEALED_LEN;
        assert!(StreamFrameHeader::parse(&h.encode(), 4096, 0).is_ok());
        let mut b = h.encode();
        b[28] = 3;
        assert!(matches!(
            StreamFrameHeader::parse(&b, 4096, 5),
            Err(Error::InvalidFrame { index: 5, .. })
        ));
        assert!(StreamFrameHeader::parse(&[0; 41], 4096, 0).is_err());
    }
}
