//! Everything Python-facing: one module per concern, registered here.

use pyo3::prelude::*;

mod adapters_async;
mod adapters_sync;
mod constants;
mod enums;
mod errors;
mod fsck;
mod options;
mod params;
mod pyio;
mod secrets;
mod types;
mod vault;
mod vault_call;
mod vault_config;
mod vault_types;

pub fn register(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(py, m)?;
    enums::register(py, m)?;
    params::register(py, m)?;
    types::register(py, m)?;
    adapters_sync::register(py, m)?;
    adapters_async::register(py, m)?;
    constants::register(py, m)?;
    vault_types::register(py, m)?;
    vault::register(py, m)?;
    vault_config::register(py, m)?;
    secrets::register(py, m)?;
    Ok(())
}
