//! Blocking adapters: extract arguments, release the GIL, run the core, convert back.

use std::path::PathBuf;

use crypto_core::prelude as core;
use pyo3::prelude::*;

use super::errors::BindingResult;
use super::params::{parallelism, EncryptParams, Key, ParallelismProfile};
use super::pyio::PyStream;
use super::types::TelemetrySnapshot;

fn params_or_default(p: Option<PyRef<'_, EncryptParams>>) -> core::EncryptParams {
    p.map(|p| p.inner.clone()).unwrap_or_default()
}

/// Encrypt file `src` into `dst` (written aside, renamed on success).
#[pyfunction]
#[pyo3(signature = (src, dst, key, params=None, parallelism=None, resume=false))]
pub fn encrypt_path(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    key: PyRef<'_, Key>,
    params: Option<PyRef<'_, EncryptParams>>,
    parallelism: Option<ParallelismProfile>,
    resume: bool,
) -> BindingResult<TelemetrySnapshot> {
    let key = key.inner.clone();
    let params = params_or_default(params);
    let par = self::parallelism(parallelism);
    let control = core::Control::new();
    let telemetry =
        py.detach(|| core::encrypt_file(&src, &dst, &key, &params, par, resume, &control))?;
    Ok(telemetry.into())
}

/// Decrypt file `src` into `dst`; plaintext appears only after full authentication.
#[pyfunction]
#[pyo3(signature = (src, dst, key, parallelism=None, resume=false, checkpoint_bytes=crypto_core::constants::DEFAULT_CHECKPOINT_BYTES))]
pub fn decrypt_path(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    key: PyRef<'_, Key>,
    parallelism: Option<ParallelismProfile>,
    resume: bool,
    checkpoint_bytes: u64,
) -> BindingResult<TelemetrySnapshot> {
    let key = key.inner.clone();
    let par = self::parallelism(parallelism);
    let control = core::Control::new();
    let telemetry = py
        .detach(|| core::decrypt_file(&src, &dst, &key, par, resume, checkpoint_bytes, &control))?;
    Ok(telemetry.into())
}

/// Encrypt from one Python binary file object into another.
#[pyfunction]
#[pyo3(signature = (src, dst, key, params=None, parallelism=None))]
pub fn encrypt_file(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    key: PyRef<'_, Key>,
    params: Option<PyRef<'_, EncryptParams>>,
    parallelism: Option<ParallelismProfile>,
) -> BindingResult<TelemetrySnapshot> {
    let key = key.inner.clone();
    let params = params_or_default(params);
    let par = self::parallelism(parallelism);
    let mut input = PyStream::new(src, false)?;
    let mut output = PyStream::new(dst, true)?;
    let control = core::Control::new();
    let r =
        py.detach(|| core::encrypt_stream(&mut input, &mut output, &key, &params, par, &control));
    input.sync_position(src)?;
    output.sync_position(dst)?;
    Ok(r?.into())
}

/// Decrypt from one Python binary file object into another. Plaintext is
/// written segment by segment after each authenticates; an error at the end
/// (truncation) is raised after earlier segments were written.
#[pyfunction]
#[pyo3(signature = (src, dst, key, parallelism=None))]
pub fn decrypt_file(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    key: PyRef<'_, Key>,
    parallelism: Option<ParallelismProfile>,
) -> BindingResult<TelemetrySnapshot> {
    let key = key.inner.clone();
    let par = self::parallelism(parallelism);
    let mut input = PyStream::new(src, false)?;
    let mut output = PyStream::new(dst, true)?;
    let control = core::Control::new();
    let r = py.detach(|| core::decrypt_stream(&mut input, &mut output, &key, par, &control));
    input.sync_position(src)?;
    output.sync_position(dst)?;
    Ok(r?.into())
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encrypt_path, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_path, m)?)?;
    m.add_function(wrap_pyfunction!(encrypt_file, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_file, m)?)?;
    Ok(())
}
