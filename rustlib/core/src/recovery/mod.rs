//! Resuming interrupted work: resume checkpoints of long encrypt/decrypt
//! runs, and bootstrapping a vault's metadata from its log.

pub mod bootstrap;
pub mod carried;
pub mod checkpoint;
