//! [`ResumeCheckpoint`]: where an interrupted v2 stream run (encrypt or
//! decrypt) stands, with the digest state, sealed with an HMAC; the file
//! `OUT.fusefs-ckpt` that `--resume` reads (FORMAT.md §5). Not the log's
//! `SnapshotCheckpoint` record, which says what a vault snapshot covers.
//!
//! ```text
//! off len field
//!   0   8 magic "fusefsck"
//!   8   1 version 1
//!   9   1 kind: 1 encrypt, 2 decrypt (ResumeCheckpointKind)
//!  10   2 reserved 0
//!  12  16 stream id
//!  28   4 segment size
//!  32   8 data segments completed
//!  40   8 input offset
//!  48   8 output offset (written and synced)
//!  56  32 digest chain      88 8 digest frame count
//!  96   8 input size at start     104 8 input mtime ns (i64)
//! 112  32 HMAC-SHA256(checkpoint MAC key, bytes 0..112)
//! ```

use std::fs;

use crate::constants::*;
use crate::crypto::digest::StreamDigest;
use crate::crypto::keys::SecretKey;
use crate::crypto::{ct_eq, hmac_sha256};
use crate::error::{Error, Result};
use crate::stream_v2::ResumePoint;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeCheckpointKind {
    Encrypt,
    Decrypt,
}

/// Identity of the input a run started from; resuming refuses a changed input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputIdentity {
    pub size: u64,
    pub mtime_ns: i64,
}

impl InputIdentity {
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        InputIdentity {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        }
    }
}

/// One resume checkpoint, of either kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeCheckpoint {
    pub kind: ResumeCheckpointKind,
    pub stream_id: [u8; STREAM_ID_LEN],
    pub segment_size: u32,
    pub point: ResumePoint,
    pub input: InputIdentity,
}

impl ResumeCheckpoint {
    pub fn encode(&self, mac_key: &SecretKey) -> [u8; RESUME_CHECKPOINT_LEN] {
        let mut b = [0u8; RESUME_CHECKPOINT_LEN];
        b[0..8].copy_from_slice(RESUME_CHECKPOINT_MAGIC);
        b[8] = 1;
        b[9] = match self.kind {
            ResumeCheckpointKind::Encrypt => 1,
            ResumeCheckpointKind::Decrypt => 2,
        };
        b[12..28].copy_from_slice(&self.stream_id);
        b[28..32].copy_from_slice(&self.segment_size.to_le_bytes());
        b[32..40].copy_from_slice(&self.point.segments_done.to_le_bytes());
        b[40..48].copy_from_slice(&self.point.input_offset.to_le_bytes());
        b[48..56].copy_from_slice(&self.point.output_offset.to_le_bytes());
        b[56..96].copy_from_slice(&self.point.digest.export_state());
        b[96..104].copy_from_slice(&self.input.size.to_le_bytes());
        b[104..112].copy_from_slice(&self.input.mtime_ns.to_le_bytes());
        let m = hmac_sha256(mac_key, &b[..112]);
        b[112..].copy_from_slice(&m);
        b
    }

    pub fn decode(b: &[u8], mac_key: &SecretKey) -> Result<ResumeCheckpoint> {
        let bad = |m: &str| Err(Error::Resume(format!("checkpoint {m}")));
        if b.len() != RESUME_CHECKPOINT_LEN {
            return bad("has the wrong length");
        }
        if &b[0..8] != RESUME_CHECKPOINT_MAGIC || b[8] != 1 || b[10..12] != [0, 0] {
            return bad("is not a fusefs checkpoint of a known version");
        }
        if !ct_eq(&hmac_sha256(mac_key, &b[..112]), &b[112..]) {
            return bad("does not match this stream and key (MAC mismatch)");
        }
        let kind = match b[9] {
            1 => ResumeCheckpointKind::Encrypt,
            2 => ResumeCheckpointKind::Decrypt,
            _ => return bad("has an unknown kind"),
        };
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let mut stream_id = [0u8; STREAM_ID_LEN];
        stream_id.copy_from_slice(&b[12..28]);
        let state: [u8; DIGEST_STATE_LEN] = b[56..96].try_into().expect("40 bytes");
        Ok(ResumeCheckpoint {
            kind,
            stream_id,
            segment_size: u32::from_le_bytes(b[28..32].try_into().expect("4 bytes")),
            point: ResumePoint {
                segments_done: u64_at(32),
                input_offset: u64_at(40),
                output_offset: u64_at(48),
                digest: StreamDigest::import_state(&state),
            },
            input: InputIdentity {
                size: u64_at(96),
                mtime_ns: u64_at(104) as i64,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = SecretKey::from_bytes([5; 32]);
        let mut d = StreamDigest::new(&[1; 32]);
        d.update_frame(&[2; FRAME_HEADER_LEN], &[3; TAG_LEN]);
        let c = ResumeCheckpoint {
            kind: ResumeCheckpointKind::Decrypt,
            stream_id: [9; 16],
            segment_size: 65536,
            point: ResumePoint {
                segments_done: 7,
                input_offset: 1000,
                output_offset: 900,
                digest: d,
            },
            input: InputIdentity {
                size: 12345,
                mtime_ns: -5,
            },
        };
        let b = c.encode(&key);
        assert_eq!(ResumeCheckpoint::decode(&b, &key).unwrap(), c);
        for i in 0..RESUME_CHECKPOINT_LEN {
            let mut t = b;
            t[i] ^= 0x40;
            assert!(ResumeCheckpoint::decode(&t, &key).is_err(), "byte {i}");
        }
        assert!(ResumeCheckpoint::decode(&b, &SecretKey::from_bytes([6; 32])).is_err());
        assert!(ResumeCheckpoint::decode(&b[..100], &key).is_err());
    }
}
