//! `EncryptSegmentWorker`: compress (optionally) and seal one segment into a v2 frame.

use std::time::Instant;

use crate::compression::compress_segment;
use crate::constants::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::random;
use crate::error::Result;
use crate::framing::{frame_aad, FrameHeader, FrameKind, ENCODING_RAW, ENCODING_ZSTD};
use crate::telemetry::{add_since, Telemetry};

/// Offset of the segment data inside a work buffer: frame header, then the
/// encoding byte, so the frame is built in place without copying.
pub const DATA_OFFSET: usize = FRAME_HEADER_LEN + 1;

/// Size of a work buffer for segment size `s`: header, encoding, data, tag.
pub fn buffer_len(segment_size: u32) -> usize {
    DATA_OFFSET + segment_size as usize + TAG_LEN
}

/// A segment read from the input, waiting to be sealed.
pub struct PlainSegment {
    pub index: u64,
    pub is_final: bool,
    /// Work buffer; the plaintext is at `DATA_OFFSET..DATA_OFFSET + len`.
    pub buf: Vec<u8>,
    pub len: usize,
}

/// A sealed frame: `buf[..frame_len]` is the whole frame.
pub struct SealedSegment {
    pub buf: Vec<u8>,
    pub frame_len: usize,
    pub plain_len: usize,
    pub compressed: bool,
}

pub struct EncryptSegmentWorker<'a> {
    pub key: &'a AeadKey,
    pub header_mac: &'a [u8; MAC_LEN],
    pub stream_id: [u8; STREAM_ID_LEN],
    pub compression: Option<i32>,
    pub telemetry: &'a Telemetry,
}

impl EncryptSegmentWorker<'_> {
    pub fn seal(&self, seg: PlainSegment, scratch: &mut Vec<u8>) -> Result<SealedSegment> {
        let PlainSegment {
            index,
            is_final,
            mut buf,
            len,
        } = seg;
        let mut body_len = len;
        let mut encoding = ENCODING_RAW;
        if let Some(level) = self.compression {
            let t0 = Instant::now();
            if let Some(n) = compress_segment(&buf[DATA_OFFSET..DATA_OFFSET + len], level, scratch)?
            {
                buf[DATA_OFFSET..DATA_OFFSET + n].copy_from_slice(&scratch[..n]);
                body_len = n;
                encoding = ENCODING_ZSTD;
            }
            add_since(&self.telemetry.compression_ns, t0);
        }
        let t0 = Instant::now();
        let header = FrameHeader {
            sealed_len: (1 + body_len + TAG_LEN) as u32,
            stream_id: self.stream_id,
            index,
            kind: if is_final {
                FrameKind::FinalData
            } else {
                FrameKind::Data
            },
            nonce: random::bytes()?,
        };
        header.encode_into(&mut buf[..FRAME_HEADER_LEN]);
        buf[FRAME_HEADER_LEN] = encoding;
        let aad = frame_aad(self.header_mac, &buf[..FRAME_HEADER_LEN]);
        let end = DATA_OFFSET + body_len;
        let tag = self
            .key
            .seal(&header.nonce, &aad, &mut buf[FRAME_HEADER_LEN..end]);
        buf[end..end + TAG_LEN].copy_from_slice(&tag);
        add_since(&self.telemetry.crypto_ns, t0);
        Ok(SealedSegment {
            buf,
            frame_len: end + TAG_LEN,
            plain_len: len,
            compressed: encoding == ENCODING_ZSTD,
        })
    }
}

/// Seal the trailer frame (FORMAT.md §4.2).
pub fn seal_trailer(
    key: &AeadKey,
    header_mac: &[u8; MAC_LEN],
    stream_id: [u8; STREAM_ID_LEN],
    digest: &[u8; DIGEST_LEN],
    frames: u64,
    plaintext_len: u64,
) -> Result<Vec<u8>> {
    let header = FrameHeader {
        sealed_len: crate::framing::TRAILER_SEALED_LEN,
        stream_id,
        index: frames,
        kind: FrameKind::Trailer,
        nonce: random::bytes()?,
    };
    let mut buf = Vec::with_capacity(FRAME_HEADER_LEN + TRAILER_PLAINTEXT_LEN + TAG_LEN);
    buf.extend_from_slice(&header.encode());
    buf.push(ENCODING_RAW);
    buf.extend_from_slice(digest);
    buf.extend_from_slice(&frames.to_le_bytes());
    buf.extend_from_slice(&plaintext_len.to_le_bytes());
    let aad = frame_aad(header_mac, &buf[..FRAME_HEADER_LEN]);
    key.seal_append(&header.nonce, &aad, &mut buf, FRAME_HEADER_LEN);
    Ok(buf)
}
