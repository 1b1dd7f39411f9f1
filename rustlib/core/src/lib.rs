//! crypto-core: the fusefs engine in pure Rust (no PyO3, no Python).
//!
//! Two products share one set of primitives: **vaults** (an encrypted file
//! system: the FUSE layer in Python calls [`vault::Vault`]) and
//! **standalone streams** (a file encrypted to a `.fusefs` file, [`api`]).
//! FORMAT.md at the repository root documents every byte. The modules,
//! from the ground up (a module uses only those above it in this list):
//!
//! * ground: [`error`] (one `Error`, stable kinds, errnos), [`constants`],
//!   [`types`], [`stream_io`], [`telemetry`], [`storage`] (file access
//!   behind a trait: the real disk, or an in-memory file system that injects
//!   faults and crashes; durable whole-file writes).
//! * primitives: [`crypto`] (AEAD, Argon2id, HKDF and the vault's key
//!   hierarchy, digest), [`compression`], [`pipeline`] (every worker thread
//!   the crypto runs on), [`sealed`] (the sealed payload, encoding byte ‖
//!   body, AEAD, tag, inside both stream frames and pack frames),
//!   [`vaultfile`] (the name and 64-byte header shared by the numbered vault
//!   files: log, packs, snapshots), [`framing`] (stream frame headers).
//! * streams: [`headers`], [`workers`] (seal and open one segment),
//!   [`stream_v1`], [`stream_v2`], [`recovery::checkpoint`] (resuming a long
//!   stream), and [`api`], their front (encrypt/decrypt a stream or a file).
//! * the vault's pieces: [`metadata`] (entries, the state machine and their
//!   encodings; knows no files), [`log`] (the unified log: sealed records,
//!   group commit, rotation, replay), [`packs`] (file contents as sealed
//!   frames in shared pack files), [`snapshot`] (the state sealed in one
//!   file), [`recovery::bootstrap`] (snapshot + log replay at open).
//! * the vault: [`vault`] (the engine: open, namespace, data path,
//!   compaction, telemetry; its config and keys), then [`scheduler`] (when
//!   to compact, the background thread that does it, and the session that
//!   holds an open vault with that thread), and [`fsck`] (every invariant
//!   of an open vault checked, each finding named).
//!
//! "Frame" alone names neither layout: a stream frame (header, then sealed
//! payload; FORMAT.md §4.1) and a pack frame (nonce, then sealed payload;
//! §8.2) are named as such. Likewise a resume checkpoint (a stream run's,
//! §5) is not the log's SnapshotCheckpoint record (§9.2).
//!
//! Most users want [`prelude`].

pub mod api;
pub mod compression;
pub mod constants;
pub mod crypto;
pub mod error;
pub mod framing;
pub mod fsck;
pub mod headers;
pub mod log;
pub mod metadata;
pub mod mirror;
pub mod packs;
pub mod pipeline;
pub mod recovery;
pub mod scheduler;
pub mod sealed;
pub mod snapshot;
pub mod storage;
pub mod stream_io;
pub mod stream_v1;
pub mod stream_v2;
pub mod telemetry;
pub mod types;
pub mod vault;
pub mod vaultfile;
pub mod workers;

pub use error::{Error, ErrorClass, Result};

/// What a caller of the engine needs, in one import: streams, the vault,
/// its scheduler and storage.
pub mod prelude {
    pub use crate::api::{
        decrypt_file, decrypt_stream, encrypt_file, encrypt_stream, read_header, SideFiles,
    };
    pub use crate::crypto::keys::KeyMaterial;
    pub use crate::error::{Error, ErrorClass, Result};
    pub use crate::pipeline::Control;
    pub use crate::scheduler::policy::{spawn_scheduler_cycle, HybridCompactionPolicy};
    pub use crate::scheduler::{VaultClosed, VaultSession};
    pub use crate::storage::{FileSystem, RealFs};
    pub use crate::stream_io::Sink;
    pub use crate::telemetry::TelemetrySnapshot;
    pub use crate::types::{Argon2Params, Cipher, EncryptParams, Format, ParallelismProfile};
    pub use crate::vault::{
        Attr, AttrChange, DirEntry, EngineOptions, InodeKind, RenameFlags, Timespec, Vault,
        VaultConfig, VaultOptions,
    };
}
