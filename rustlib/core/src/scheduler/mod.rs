//! When to compact, and the background thread that does it.

pub mod policy;
