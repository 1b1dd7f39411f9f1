//! `DecryptSegmentWorker`: open one v2 stream frame and decode its segment,
//! in the buffer it was read into ([`crate::sealed`] opens the payload).

use std::time::Instant;

use crate::constants::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::digest::StreamDigest;
use crate::error::{Error, Result};
use crate::framing::{stream_frame_aad, StreamFrameHeader, StreamFrameKind};
use crate::sealed::{self, DecodeError, OpenError, Plaintext, BODY_OFFSET, ENCODING_RAW};
use crate::telemetry::{add_since, Telemetry};

/// A stream frame read from the input, structurally checked, not yet opened.
pub struct SealedStreamFrame {
    pub header: StreamFrameHeader,
    /// The whole frame is `buf[..FRAME_HEADER_LEN + sealed_len]`.
    pub buf: Vec<u8>,
    /// Digest state after this frame (resume checkpoints record it).
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
    pub fn open(&self, frame: SealedStreamFrame, _scratch: &mut Vec<u8>) -> Result<OpenedSegment> {
        let SealedStreamFrame {
            header,
            mut buf,
            digest_after,
            input_end,
        } = frame;
        let index = header.index;
        let t0 = Instant::now();
        let aad = stream_frame_aad(self.header_mac, &buf[..FRAME_HEADER_LEN]);
        let end = FRAME_HEADER_LEN + header.sealed_len as usize;
        let invalid = |reason: String| Error::InvalidFrame { index, reason };
        let opened = sealed::open_in_place(
            self.key,
            &header.nonce,
            &aad,
            &mut buf,
            FRAME_HEADER_LEN..end,
        )
        .map_err(|e| match e {
            OpenError::Auth => Error::SegmentAuthFailed { index },
            OpenError::Empty => invalid("no encoding byte".into()),
        })?;
        add_since(&self.telemetry.crypto_ns, t0);
        let s = self.segment_size as usize;
        let t0 = Instant::now();
        let (start, len, decoded) = match sealed::decode(&buf, &opened, s, self.compression_allowed)
        {
            Ok(Plaintext::InPlace(body)) => (body.start, body.len(), None),
            Ok(Plaintext::Decoded(out)) => {
                add_since(&self.telemetry.compression_ns, t0);
                (opened.body.start, out.len(), Some(out))
            }
            Err(DecodeError::Zstd(e)) => return Err(invalid(e.to_string())),
            Err(DecodeError::ZstdNotAllowed) => {
                return Err(invalid(
                    "compressed segment in a stream without compression".into(),
                ))
            }
            Err(DecodeError::Unknown(e)) => return Err(invalid(format!("unknown encoding {e}"))),
        };
        let len_ok = match header.kind {
            StreamFrameKind::Data => len == s,
            StreamFrameKind::FinalData => len <= s && (len > 0 || index == 0),
            StreamFrameKind::Trailer => false,
        };
        if !len_ok {
            return Err(invalid(format!("segment holds {len} bytes")));
        }
        Ok(OpenedSegment {
            buf,
            start,
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
    header: &StreamFrameHeader,
    mut buf: Vec<u8>,
) -> Result<Trailer> {
    let aad = stream_frame_aad(header_mac, &buf[..FRAME_HEADER_LEN]);
    let malformed = || Error::InvalidFrame {
        index: header.index,
        reason: "malformed trailer".into(),
    };
    let end = buf.len();
    let opened = sealed::open_in_place(key, &header.nonce, &aad, &mut buf, FRAME_HEADER_LEN..end)
        .map_err(|e| match e {
        OpenError::Auth => Error::SegmentAuthFailed {
            index: header.index,
        },
        OpenError::Empty => malformed(),
    })?;
    if opened.body.len() != TRAILER_PLAINTEXT_LEN - BODY_OFFSET || opened.encoding != ENCODING_RAW {
        return Err(malformed());
    }
    // The body: digest (32) ‖ data frames (u64) ‖ plaintext bytes (u64).
    let p = &buf[opened.body];
    let mut digest = [0u8; DIGEST_LEN];
    digest.copy_from_slice(&p[..32]);
    Ok(Trailer {
        digest,
        frames: u64::from_le_bytes(p[32..40].try_into().expect("8 bytes")),
        plaintext_len: u64::from_le_bytes(p[40..48].try_into().expect("8 bytes")),
    })
}
