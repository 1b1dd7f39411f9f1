//! The unified log: append-only files of sealed, checksummed records. The
//! records are opaque bytes here (what they say is
//! [`UnifiedEntry`](crate::metadata::UnifiedEntry)); the log knows their
//! order, durability and integrity, nothing of their meaning.
//!
//! * [`format`](mod@self::format): the byte layout of a log file and its records.
//! * [`unified`]: `LogManager` (append with group commit, sync,
//!   rotate, cut for a snapshot).
//! * [`replay`]: reading every file back at open, with torn-tail handling,
//!   mending from the files' copies, and salvage.
//! * `active`: the file being appended to, its copy and its reserve.
//! * `options`: `LogOptions`.

mod active;
pub mod cut;
pub mod format;
mod options;
pub mod replay;
mod scan;
pub mod unified;
