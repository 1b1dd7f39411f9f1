//! `DecryptSegmentWorker`: open one v2 frame and decode its segment.

use std::time::Instant;

use crate::compression::decompress_segment;
use crate::constants::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::digest::StreamDigest;
use crate::error::{Error, Result};
use crate::framing::{frame_aad, FrameHeader, FrameKind, ENCODING_RAW, ENCODING_ZSTD};
use crate::telemetry::{add_since, Telemetry};

/// A frame read from the input, structurally checked, not yet opened.
pub struct SealedFrame {
    pub header: FrameHeader,
    /// The whole frame is `buf[..FRAME_HEADER_LEN + sealed_len]`.
    pub buf: Vec<u8>,
    /// Digest state after this frame (checkpoints record it).
    pub digest_after: StreamDigest,
    /// Input offset just after this frame.
    pub input_end: u64,
}

/// An opened segment: plaintext is `decoded` if present, else `buf[range]`.
pub struct OpenedSegment {
    pub buf: Vec<u8>,
    pub start: usize,
    pub len: usize,
    pub decoded: Option<Vec<u8>>,
    pub digest_after: StreamDigest,
    pub input_end: u64,
}

impl OpenedSegment {
    pub fn plaintext(&self) -> &[u8] {
        match &self.decoded {
            Some(d) => d,
            None => &self.buf[self.start..self.start + self.len],
        }
    }
}

pub struct DecryptSegmentWorker<'a> {
    pub key: &'a AeadKey,
    pub header_mac: &'a [u8; MAC_LEN],
    pub segment_size: u32,
    pub compression_allowed: bool,
    pub telemetry: &'a Telemetry,
}

impl DecryptSegmentWorker<'_> {
    pub fn open(&self, frame: SealedFrame, _scratch: &mut Vec<u8>) -> Result<OpenedSegment> {
        let SealedFrame {
            header,
            mut buf,
            digest_after,
            input_end,
        } = frame;
        let index = header.index;
        let t0 = Instant::now();
        let aad = frame_aad(self.header_mac, &buf[..FRAME_HEADER_LEN]);
        let end = FRAME_HEADER_LEN + header.sealed_len as usize;
        let n = self
            .key
            .open(&header.nonce, &aad, &mut buf[FRAME_HEADER_LEN..end])
            .map_err(|_| Error::SegmentAuthFailed { index })?;
        add_since(&self.telemetry.crypto_ns, t0);
        let invalid = |reason: String| Error::InvalidFrame { index, reason };
        let encoding = buf[FRAME_HEADER_LEN];
        let body = FRAME_HEADER_LEN + 1..FRAME_HEADER_LEN + n;
        let s = self.segment_size as usize;
        let mut decoded = None;
        let len = match encoding {
            ENCODING_RAW => body.len(),
            ENCODING_ZSTD if self.compression_allowed => {
                let t0 = Instant::now();
                let mut out = Vec::new();
                decompress_segment(&buf[body.clone()], s, &mut out)
                    .map_err(|e| invalid(e.to_string()))?;
                add_since(&self.telemetry.compression_ns, t0);
                let l = out.len();
                decoded = Some(out);
                l
            }
            ENCODING_ZSTD => {
                return Err(invalid(
                    "compressed segment in a stream without compression".into(),
                ))
            }
            e => return Err(invalid(format!("unknown encoding {e}"))),
        };
        let len_ok = match header.kind {
            FrameKind::Data => len == s,
            FrameKind::FinalData => len <= s && (len > 0 || index == 0),
            FrameKind::Trailer => false,
        };
        if !len_ok {
            return Err(invalid(format!("segment holds {len} bytes")));
        }
        Ok(OpenedSegment {
            buf,
            start: body.start,
            len,
            decoded,
            digest_after,
            input_end,
        })
    }
}

/// The trailer's sealed fields once opened.
pub struct Trailer {
    pub digest: [u8; DIGEST_LEN],
    pub frames: u64,
    pub plaintext_len: u64,
}

/// Open the trailer frame `buf` (header + sealed payload).
pub fn open_trailer(
    key: &AeadKey,
    header_mac: &[u8; MAC_LEN],
    header: &FrameHeader,
    mut buf: Vec<u8>,
) -> Result<Trailer> {
    let aad = frame_aad(header_mac, &buf[..FRAME_HEADER_LEN]);
    let n = key
        .open(&header.nonce, &aad, &mut buf[FRAME_HEADER_LEN..])
        .map_err(|_| Error::SegmentAuthFailed {
            index: header.index,
        })?;
    let p = &buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + n];
    if n != TRAILER_PLAINTEXT_LEN || p[0] != ENCODING_RAW {
        return Err(Error::InvalidFrame {
            index: header.index,
            reason: "malformed trailer".into(),
        });
    }
    let mut digest = [0u8; DIGEST_LEN];
    digest.copy_from_slice(&p[1..33]);
    Ok(Trailer {
        digest,
        frames: u64::from_le_bytes(p[33..41].try_into().expect("8 bytes")),
        plaintext_len: u64::from_le_bytes(p[41..49].try_into().expect("8 bytes")),
    })
}
