//! The vault's metadata, as values: what a log record says
//! ([`UnifiedEntry`]), the state machine it drives ([`MetadataState`]), and
//! their byte encodings (FORMAT.md §9). Nothing here knows of files, logs,
//! packs or keys: the log stores entries as opaque sealed records, snapshots
//! store the encoded state.
//!
//! * [`inode`]: [`Timespec`], [`InodeKind`], [`AttrChange`].
//! * [`segment`]: [`SegmentRef`], where a file's segment lives, and
//!   [`SegmentMap`], a file's map of them.
//! * [`codec`]: the little-endian field encoding (FORMAT.md §9.1).
//! * [`entry`]: [`UnifiedEntry`] and its encoding (§9.2).
//! * [`carried`]: what a write's record carries of a frame not yet
//!   durable: its bytes or a [`FramePatch`] (§9.2, entries 17 and 18).
//! * [`state`]: [`MetadataState`] and `apply` (§9.3), over each
//!   directory's [`dir::Dir`].
//! * [`state_codec`]: the snapshot's state encoding (§9.5).
//! * [`paths`]: a path of an inode, for messages and reports.

pub mod carried;
pub mod codec;
pub mod dir;
pub mod entry;
pub mod inode;
pub mod paths;
pub mod segment;
pub mod state;
pub mod state_codec;

pub use carried::{Carried, FramePatch};
pub use dir::Dir;
pub use entry::UnifiedEntry;
pub use inode::{AttrChange, InodeKind, Timespec};
pub use segment::{SegmentMap, SegmentRef};
pub use state::{Inode, MetadataState, PackUsage, ROOT_INO};
