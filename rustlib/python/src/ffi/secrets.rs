//! Secrets crossing from Python, and the process's policies on them.
//!
//! A password arrives as `bytes` or, better, a `bytearray` the caller
//! overwrites once the call returns (`bytes` cannot be wiped): it is copied
//! once, into a buffer zeroized on drop, and nothing else here keeps it.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use zeroize::Zeroizing;

use crypto_core::crypto::{kdf_policy, secret_memory};
use crypto_core::types::Argon2Params;

/// The bytes of a `bytes`, `bytearray` or `str` (UTF-8) secret, in a buffer
/// zeroized on drop. Exactly one copy: `to_vec` allocates the final size.
pub fn secret_bytes(obj: &Bound<'_, PyAny>) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Zeroizing::new(b.to_vec()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Zeroizing::new(b.as_bytes().to_vec()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Zeroizing::new(s.to_str()?.as_bytes().to_vec()));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(
        "a secret is bytes, bytearray or str",
    ))
}

/// Lift (`True`) or restore (`False`) the limit on Argon2id costs read from
/// headers and configs, for the rest of this process (`--allow-expensive-kdf`).
#[pyfunction]
fn allow_expensive_kdf(allowed: bool) {
    kdf_policy::allow_expensive(allowed);
}

/// Why Argon2id costs `m_kib` × `t` are too weak to create with, or None.
#[pyfunction]
fn kdf_floor_problem(m_kib: u32, t: u32) -> Option<String> {
    kdf_policy::floor_problem(Argon2Params { m_kib, t, p: 1 })
}

/// How the process's key material is kept: `{"pages": N, "locked": N,
/// "dontdump": N}` (pages now held, of which locked in RAM by `mlock`, and
/// excluded from core dumps by `MADV_DONTDUMP`).
#[pyfunction]
fn secret_memory_status(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let s = secret_memory::status();
    let d = pyo3::types::PyDict::new(py);
    d.set_item("pages", s.pages)?;
    d.set_item("locked", s.locked)?;
    d.set_item("dontdump", s.dontdump)?;
    Ok(d)
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(allow_expensive_kdf, m)?)?;
    m.add_function(wrap_pyfunction!(kdf_floor_problem, m)?)?;
    m.add_function(wrap_pyfunction!(secret_memory_status, m)?)?;
    Ok(())
}
