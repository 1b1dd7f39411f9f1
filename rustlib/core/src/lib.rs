//! crypto-core: the fusefs engine in pure Rust (no PyO3, no Python).
//!
//! * [`crypto`]: AEAD (AES-256-GCM, ChaCha20-Poly1305), Argon2id, HKDF, digest.
//! * [`headers`], [`framing`]: the byte layouts of stream headers and frames.
//! * [`stream_v1`]: sequential STREAM chunks; [`stream_v2`]: parallel segments
//!   run by [`pipeline`] over [`workers`].
//! * [`compression`], [`telemetry`], [`recovery`] (checkpoints).
//! * [`api`]: encrypt/decrypt a stream or a file. Most users want [`prelude`].
//!
//! FORMAT.md at the repository root documents every byte.

pub mod api;
pub mod compression;
pub mod constants;
pub mod crypto;
pub mod error;
pub mod framing;
pub mod headers;
pub mod log;
pub mod metadata;
pub mod packs;
pub mod pipeline;
pub mod recovery;
pub mod scheduler;
pub mod snapshot;
pub mod storage;
pub mod stream_io;
pub mod stream_v1;
pub mod stream_v2;
pub mod telemetry;
pub mod types;
pub mod vault;
pub mod workers;

pub use error::{Error, ErrorClass, Result};

/// What a caller of the engine needs, in one import.
pub mod prelude {
    pub use crate::api::{
        decrypt_file, decrypt_stream, encrypt_file, encrypt_stream, read_header, SideFiles,
    };
    pub use crate::crypto::keys::KeyMaterial;
    pub use crate::error::{Error, ErrorClass, Result};
    pub use crate::pipeline::Control;
    pub use crate::stream_io::Sink;
    pub use crate::telemetry::TelemetrySnapshot;
    pub use crate::types::{Argon2Params, Cipher, EncryptParams, Format, ParallelismProfile};
}
