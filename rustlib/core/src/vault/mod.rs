//! The vault: its config and keys, packs of content frames, metadata.

pub mod cache;
pub mod config;
pub mod engine;
pub mod metadata;
pub mod packs;
pub mod segment;
pub mod snapshot;
