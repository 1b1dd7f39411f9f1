//! Segment workers: the per-segment work the pipeline runs on OS threads.

pub mod decrypt;
pub mod encrypt;

pub use decrypt::{DecryptSegmentWorker, OpenedSegment, SealedFrame};
pub use encrypt::{EncryptSegmentWorker, PlainSegment, SealedSegment};
