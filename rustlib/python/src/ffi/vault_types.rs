//! What `fusefs.Vault` returns, as frozen Python classes: `Attr`, and the
//! records of `statfs`, `telemetry`, `compact_log` and `compact`, each
//! converted from its core value.

use std::ffi::{c_int, c_void};

use crypto_core::telemetry::VaultTelemetry as CoreTelemetry;
use crypto_core::vault::{
    Attr, CompactionReport, FileTimes, InodeKind, PackCompactionReport as CorePackReport,
    ReadBytes, Timespec,
};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyMemoryView};

use super::errors::{BindingError, BindingResult};

/// One readdir row: (name, ino, st_mode type bits, next offset).
pub type DirRow<'py> = (Bound<'py, PyBytes>, u64, u32, u64);
/// One readdirplus row: (name, attributes, next offset).
pub type DirPlusRow<'py> = (Bound<'py, PyBytes>, PyAttr, u64);

/// The kind named by `mode`'s file-type bits, for mknod.
pub fn kind_of_mode(mode: u32) -> BindingResult<InodeKind> {
    InodeKind::from_mode(mode)
        .ok_or_else(|| BindingError::Value(format!("unknown file type in mode {mode:#o}")))
}

/// `Vault.file_times`' name of who keeps regular files' mtime and ctime.
pub fn file_times_name(owner: FileTimes) -> &'static str {
    match owner {
        FileTimes::Engine => "engine",
        FileTimes::Kernel => "kernel",
    }
}

/// The owner `Vault.file_times` names: "engine" or "kernel".
pub fn file_times_named(name: &str) -> BindingResult<FileTimes> {
    match name {
        "engine" => Ok(FileTimes::Engine),
        "kernel" => Ok(FileTimes::Kernel),
        other => Err(BindingError::Value(format!(
            "file_times is 'engine' or 'kernel', not {other:?}"
        ))),
    }
}

/// Nanoseconds since the epoch.
pub fn ns(t: Timespec) -> i128 {
    t.sec as i128 * 1_000_000_000 + t.nsec as i128
}

pub fn from_ns(n: i128) -> Timespec {
    Timespec {
        sec: n.div_euclid(1_000_000_000) as i64,
        nsec: n.rem_euclid(1_000_000_000) as u32,
    }
}

/// What stat reports; times in nanoseconds since the epoch.
#[pyclass(module = "fusefs._native", name = "Attr", frozen, get_all)]
#[derive(Clone)]
pub struct PyAttr {
    pub ino: u64,
    /// Type and permission bits, as st_mode.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime_ns: i128,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl From<Attr> for PyAttr {
    fn from(a: Attr) -> Self {
        PyAttr {
            ino: a.ino,
            mode: a.kind.mode_bits() | a.mode,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            size: a.size,
            blocks: a.blocks,
            atime_ns: ns(a.atime),
            mtime_ns: ns(a.mtime),
            ctime_ns: ns(a.ctime),
        }
    }
}

/// What `Attr.stat` returns: the fields in declaration order.
type StatTuple = (u64, u32, u32, u32, u32, u64, u64, u64, i128, i128, i128);

#[pymethods]
impl PyAttr {
    /// All fields at once, in declaration order (ino, mode, nlink, uid, gid,
    /// rdev, size, blocks, atime_ns, mtime_ns, ctime_ns): one call where
    /// reading the eleven attributes one by one costs twice as much, for
    /// the reply of every request that answers with attributes.
    #[getter]
    fn stat(&self) -> StatTuple {
        (
            self.ino,
            self.mode,
            self.nlink,
            self.uid,
            self.gid,
            self.rdev,
            self.size,
            self.blocks,
            self.atime_ns,
            self.mtime_ns,
            self.ctime_ns,
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "Attr(ino={}, mode={:#o}, nlink={}, size={})",
            self.ino, self.mode, self.nlink, self.size
        )
    }
}

