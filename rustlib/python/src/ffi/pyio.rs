//! Python binary file objects as Rust readers and writers.
//!
//! An object with a working `fileno()` is used through a duplicate of its
//! descriptor (no GIL, no copies); anything else (`io.BytesIO`, sockets'
//! makefile, custom classes) through its `read`/`write` methods, taking the
//! GIL for each call.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{BorrowedFd, RawFd};

use crypto_core::prelude::Sink;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::BindingResult;

pub enum PyStream {
    Fd(File),
    Obj(Py<PyAny>),
}

/// A Python exception from read()/write() as an io::Error, keeping the errno
/// of an OSError.
fn py_io_err(e: PyErr) -> io::Error {
    Python::attach(|py| {
        let v = e.value(py);
        let errno = v
            .getattr("errno")
            .ok()
            .and_then(|n| n.extract::<i32>().ok());
        match errno {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::other(v.to_string()),
        }
    })
}

impl PyStream {
    /// Wrap `obj`; for outputs, flush Python-side buffers first so bytes land in order.
    pub fn new(obj: &Bound<'_, PyAny>, output: bool) -> BindingResult<Self> {
        if output && obj.hasattr("flush")? {
            obj.call_method0("flush")?;
        }
        let fd: Option<RawFd> = obj
            .call_method0("fileno")
            .ok()
            .and_then(|f| f.extract().ok());
        if let Some(fd) = fd.filter(|fd| *fd >= 0) {
            // SAFETY: the descriptor belongs to `obj`, which is alive for this call;
            // we only borrow it long enough to duplicate it.
            let owned = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
            let mut file = File::from(owned);
            let seekable = obj
                .call_method0("seekable")
                .and_then(|s| s.extract::<bool>())
                .unwrap_or(false);
            if seekable {
                // The object's logical position may differ from the descriptor's
                // (read-ahead buffers); start where the object says it is.
                let pos: u64 = obj.call_method0("tell")?.extract()?;
                file.seek(SeekFrom::Start(pos))?;
            }
            return Ok(PyStream::Fd(file));
        }
        Ok(PyStream::Obj(obj.clone().unbind()))
    }

    /// Bring the Python object's position in line after we used its descriptor.
    pub fn sync_position(&mut self, obj: &Bound<'_, PyAny>) -> BindingResult<()> {
        if let PyStream::Fd(f) = self {
            let seekable = obj
                .call_method0("seekable")
                .and_then(|s| s.extract::<bool>())
                .unwrap_or(false);
            if seekable {
                let pos = f.stream_position()?;
                obj.call_method1("seek", (pos,))?;
            }
        }
        Ok(())
    }
}

impl Read for PyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PyStream::Fd(f) => f.read(buf),
            PyStream::Obj(o) => Python::attach(|py| {
                let data = o
                    .call_method1(py, "read", (buf.len(),))
                    .map_err(py_io_err)?;
                let data = data.bind(py);
                if data.is_none() {
                    return Ok(0);
                }
                let bytes = data
                    .cast::<PyBytes>()
                    .map_err(|_| io::Error::other("read() did not return bytes"))?;
                let b = bytes.as_bytes();
                let n = b.len().min(buf.len());
                buf[..n].copy_from_slice(&b[..n]);
                Ok(n)
            }),
        }
    }
}

impl Write for PyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PyStream::Fd(f) => f.write(buf),
            PyStream::Obj(o) => Python::attach(|py| {
                let r = o
                    .call_method1(py, "write", (PyBytes::new(py, buf),))
                    .map_err(py_io_err)?;
                // Raw streams may write less; buffered ones return the length or None.
                Ok(r.extract::<Option<usize>>(py)
                    .ok()
                    .flatten()
                    .unwrap_or(buf.len()))
            }),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            PyStream::Fd(f) => f.flush(),
            PyStream::Obj(o) => Python::attach(|py| {
                if o.bind(py).hasattr("flush").unwrap_or(false) {
                    o.call_method0(py, "flush").map_err(py_io_err)?;
                }
                Ok(())
            }),
        }
    }
}

impl Sink for PyStream {}
