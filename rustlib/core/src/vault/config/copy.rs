//! The config's second copy, `mirror/fusefs.conf` ([`crate::mirror`]):
//! written after the config when a vault is created, before it when the
//! password changes (so a crash between leaves the copy ahead only for a
//! change never acknowledged, which the next open undoes), and read when
//! the config itself does not load or unlock.

use std::path::Path;

use super::file::{VaultConfig, CONFIG_FILE, MAX_CONFIG_LEN};

use crate::crypto::keys::SecretKey;
use crate::error::Result;
pub use crate::mirror::ConfigSource;
use crate::storage::durable::{read_small, write_durably};
use crate::storage::FileSystem;

/// `VAULT/mirror/fusefs.conf`.
pub fn config_copy(dir: &Path) -> std::path::PathBuf {
    crate::mirror::copy_of(dir, CONFIG_FILE)
}

/// Write `bytes` as the config's copy of the vault in `dir`.
pub fn write_copy(fs: &dyn FileSystem, dir: &Path, bytes: &[u8]) -> Result<()> {
    crate::mirror::write_copy(fs, dir, CONFIG_FILE, bytes)
}

fn read(fs: &dyn FileSystem, path: &Path) -> Option<Vec<u8>> {
    read_small(fs, path, MAX_CONFIG_LEN).ok().flatten()
}

/// Load and unlock the config of the vault in `dir` with `unlock`. If the
/// config does not load or unlock and its copy holds other bytes, the copy
/// is tried: whichever unlocks, the other file is rewritten from it
/// (unless `mend` is false: an open that writes nothing). When neither
/// does, the config's own error is returned (a wrong password costs one
/// key derivation more only when the two files differ).
pub fn unlock_either(
    fs: &dyn FileSystem,
    dir: &Path,
    unlock: &dyn Fn(&VaultConfig) -> Result<SecretKey>,
    mend: bool,
) -> Result<(VaultConfig, SecretKey, ConfigSource)> {
    let path = VaultConfig::path(dir);
    let copy_path = config_copy(dir);
    let first = VaultConfig::load(fs, dir).and_then(|c| unlock(&c).map(|m| (c, m)));
    let mine = read(fs, &path);
    let theirs = read(fs, &copy_path);
    match first {
        Ok((config, master)) => {
            if theirs.is_some() && theirs == mine {
                return Ok((config, master, ConfigSource::Config));
            }
            if let Some(bytes) = mine.as_ref().filter(|_| mend) {
                write_copy(fs, dir, bytes)?;
            }
            Ok((config, master, ConfigSource::CopyRefreshed))
        }
        Err(e) => {
            let Some(bytes) = theirs.filter(|t| Some(t) != mine.as_ref()) else {
                return Err(e);
            };
            let Ok(config) = VaultConfig::parse(&bytes) else {
                return Err(e);
            };
            if config_vault_id(&mine).is_some_and(|id| id != *config.vault_id()) {
                return Err(e); // a copy of another vault's config
            }
            match unlock(&config) {
                Ok(master) => {
                    if mend {
                        write_durably(fs, &path, &bytes)?;
                    }
                    Ok((config, master, ConfigSource::Mended))
                }
                Err(_) => Err(e),
            }
        }
    }
}

/// The public fields of the vault in `dir`: its config's, or where that
/// does not load, its copy's (nothing authenticated either way; an open
/// then unlocks through [`unlock_either`]).
pub fn load_either(fs: &dyn FileSystem, dir: &Path) -> Result<VaultConfig> {
    VaultConfig::load(fs, dir).or_else(|e| {
        read(fs, &config_copy(dir))
            .and_then(|b| VaultConfig::parse(&b).ok())
            .ok_or(e)
    })
}

/// The vault id of a config's bytes, if they parse.
fn config_vault_id(bytes: &Option<Vec<u8>>) -> Option<[u8; 16]> {
    VaultConfig::parse(bytes.as_ref()?)
        .ok()
        .map(|c| *c.vault_id())
}
