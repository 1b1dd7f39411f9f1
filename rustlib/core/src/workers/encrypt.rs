//! `EncryptSegmentWorker`: compress (optionally) and seal one segment into a
//! v2 stream frame, in its work buffer ([`crate::sealed`] does the payload).

use std::time::Instant;

use crate::constants::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::random;
use crate::error::Result;
use crate::framing::{stream_frame_aad, StreamFrameHeader, StreamFrameKind};
use crate::sealed::{self, Encoded, BODY_OFFSET, ENCODING_ZSTD};
use crate::telemetry::{add_since, Telemetry};

/// Offset of the segment data inside a work buffer: frame header, then the
/// encoding byte, so the frame is built in place without copying.
pub const DATA_OFFSET: usize = FRAME_HEADER_LEN + BODY_OFFSET;

/// Size of a work buffer for segment size `s`: header, encoding, data, tag.
pub fn buffer_len(segment_size: u32) -> usize {
    FRAME_HEADER_LEN + sealed::PAYLOAD_OVERHEAD + segment_size as usize
}

/// A segment read from the input, waiting to be sealed.
pub struct PlainSegment {
    pub index: u64,
    pub is_final: bool,
    /// Work buffer; the plaintext is at `DATA_OFFSET..DATA_OFFSET + len`.
    pub buf: Vec<u8>,
    pub len: usize,
}

/// A segment sealed into a stream frame: `buf[..frame_len]` is the whole
/// frame.
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
        let body = match self.compression {
            None => Encoded::raw(len),
            Some(level) => {
                let t0 = Instant::now();
                let body =
                    sealed::encode_in_place(&mut buf, FRAME_HEADER_LEN, len, level, scratch)?;
                add_since(&self.telemetry.compression_ns, t0);
                body
            }
        };
        let t0 = Instant::now();
        let header = StreamFrameHeader {
            sealed_len: body.sealed_len() as u32,
            stream_id: self.stream_id,
            index,
            kind: if is_final {
                StreamFrameKind::FinalData
            } else {
                StreamFrameKind::Data
            },
            nonce: random::bytes()?,
        };
        header.encode_into(&mut buf[..FRAME_HEADER_LEN]);
        let aad = stream_frame_aad(self.header_mac, &buf[..FRAME_HEADER_LEN]);
        sealed::seal_in_place(
            self.key,
            &header.nonce,
            &aad,
            body,
            &mut buf,
            FRAME_HEADER_LEN,
        );
        add_since(&self.telemetry.crypto_ns, t0);
        Ok(SealedSegment {
            buf,
            frame_len: FRAME_HEADER_LEN + body.sealed_len(),
            plain_len: len,
            compressed: body.encoding == ENCODING_ZSTD,
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
    let header = StreamFrameHeader {
        sealed_len: crate::framing::TRAILER_SEALED_LEN,
        stream_id,
        index: frames,
        kind: StreamFrameKind::Trailer,
        nonce: random::bytes()?,
    };
    let body = Encoded::raw(TRAILER_PLAINTEXT_LEN - BODY_OFFSET);
    let mut buf = vec![0u8; FRAME_HEADER_LEN + body.sealed_len()];
    header.encode_into(&mut buf[..FRAME_HEADER_LEN]);
    let fields = FRAME_HEADER_LEN + BODY_OFFSET;
    buf[fields..fields + DIGEST_LEN].copy_from_slice(digest);
    buf[fields + DIGEST_LEN..fields + DIGEST_LEN + 8].copy_from_slice(&frames.to_le_bytes());
    buf[fields + DIGEST_LEN + 8..fields + DIGEST_LEN + 16]
        .copy_from_slice(&plaintext_len.to_le_bytes());
    let aad = stream_frame_aad(header_mac, &buf[..FRAME_HEADER_LEN]);
    sealed::seal_in_place(key, &header.nonce, &aad, body, &mut buf, FRAME_HEADER_LEN);
    Ok(buf)
}
