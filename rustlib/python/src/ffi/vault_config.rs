//! `fusefs.conf` without opening the vault: its public fields for
//! `fusefs info`, and password changes for `fusefs passwd` (which re-seal
//! the master key only; the log, snapshots and packs are not touched).

use std::path::PathBuf;

use crypto_core::storage::RealFs;
use crypto_core::vault::{Credential, KdfCosts, VaultConfig};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::BindingResult;
use super::secrets::secret_bytes;

/// The public fields of `path/fusefs.conf` (nothing secret, no password
/// needed). A missing, truncated, edited or unknown-version config raises.
#[pyfunction]
fn vault_info<'py>(py: Python<'py>, path: PathBuf) -> BindingResult<Bound<'py, PyDict>> {
    let config = py.detach(|| crypto_core::vault::config::load_either(&RealFs, &path))?;
    let d = PyDict::new(py);
    d.set_item("version", config.version())?;
    d.set_item("vault_id", hex(config.vault_id()))?;
    d.set_item("created", config.created())?;
    d.set_item("cipher", config.cipher().name())?;
    d.set_item("segment_size", config.segment_size())?;
    d.set_item("compression_level", config.compression())?;
    d.set_item("features", config.features().to_vec())?;
    let kdf = config.kdf();
    d.set_item("kdf", "argon2id")?;
    d.set_item("argon2_m_kib", kdf.m_kib)?;
    d.set_item("argon2_t", kdf.t)?;
    d.set_item("argon2_p", kdf.p)?;
    Ok(d)
}

/// Re-seal the master key of the vault in `path` under `new_password`,
/// atomically. `old` is the current password, or with `old_is_master_key`
/// the printed master key (for a forgotten password). Argon2id costs keep
/// their current values unless given.
#[pyfunction]
#[pyo3(signature = (path, old, new_password, old_is_master_key=false, argon2_m_kib=None, argon2_t=None))]
fn change_vault_password(
    py: Python<'_>,
    path: PathBuf,
    old: &Bound<'_, PyAny>,
    new_password: &Bound<'_, PyAny>,
    old_is_master_key: bool,
    argon2_m_kib: Option<u32>,
    argon2_t: Option<u32>,
) -> BindingResult<()> {
    let (old, new_password) = (secret_bytes(old)?, secret_bytes(new_password)?);
    let costs = KdfCosts {
        m_kib: argon2_m_kib,
        t: argon2_t,
    };
    let changed = py.detach(|| {
        let printed;
        let credential = if old_is_master_key {
            printed = String::from_utf8_lossy(&old);
            Credential::MasterKey(&printed)
        } else {
            Credential::Password(&old)
        };
        VaultConfig::load(&RealFs, &path)?.change_password(
            &RealFs,
            &path,
            credential,
            &new_password,
            costs,
        )
    });
    Ok(changed?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(vault_info, m)?)?;
    m.add_function(wrap_pyfunction!(change_vault_password, m)?)?;
    Ok(())
}
