//! The engine's and a new vault's options from the binding's arguments.

use std::path::PathBuf;

use crypto_core::types::{Argon2Params, Cipher};
use crypto_core::vault::engine::EngineOptions;
use crypto_core::vault::VaultOptions;

use super::errors::{BindingError, BindingResult};

/// A new vault's options (`Vault.create`); an unknown cipher is a `ParamsError`.
pub fn vault_options(
    cipher: &str,
    segment_size: u32,
    compression_level: Option<i32>,
    argon2_m_kib: u32,
    argon2_t: u32,
) -> BindingResult<VaultOptions> {
    let cipher = Cipher::from_name(cipher)
        .ok_or_else(|| BindingError::Params(format!("unknown cipher {cipher:?}")))?;
    Ok(VaultOptions {
        cipher,
        segment_size,
        compression: compression_level,
        argon2: Argon2Params {
            m_kib: argon2_m_kib,
            t: argon2_t,
            p: 1,
        },
    })
}

/// The defaults, with a segment cache of `cache_bytes`.
pub fn engine_options(cache_bytes: usize) -> EngineOptions {
    EngineOptions {
        cache_bytes,
        ..EngineOptions::default()
    }
}

/// `engine_options`, opening past log records damaged in both copies if
/// `salvage` (fsck's repair), writing nothing if `read_only`, even while
/// a writer holds the vault if `beside_writer` (fsck of a mounted vault),
/// with rollback protection through the local state in `local_state_dir`
/// (refusing a vault behind it unless `accept_rollback`).
pub fn open_options(
    cache_bytes: usize,
    salvage: bool,
    read_only: bool,
    beside_writer: bool,
    local_state_dir: Option<PathBuf>,
    accept_rollback: bool,
) -> EngineOptions {
    EngineOptions {
        salvage,
        read_only,
        beside_writer,
        local_state_dir,
        accept_rollback,
        ..engine_options(cache_bytes)
    }
}
