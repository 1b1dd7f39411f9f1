//! The exception hierarchy and the one conversion from core errors into it.

use crypto_core::error::describe_io;
use crypto_core::{Error, ErrorClass};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
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

/// Convert a core error: pick the class, keep the message, attach `.kind`
/// (and `.errno` / `.filename` for I/O errors).
pub fn to_pyerr(e: Error) -> PyErr {
    to_pyerr_ref(&e)
}

/// As [`to_pyerr`], for an error that stays owned elsewhere (a Job's outcome).
pub fn to_pyerr_ref(e: &Error) -> PyErr {
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