/// The bytes of one read, handed to Python as they are: exported read-only
/// through the buffer protocol (`read` returns a `memoryview` of it), so
/// they reach pyfuse3's `fuse_reply_buf` without a copy into a `bytes`.
#[pyclass(module = "fusefs._native", name = "_ReadBuffer", frozen)]
pub struct ReadBuffer {
    data: ReadBytes,
}

impl ReadBuffer {
    /// A read-only `memoryview` over `data`, which it owns from now on.
    pub fn memoryview(py: Python<'_>, data: ReadBytes) -> PyResult<Bound<'_, PyMemoryView>> {
        let owner = Bound::new(py, ReadBuffer { data })?;
        PyMemoryView::from(owner.as_any())
    }
}

#[pymethods]
impl ReadBuffer {
    /// # Safety
    ///
    /// Called by Python with a `view` to fill. `data` is never changed or
    /// moved while the object lives (it is frozen, and the heap buffer of
    /// a `ReadBytes` stays put), and `PyBuffer_FillInfo` stores a new
    /// reference to the object in `view.obj`, so the bytes outlive every
    /// view of them.
    /// A writable view is refused (`BufferError`).
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let data: &[u8] = &slf.get().data;
        // SAFETY: as above; `view` is the pointer Python passed in.
        let filled = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                data.as_ptr() as *mut c_void,
                data.len() as ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if filled == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }
}

/// A field as Python's `repr` writes it.
trait PyRepr {
    fn py_repr(&self) -> String;
}

macro_rules! py_repr_as_display {
    ($($t:ty),*) => {
        $(impl PyRepr for $t {
            fn py_repr(&self) -> String {
                self.to_string()
            }
        })*
    };
}
py_repr_as_display!(u64, usize);

impl PyRepr for f64 {
    fn py_repr(&self) -> String {
        format!("{self:?}")
    }
}

impl<T: PyRepr> PyRepr for Option<T> {
    fn py_repr(&self) -> String {
        self.as_ref()
            .map_or_else(|| "None".to_string(), PyRepr::py_repr)
    }
}

impl PyRepr for bool {
    fn py_repr(&self) -> String {
        (if *self { "True" } else { "False" }).to_string()
    }
}

