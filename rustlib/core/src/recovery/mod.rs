//! Resuming interrupted work: checkpoints of long encrypt/decrypt runs.

pub mod checkpoint;
