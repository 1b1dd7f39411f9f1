//! The vault engine: [`Vault`] ties the config and keys, the metadata state
//! machine ([`crate::metadata`]), the unified log ([`crate::log`]), the packs
//! ([`crate::packs`]) and the snapshots ([`crate::snapshot`]) together into
//! the file system the FUSE layer calls.
//!
//! Every mutation is one [`UnifiedEntry`](crate::metadata::UnifiedEntry): it
//! is applied to the in-memory state and appended to the log under one lock,
//! so the log's order is the state's order. File contents are sealed into
//! pack frames *before* the entry that points at them is appended, and the
//! log makes those frames durable before any record reaches its file (its
//! before-write hook), so a record on disk never points at a frame that is
//! not. Writes to one file are serialized (read-modify-write of partial
//! segments); writes to different files and all reads run in parallel, with
//! the crypto outside every lock.
//!
//! `Vault` is one struct ([`engine`]) with an `impl` block per job:
//!
//! * [`open`]: open, lock, create, close;
//! * [`namespace`]: names and attributes (lookup, create, link, rename,
//!   readdir, xattrs);
//! * [`lifetimes`]: open handles, the kernel's lookups, and reclaiming an
//!   inode once nothing refers to it (counted in [`references`]);
//! * [`read`]: reads, each gathered into one buffer that frames are opened
//!   in (kept for the next reads: [`read_buffers`]); [`data`]: write,
//!   truncate, fsync; both over the pure segment
//!   arithmetic of [`segments`] and the decrypted-segment [`cache`];
//! * `carry`: the log's before-write step (packs synced, or an fsync's few
//!   frames carried by its records: one flush);
//! * [`compaction`]: log and pack compaction and one scheduler cycle;
//! * [`reclaim`]: punching dead frames out of their packs once the records
//!   that freed them are durable (space back at once, even on a full disk);
//! * [`telemetry`]: usage and live counters;
//! * [`inspect`]: read-only views for the checker ([`crate::fsck`]);
//! * [`times`]: who keeps the times of regular files (the engine, or a
//!   kernel with the writeback cache);
//! * [`passwd`]: changing the password (the config only);
//! * [`upgrade`]: a vault of format 1 made one of format 2, in place.
//!
//! # Locks
//!
//! Taken in this order (a thread holding one may take only those below it):
//!
//! 1. `compaction`: held by a compaction from start to end (two at once
//!    could delete each other's log files or packs).
//! 2. a file's lock (`file_locks`): held by `write` and `setattr` of that
//!    file across read-modify-write of its partial segments.
//! 3. `frames_in_use` (shared): held by read, write and truncate from
//!    looking up where a file's frames are until they are read or the new
//!    ones committed; pack compaction takes it exclusively for an instant
//!    before it deletes packs, so no frame in use disappears.
//! 4. `state` (through `engine::StateGuard`): the metadata
//!    state; every commit (apply + append to the log's queue) happens under
//!    it. Never held across crypto or pack I/O; on release, a full log batch
//!    is written without it.
//! 5. leaves, held for an instant and never while taking another:
//!    `references`, `keys`, `file_locks`' map, `last_change`, `freed`, the
//!    segment cache's lock, the log's and the packs' own locks.
//!
//! The vault lock (`fusefs.lock`, [`LOCK_FILE`]) is held from open to drop:
//! one engine per vault.

pub mod cache;
mod carry;
pub mod compaction;
pub mod config;
pub mod data;
pub mod engine;
pub mod file_keys;
pub mod freed;
pub mod inspect;
pub mod lifetimes;
pub mod local_state;
pub mod namespace;
pub mod open;
pub mod passwd;
pub mod read;
pub mod read_buffers;
pub mod reclaim;
pub mod references;
pub mod repair;
pub mod segments;
pub mod telemetry;
pub mod times;
pub mod upgrade;

pub use crate::metadata::{AttrChange, InodeKind, Timespec};
pub use compaction::{CompactionAction, CompactionReport, CompactionStats, PackCompactionReport};
pub use config::{VaultConfig, VaultOptions};
pub use engine::{Attr, DirEntry, EngineOptions, RenameFlags, Vault, DEFAULT_CACHE_BYTES, ROOT};
pub use open::LOCK_FILE;
pub use passwd::{Credential, KdfCosts};
pub use read_buffers::ReadBytes;
pub use times::FileTimes;
