//! Segment workers: the per-segment work the pipeline runs on OS threads,
//! sealing segments into v2 stream frames and opening them again.

pub mod decrypt;
pub mod encrypt;

pub use decrypt::{DecryptSegmentWorker, OpenedSegment, SealedStreamFrame};
pub use encrypt::{EncryptSegmentWorker, PlainSegment, SealedSegment};
