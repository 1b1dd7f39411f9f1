//! Python enums mirroring the core's `Cipher` and `Format`.

use crypto_core::prelude as core;
use pyo3::prelude::*;

use super::errors::{BindingError, BindingResult};

#[pyclass(module = "fusefs._native", name = "Cipher", eq, eq_int, frozen, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    #[pyo3(name = "AES_256_GCM")]
    Aes256Gcm,
    #[pyo3(name = "CHACHA20_POLY1305")]
    ChaCha20Poly1305,
}

#[pymethods]
impl Cipher {
    /// The cipher's name as the CLI and FORMAT.md spell it.
    #[getter]
    fn label(&self) -> &'static str {
        core::Cipher::from(*self).name()
    }

    #[staticmethod]
    fn from_label(label: &str) -> BindingResult<Self> {
        core::Cipher::from_name(label)
            .map(Into::into)
            .ok_or_else(|| BindingError::Params(format!("unknown cipher {label:?}")))
    }
}

impl From<Cipher> for core::Cipher {
    fn from(c: Cipher) -> Self {
        match c {
            Cipher::Aes256Gcm => core::Cipher::Aes256Gcm,
            Cipher::ChaCha20Poly1305 => core::Cipher::ChaCha20Poly1305,
        }
    }
}

impl From<core::Cipher> for Cipher {
    fn from(c: core::Cipher) -> Self {
        match c {
            core::Cipher::Aes256Gcm => Cipher::Aes256Gcm,
            core::Cipher::ChaCha20Poly1305 => Cipher::ChaCha20Poly1305,
        }
    }
}

#[pyclass(module = "fusefs._native", name = "Format", eq, eq_int, frozen, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    V1,
    V2,
}

impl From<Format> for core::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::V1 => core::Format::V1,
            Format::V2 => core::Format::V2,
        }
    }
}

impl From<core::Format> for Format {
    fn from(f: core::Format) -> Self {
        match f {
            core::Format::V1 => Format::V1,
            core::Format::V2 => Format::V2,
        }
    }
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Cipher>()?;
    m.add_class::<Format>()?;
    Ok(())
}
