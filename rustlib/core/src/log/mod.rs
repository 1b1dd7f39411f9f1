//! The unified log: append-only files of sealed, checksummed records.
//!
//! * [`entry`](self::entry): `UnifiedEntry`, what a record says.
//! * [`format`](self::format): the byte layout of a log file and its records.
//! * [`unified`](self::unified): `LogManager` (append with group commit, sync, rotate,
//!   replay with torn-tail handling).

pub mod entry;
pub mod format;
pub mod unified;

pub use entry::UnifiedEntry;