/// A frozen Python class of plain fields (`name = value` as its `repr`
/// writes them), with `to_dict()` for JSON.
macro_rules! record {
    (
        $(#[$doc:meta])*
        $name:ident {
            $($(#[$field_doc:meta])* $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$doc])*
        #[pyclass(module = "fusefs._native", frozen, get_all)]
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $($(#[$field_doc])* pub $field: $ty,)*
        }

        #[pymethods]
        impl $name {
            /// The fields as a dict.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $(d.set_item(stringify!($field), self.$field)?;)*
                Ok(d)
            }

            fn __repr__(&self) -> String {
                let fields = [$(format!("{}={}", stringify!($field), self.$field.py_repr()),)*];
                format!("{}({})", stringify!($name), fields.join(", "))
            }
        }
    };
}

record! {
    /// `Vault.statfs()`: inodes of every kind, plaintext bytes stored, and
    /// directories (counted in `files` too).
    VaultUsage {
        files: u64,
        bytes: u64,
        dirs: u64,
    }
}

record! {
    /// `Vault.telemetry()`: counts the engine keeps (no copy of the
    /// metadata); since the open: I/O and cache counts; on disk now: sizes.
    VaultTelemetry {
        inodes: u64,
        dirs: u64,
        stored_bytes: u64,
        packs: u64,
        live_bytes: u64,
        dead_bytes: u64,
        log_bytes_since_snapshot: u64,
        idle_seconds: f64,
        compaction_cycles: u64,
        reads: u64,
        bytes_read: u64,
        writes: u64,
        bytes_written: u64,
        fsyncs: u64,
        cache_hits: u64,
        cache_misses: u64,
        /// Decrypted segments held now, and the most the cache holds.
        cache_bytes: u64,
        cache_capacity: u64,
        log_bytes: u64,
        pack_bytes: u64,
        snapshot_bytes: u64,
        /// Whether background compaction (`start_compaction`) is running.
        compaction_running: bool,
        /// A compaction cycle is running now.
        compacting_now: bool,
        /// How long ago this session's last compaction cycle ended, and the
        /// pack bytes it reclaimed (None before the first).
        last_compaction_seconds_ago: Option<f64>,
        last_compaction_reclaimed_bytes: Option<u64>,
    }
}

impl VaultTelemetry {
    pub fn new(t: CoreTelemetry, compaction_running: bool) -> Self {
        VaultTelemetry {
            inodes: t.inodes,
            dirs: t.dirs,
            stored_bytes: t.stored_bytes,
            packs: t.packs,
            live_bytes: t.live_bytes,
            dead_bytes: t.dead_bytes,
            log_bytes_since_snapshot: t.log_bytes_since_snapshot,
            idle_seconds: t.idle.as_secs_f64(),
            compaction_cycles: t.compaction_cycles,
            reads: t.reads,
            bytes_read: t.bytes_read,
            writes: t.writes,
            bytes_written: t.bytes_written,
            fsyncs: t.fsyncs,
            cache_hits: t.cache_hits,
            cache_misses: t.cache_misses,
            cache_bytes: t.cache_bytes,
            cache_capacity: t.cache_capacity,
            log_bytes: t.log_bytes,
            pack_bytes: t.pack_bytes,
            snapshot_bytes: t.snapshot_bytes,
            compaction_running,
            compacting_now: t.compacting_now,
            last_compaction_seconds_ago: t.last_compaction.map(|(ago, _)| ago.as_secs_f64()),
            last_compaction_reclaimed_bytes: t.last_compaction.map(|(_, bytes)| bytes),
        }
    }
}

record! {
    /// What one log compaction did: the snapshot written, the last log
    /// record it covers, and the files it let go.
    LogCompactionReport {
        snapshot: u64,
        covers_seq: u64,
        log_files_deleted: usize,
        snapshots_deleted: usize,
    }
}

impl From<CompactionReport> for LogCompactionReport {
    fn from(r: CompactionReport) -> Self {
        LogCompactionReport {
            snapshot: r.snapshot,
            covers_seq: r.covers_seq,
            log_files_deleted: r.log_files_deleted,
            snapshots_deleted: r.snapshots_deleted,
        }
    }
}

record! {
    /// What one pack compaction did.
    PackCompactionReport {
        packs_deleted: usize,
        bytes_copied: u64,
        bytes_reclaimed: u64,
    }
}

impl From<CorePackReport> for PackCompactionReport {
    fn from(r: CorePackReport) -> Self {
        PackCompactionReport {
            packs_deleted: r.packs_deleted,
            bytes_copied: r.bytes_copied,
            bytes_reclaimed: r.bytes_reclaimed,
        }
    }
}

/// `Vault.compact()`: what each half of one compaction cycle did (`None`:
/// it did not run).
#[pyclass(module = "fusefs._native", frozen, get_all)]
#[derive(Clone, Debug, PartialEq)]
pub struct CompactionCycleReport {
    pub log: Option<LogCompactionReport>,
    pub packs: Option<PackCompactionReport>,
}

#[pymethods]
impl CompactionCycleReport {
    /// `{"log": {...} or None, "packs": {...} or None}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("log", self.log.as_ref().map(|r| r.to_dict(py)).transpose()?)?;
        d.set_item(
            "packs",
            self.packs.as_ref().map(|r| r.to_dict(py)).transpose()?,
        )?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let show = |r: Option<String>| r.unwrap_or_else(|| "None".into());
        format!(
            "CompactionCycleReport(log={}, packs={})",
            show(self.log.as_ref().map(|r| r.__repr__())),
            show(self.packs.as_ref().map(|r| r.__repr__())),
        )
    }
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAttr>()?;
    m.add_class::<VaultUsage>()?;
    m.add_class::<VaultTelemetry>()?;
    m.add_class::<LogCompactionReport>()?;
    m.add_class::<PackCompactionReport>()?;
    m.add_class::<CompactionCycleReport>()?;
    Ok(())
}
