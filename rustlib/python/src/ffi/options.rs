//! The engine's options from the binding's arguments.

use crypto_core::vault::engine::EngineOptions;

/// The defaults, with a segment cache of `cache_bytes`.
pub fn engine_options(cache_bytes: usize) -> EngineOptions {
    EngineOptions {
        cache_bytes,
        ..EngineOptions::default()
    }
}

/// `engine_options`, opening past log records damaged in both copies if
/// `salvage` (fsck's repair), writing nothing if `read_only`, even while
/// a writer holds the vault if `beside_writer` (fsck of a mounted vault).
pub fn open_options(
    cache_bytes: usize,
    salvage: bool,
    read_only: bool,
    beside_writer: bool,
) -> EngineOptions {
    EngineOptions {
        salvage,
        read_only,
        beside_writer,
        ..engine_options(cache_bytes)
    }
}
