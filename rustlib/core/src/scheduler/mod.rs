//! When to compact ([`policy`]), the background thread that does it, how
//! it gives way to the foreground ([`pacing`]), and
//! [`session`]: an open vault with that thread, started at mount and
//! stopped at close.

pub mod pacing;
pub mod policy;
pub mod session;

pub use session::{VaultClosed, VaultSession};
