//! Parameters and key material: `EncryptParams`, `ParallelismProfile`, `Key`.

use crypto_core::prelude as core;
use pyo3::prelude::*;

use super::enums::{Cipher, Format};
use super::errors::{BindingError, BindingResult};

#[pyclass(module = "fusefs._native", name = "EncryptParams", frozen)]
#[derive(Clone)]
pub struct EncryptParams {
    pub inner: core::EncryptParams,
}

#[pymethods]
impl EncryptParams {
    #[new]
    #[pyo3(signature = (format=Format::V2, cipher=Cipher::Aes256Gcm, segment_size=None, compress=false,
        compression_level=crypto_core::constants::DEFAULT_ZSTD_LEVEL, argon2_m_kib=crypto_core::constants::DEFAULT_ARGON2_M_KIB,
        argon2_t=crypto_core::constants::DEFAULT_ARGON2_T, argon2_p=crypto_core::constants::DEFAULT_ARGON2_P,
        checkpoint_bytes=crypto_core::constants::DEFAULT_CHECKPOINT_BYTES))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        format: Format,
        cipher: Cipher,
        segment_size: Option<u32>,
        compress: bool,
        compression_level: i32,
        argon2_m_kib: u32,
        argon2_t: u32,
        argon2_p: u32,
        checkpoint_bytes: u64,
    ) -> BindingResult<Self> {
        let base = core::EncryptParams::for_format(format.into());
        let inner = core::EncryptParams {
            cipher: cipher.into(),
            segment_size: segment_size.unwrap_or(base.segment_size),
            compression: compress.then_some(compression_level),
            argon2: core::Argon2Params {
                m_kib: argon2_m_kib,
                t: argon2_t,
                p: argon2_p,
            },
            checkpoint_bytes,
            ..base
        };
        inner.validate()?;
        Ok(EncryptParams { inner })
    }

    #[getter]
    fn format(&self) -> Format {
        self.inner.format.into()
    }
    #[getter]
    fn cipher(&self) -> Cipher {
        self.inner.cipher.into()
    }
    #[getter]
    fn segment_size(&self) -> u32 {
        self.inner.segment_size
    }
    #[getter]
    fn compress(&self) -> bool {
        self.inner.compression.is_some()
    }
    #[getter]
    fn compression_level(&self) -> Option<i32> {
        self.inner.compression
    }
    #[getter]
    fn checkpoint_bytes(&self) -> u64 {
        self.inner.checkpoint_bytes
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        format!(
            "EncryptParams(format=V{}, cipher={}, segment_size={}, compression={:?}, argon2=(m={} KiB, t={}, p={}))",
            p.format.version(),
            p.cipher.name(),
            p.segment_size,
            p.compression,
            p.argon2.m_kib,
            p.argon2.t,
            p.argon2.p
        )
    }
}

#[pyclass(module = "fusefs._native", name = "ParallelismProfile", frozen)]
#[derive(Clone, Copy)]
pub struct ParallelismProfile {
    pub inner: core::ParallelismProfile,
}

#[pymethods]
impl ParallelismProfile {
    /// One worker per core.
    #[staticmethod]
    fn auto() -> Self {
        ParallelismProfile {
            inner: core::ParallelismProfile::Auto,
        }
    }
    #[staticmethod]
    fn single() -> Self {
        ParallelismProfile {
            inner: core::ParallelismProfile::Single,
        }
    }
    #[staticmethod]
    fn fixed(threads: usize) -> BindingResult<Self> {
        if threads == 0 {
            return Err(BindingError::Params("threads must be at least 1".into()));
        }
        Ok(ParallelismProfile {
            inner: core::ParallelismProfile::Fixed(threads),
        })
    }
    /// Worker threads this profile runs.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }
    fn __repr__(&self) -> String {
        format!(
            "ParallelismProfile({:?}, threads={})",
            self.inner,
            self.inner.threads()
        )
    }
}

pub fn parallelism(p: Option<ParallelismProfile>) -> core::ParallelismProfile {
    p.map(|p| p.inner).unwrap_or_default()
}

/// A password or a raw 32-byte key; the secret stays in Rust, zeroized on drop.
#[pyclass(module = "fusefs._native", name = "Key", frozen)]
pub struct Key {
    pub inner: core::KeyMaterial,
}

#[pymethods]
impl Key {
    #[staticmethod]
    fn from_password(password: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Key {
            inner: core::KeyMaterial::password(&super::secrets::secret_bytes(password)?),
        })
    }
    #[staticmethod]
    fn from_raw(key: &Bound<'_, PyAny>) -> BindingResult<Self> {
        Ok(Key {
            inner: core::KeyMaterial::raw(&super::secrets::secret_bytes(key)?)?,
        })
    }
    #[getter]
    fn is_password(&self) -> bool {
        matches!(self.inner, core::KeyMaterial::Password(_))
    }
    fn __repr__(&self) -> &'static str {
        if self.is_password() {
            "Key(password)"
        } else {
            "Key(raw)"
        }
    }
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EncryptParams>()?;
    m.add_class::<ParallelismProfile>()?;
    m.add_class::<Key>()?;
    Ok(())
}
