//! crypto-python: the Python module `fusefs._native`, a thin PyO3 binding of
//! crypto-core. It converts types and errors and releases the GIL around all
//! crypto and I/O; it holds no logic of its own.

use pyo3::prelude::*;

mod ffi;

/// Python module entry point.
#[pymodule]
fn _native(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    ffi::register(py, m)
}
