//! `fusefs.Vault`'s object and how each of its calls runs: the vault is
//! taken from its session (EBADF once closed), the work runs with the GIL
//! released, and its error becomes the binding's (see `errors`).

use std::sync::Arc;

use crypto_core::scheduler::VaultSession;
use crypto_core::vault::Vault;
use crypto_core::Error;
use pyo3::prelude::*;

use super::errors::{BindingError, BindingResult};

/// An open vault. Thread-safe: call it from any number of threads.
#[pyclass(module = "fusefs._native", name = "Vault", frozen)]
pub struct PyVault {
    pub(super) session: VaultSession,
}

impl PyVault {
    pub(super) fn get(&self) -> BindingResult<Arc<Vault>> {
        Ok(self.session.vault()?)
    }

    pub(super) fn wrap(v: Vault) -> PyVault {
        PyVault {
            session: VaultSession::new(v),
        }
    }
}

/// Run `f` on the vault with the GIL released; its error is a vault call's.
pub(super) fn run<T: Send>(
    py: Python<'_>,
    v: &PyVault,
    f: impl FnOnce(&Vault) -> Result<T, Error> + Send,
) -> BindingResult<T> {
    let vault = v.get()?;
    py.detach(|| f(&vault)).map_err(BindingError::Vault)
}

/// `r`, with the refusal `absent` (the errno of a name that is not there)
/// as `None`: the caller answers it without an exception raised in the
/// binding and caught in Python, which costs more than the call itself.
pub(super) fn absent_as_none<T>(r: BindingResult<T>, absent: i32) -> BindingResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(BindingError::Vault(e)) if e.errno() == Some(absent) => Ok(None),
        Err(e) => Err(e),
    }
}
