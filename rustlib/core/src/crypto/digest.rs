//! The running stream digest over v2 frames (FORMAT.md §4.3).
//!
//! Only digest state and its verification live here: `update_frame`,
//! `finalize`, export/import of the state for checkpoints, and
//! [`SegmentDigestVerifier`].

use ring::digest::{Context, SHA256};

use crate::constants::info::DIGEST_DOMAIN;
use crate::constants::{DIGEST_LEN, DIGEST_STATE_LEN, FRAME_HEADER_LEN, MAC_LEN, TAG_LEN};
use crate::crypto::ct_eq;

/// `chain_{i+1} = SHA-256(chain_i ‖ frame header ‖ tag)`, starting from
/// `SHA-256("fusefs/stream/v2/digest" ‖ header MAC)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDigest {
    chain: [u8; DIGEST_LEN],
    frames: u64,
}

impl StreamDigest {
    pub fn new(header_mac: &[u8; MAC_LEN]) -> Self {
        let mut c = Context::new(&SHA256);
        c.update(DIGEST_DOMAIN);
        c.update(header_mac);
        StreamDigest {
            chain: to_array(c.finish().as_ref()),
            frames: 0,
        }
    }

    /// Fold one data frame in: its 41-byte header and its 16-byte tag.
    pub fn update_frame(&mut self, frame_header: &[u8; FRAME_HEADER_LEN], tag: &[u8; TAG_LEN]) {
        let mut c = Context::new(&SHA256);
        c.update(&self.chain);
        c.update(frame_header);
        c.update(tag);
        self.chain = to_array(c.finish().as_ref());
        self.frames += 1;
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn finalize(&self) -> [u8; DIGEST_LEN] {
        self.chain
    }

    /// Serialize the state: chain value then frame count (u64 LE).
    pub fn export_state(&self) -> [u8; DIGEST_STATE_LEN] {
        let mut out = [0u8; DIGEST_STATE_LEN];
        out[..DIGEST_LEN].copy_from_slice(&self.chain);
        out[DIGEST_LEN..].copy_from_slice(&self.frames.to_le_bytes());
        out
    }

    pub fn import_state(state: &[u8; DIGEST_STATE_LEN]) -> Self {
        let mut frames = [0u8; 8];
        frames.copy_from_slice(&state[DIGEST_LEN..]);
        StreamDigest {
            chain: to_array(&state[..DIGEST_LEN]),
            frames: u64::from_le_bytes(frames),
        }
    }
}

fn to_array(b: &[u8]) -> [u8; DIGEST_LEN] {
    let mut a = [0u8; DIGEST_LEN];
    a.copy_from_slice(b);
    a
}

/// Checks a sequence of frames against an expected final digest and count.
pub struct SegmentDigestVerifier {
    digest: StreamDigest,
}

impl SegmentDigestVerifier {
    pub fn new(start: StreamDigest) -> Self {
        SegmentDigestVerifier { digest: start }
    }

    pub fn update_frame(&mut self, frame_header: &[u8; FRAME_HEADER_LEN], tag: &[u8; TAG_LEN]) {
        self.digest.update_frame(frame_header, tag);
    }

    pub fn state(&self) -> StreamDigest {
        self.digest
    }

    /// True when the frames seen match `expected` digest and `frames` count.
    pub fn verify(&self, expected: &[u8; DIGEST_LEN], frames: u64) -> bool {
        ct_eq(&self.digest.finalize(), expected) && self.digest.frames() == frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_import_resumes_identically() {
        let mut a = StreamDigest::new(&[1; 32]);
        let h = [5u8; FRAME_HEADER_LEN];
        a.update_frame(&h, &[6; 16]);
        let saved = a.export_state();
        a.update_frame(&h, &[7; 16]);
        let mut b = StreamDigest::import_state(&saved);
        b.update_frame(&h, &[7; 16]);
        assert_eq!(a, b);
        assert_eq!(a.frames(), 2);
    }

    #[test]
    fn order_and_content_matter() {
        let h = [0u8; FRAME_HEADER_LEN];
        let mut a = StreamDigest::new(&[0; 32]);
        a.update_frame(&h, &[1; 16]);
        a.update_frame(&h, &[2; 16]);
        let mut b = StreamDigest::new(&[0; 32]);
        b.update_frame(&h, &[2; 16]);
        b.update_frame(&h, &[1; 16]);
        assert_ne!(a.finalize(), b.finalize());
        let v = SegmentDigestVerifier::new(a);
        assert!(v.verify(&a.finalize(), 2));
        assert!(!v.verify(&a.finalize(), 3));
        assert!(!v.verify(&b.finalize(), 2));
    }
}
