//! The exception hierarchy, and [`BindingError`]: every failure of a binding
//! call, with the one conversion into a Python exception.

use std::sync::Arc;

use crypto_core::error::describe_io;
use crypto_core::scheduler::VaultClosed;
use crypto_core::{Error, ErrorClass};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    _native,
    FusefsError,
    PyException,
    "Base class of every fusefs error."
);
create_exception!(
    _native,
    WrongKeyError,
    FusefsError,
    "Wrong password or key, or the wrong kind of key."
);
create_exception!(
    _native,
    IntegrityError,
    FusefsError,
    "The data is damaged or was tampered with."
);
create_exception!(
    _native,
    FormatError,
    FusefsError,
    "Not a fusefs stream, or an unsupported version."
);
create_exception!(
    _native,
    ResumeError,
    FusefsError,
    "An interrupted run cannot be resumed."
);
create_exception!(_native, ParamsError, FusefsError, "Invalid parameters.");
create_exception!(
    _native,
    CancelledError,
    FusefsError,
    "The run was cancelled."
);
create_exception!(
    _native,
    StreamIOError,
    FusefsError,
    "Reading or writing a file failed (see .errno, .filename)."
);

/// Every way a call into the binding fails. Functions return
/// [`BindingResult`]; the one conversion into a Python exception is
/// `impl From<BindingError> for PyErr` below.
#[derive(Debug)]
pub enum BindingError {
    /// A core error, raised as its class's `FusefsError` subclass with
    /// `.kind`, and `.errno` / `.filename` / `.strerror` for I/O errors.
    Core(Error),
    /// As `Core`, for an error another owner keeps (a `Job`'s outcome, so
    /// that every `wait()` on a failed job raises the same error).
    Shared(Arc<Error>),
    /// An error of a call on an open vault: `OSError(errno)` where the core
    /// gives it one ([`Error::errno`]), else as `Core`.
    Vault(Error),
    /// An error creating or opening a vault: `OSError(errno)` where the core
    /// gives it one at open ([`Error::errno_at_open`]), else as `Core`.
    Open(Error),
    /// A call on a closed vault: `OSError(EBADF, "the vault is closed")`.
    Closed(VaultClosed),
    /// An argument refused before the core saw it: `ParamsError(message)`.
    Params(String),
    /// An argument that is no value of its type: `ValueError(message)`.
    Value(String),
    /// The OS refused a thread: `RuntimeError`.
    Thread(std::io::Error),
    /// An OS call of the binding's own failed (duplicating a file object's
    /// descriptor): the `OSError` subclass of its errno.
    Os(std::io::Error),
    /// An exception from Python code the binding called, or from PyO3.
    Py(PyErr),
}

pub type BindingResult<T> = Result<T, BindingError>;

impl From<Error> for BindingError {
    fn from(e: Error) -> Self {
        BindingError::Core(e)
    }
}

impl From<VaultClosed> for BindingError {
    fn from(c: VaultClosed) -> Self {
        BindingError::Closed(c)
    }
}

impl From<std::io::Error> for BindingError {
    fn from(e: std::io::Error) -> Self {
        BindingError::Os(e)
    }
}

impl From<PyErr> for BindingError {
    fn from(e: PyErr) -> Self {
        BindingError::Py(e)
    }
}

impl From<BindingError> for PyErr {
    fn from(e: BindingError) -> PyErr {
        match e {
            BindingError::Core(e) => core_exception(&e),
            BindingError::Shared(e) => core_exception(&e),
            BindingError::Vault(e) => errno_or_core(e.errno(), &e),
            BindingError::Open(e) => errno_or_core(e.errno_at_open(), &e),
            BindingError::Closed(c) => PyOSError::new_err((c.errno(), c.to_string())),
            BindingError::Params(message) => ParamsError::new_err(message),
            BindingError::Value(message) => PyValueError::new_err(message),
            BindingError::Thread(e) => {
                PyRuntimeError::new_err(format!("cannot start a thread: {e}"))
            }
            BindingError::Os(e) => e.into(),
            BindingError::Py(e) => e,
        }
    }
}

/// `OSError(errno, "<strerror>: <message>")`, or the core error's class.
fn errno_or_core(errno: Option<i32>, e: &Error) -> PyErr {
    match errno {
        Some(n) => {
            let strerror = describe_io(&std::io::Error::from_raw_os_error(n));
            PyOSError::new_err((n, format!("{strerror}: {e}")))
        }
        None => core_exception(e),
    }
}

/// The class's exception, keeping the message, with `.kind` (and `.errno`
/// / `.filename` / `.strerror` for I/O errors).
fn core_exception(e: &Error) -> PyErr {
    let msg = e.to_string();
    let err = match e.class() {
        ErrorClass::Io => StreamIOError::new_err(msg),
        ErrorClass::WrongKey => WrongKeyError::new_err(msg),
        ErrorClass::Format => FormatError::new_err(msg),
        ErrorClass::Integrity => IntegrityError::new_err(msg),
        ErrorClass::Params => ParamsError::new_err(msg),
        ErrorClass::Resume => ResumeError::new_err(msg),
        ErrorClass::Cancelled => CancelledError::new_err(msg),
        ErrorClass::Internal => FusefsError::new_err(msg),
    };
    Python::attach(|py| {
        let v = err.value(py);
        let _ = v.setattr("kind", e.kind());
        let (errno, filename, strerror) = match e {
            Error::Io { path, source, .. } => (
                source.raw_os_error(),
                path.as_ref().map(|p| p.display().to_string()),
                Some(describe_io(source)),
            ),
            _ => (None, None, None),
        };
        let _ = v.setattr("errno", errno);
        let _ = v.setattr("filename", filename);
        let _ = v.setattr("strerror", strerror);
    });
    err
}

pub fn register(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FusefsError", py.get_type::<FusefsError>())?;
    m.add("WrongKeyError", py.get_type::<WrongKeyError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("ResumeError", py.get_type::<ResumeError>())?;
    m.add("ParamsError", py.get_type::<ParamsError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("StreamIOError", py.get_type::<StreamIOError>())?;
    Ok(())
}
