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
/// `salvage` (fsck's repair).
pub fn open_options(cache_bytes: usize, salvage: bool) -> EngineOptions {
    EngineOptions {
        salvage,
        ..engine_options(cache_bytes)
    }
}
