//! The vault: its config and keys (more to come: packs, metadata).

pub mod config;
