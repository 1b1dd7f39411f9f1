//! `fusefs.Vault`: the vault engine for the FUSE layer. Inode-level calls,
//! each extracting its arguments, releasing the GIL for the work, and
//! converting the result. Refusals raise `OSError` with the errno the kernel
//! should see (an authentication failure is `EIO`). The class and how each
//! call runs are in `vault_call`.

use std::path::PathBuf;
use std::time::Duration;

use crypto_core::error::errno::{ENODATA, ENOENT};
use crypto_core::vault::{
    AttrChange, CompactionAction, InodeKind, RenameFlags, Vault, DEFAULT_CACHE_BYTES,
};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict, PyMemoryView};
use zeroize::Zeroizing;

use super::errors::{BindingError, BindingResult};
use super::options::{engine_options, open_options, vault_options};
use super::secrets::secret_bytes;
use super::vault_call::{absent_as_none, run, PyVault};
use super::vault_types::{
    file_times_name, file_times_named, from_ns, kind_of_mode, CompactionCycleReport, DirPlusRow,
    DirRow, LogCompactionReport, PyAttr, ReadBuffer, VaultTelemetry, VaultUsage,
};

#[pymethods]
impl PyVault {
    /// Create a new vault in `path` (new or empty directory) and open it.
    /// `cache_bytes`: memory for decrypted segments (LRU; 0 turns it off).
    #[staticmethod]
    #[pyo3(signature = (path, password, cipher="aes-256-gcm", segment_size=65536, compression_level=None, argon2_m_kib=65536, argon2_t=3, *, cache_bytes=DEFAULT_CACHE_BYTES))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        password: &Bound<'_, PyAny>,
        cipher: &str,
        segment_size: u32,
        compression_level: Option<i32>,
        argon2_m_kib: u32,
        argon2_t: u32,
        cache_bytes: usize,
    ) -> BindingResult<PyVault> {
        let options = vault_options(
            cipher,
            segment_size,
            compression_level,
            argon2_m_kib,
            argon2_t,
        )?;
        let password = secret_bytes(password)?;
        let opts = engine_options(cache_bytes);
        py.detach(|| Vault::create_vault(&path, &password, &options, opts))
            .map(PyVault::wrap)
            .map_err(BindingError::Open)
    }

    /// Open the vault in `path` with its password; OSError(EBUSY) if it is
    /// open already. The options are `EngineOptions`' (`salvage`: fsck's
    /// repair; `read_only`: write nothing, changes raise OSError(EROFS);
    /// `beside_writer`: even while a writer holds it; `local_state_dir`,
    /// `accept_rollback`: rollback protection).
    #[staticmethod]
    #[pyo3(signature = (path, password, *, cache_bytes=DEFAULT_CACHE_BYTES, salvage=false, read_only=false, beside_writer=false, local_state_dir=None, accept_rollback=false))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        password: &Bound<'_, PyAny>,
        cache_bytes: usize,
        salvage: bool,
        read_only: bool,
        beside_writer: bool,
        local_state_dir: Option<PathBuf>,
        accept_rollback: bool,
    ) -> BindingResult<PyVault> {
        let password = secret_bytes(password)?;
        let opts = open_options(
            cache_bytes,
            salvage,
            read_only,
            beside_writer,
            local_state_dir,
            accept_rollback,
        );
        py.detach(|| Vault::open_vault(&path, &password, opts))
            .map(PyVault::wrap)
            .map_err(BindingError::Open)
    }

    /// Open the vault in `path` with its printed master key (the options
    /// as for `open`).
    #[staticmethod]
    #[pyo3(signature = (path, master_key, *, cache_bytes=DEFAULT_CACHE_BYTES, salvage=false, read_only=false, beside_writer=false, local_state_dir=None, accept_rollback=false))]
    #[allow(clippy::too_many_arguments)]
    fn open_with_master_key(
        py: Python<'_>,
        path: PathBuf,
        master_key: &Bound<'_, PyAny>,
        cache_bytes: usize,
        salvage: bool,
        read_only: bool,
        beside_writer: bool,
        local_state_dir: Option<PathBuf>,
        accept_rollback: bool,
    ) -> BindingResult<PyVault> {
        let bytes = secret_bytes(master_key)?;
        // Not UTF-8: a wrong master key, said by the core as for any other.
        let key = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        let opts = open_options(
            cache_bytes,
            salvage,
            read_only,
            beside_writer,
            local_state_dir,
            accept_rollback,
        );
        py.detach(|| Vault::open_with_master_key(&path, &key, opts))
            .map(PyVault::wrap)
            .map_err(BindingError::Open)
    }

    fn print_master_key(&self) -> BindingResult<String> {
        Ok(self.get()?.print_master_key().to_string())
    }

    fn lookup(&self, py: Python<'_>, parent: u64, name: &[u8]) -> BindingResult<PyAttr> {
        let name = name.to_vec();
        run(py, self, |v| v.lookup(parent, &name)).map(Into::into)
    }

    /// As `lookup`, but `None` where `name` is absent (ENOENT): a negative
    /// lookup, which the kernel sends before every file it creates.
    fn find_entry(
        &self,
        py: Python<'_>,
        parent: u64,
        name: &[u8],
    ) -> BindingResult<Option<PyAttr>> {
        let name = name.to_vec();
        let found = absent_as_none(run(py, self, |v| v.lookup(parent, &name)), ENOENT)?;
        Ok(found.map(Into::into))
    }

    fn getattr(&self, py: Python<'_>, ino: u64) -> BindingResult<PyAttr> {
        run(py, self, |v| v.getattr(ino)).map(Into::into)
    }

    /// Change attributes; `size` truncates or extends (sparse). Times in ns.
    #[pyo3(signature = (ino, mode=None, uid=None, gid=None, size=None, atime_ns=None, mtime_ns=None, ctime_ns=None))]
    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        py: Python<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime_ns: Option<i128>,
        mtime_ns: Option<i128>,
        ctime_ns: Option<i128>,
    ) -> BindingResult<PyAttr> {
        let change = AttrChange {
            mode,
            uid,
            gid,
            size,
            atime: atime_ns.map(from_ns),
            mtime: mtime_ns.map(from_ns),
            ctime: ctime_ns.map(from_ns),
        };
        run(py, self, |v| v.setattr(ino, change)).map(Into::into)
    }

    /// Who keeps mtime and ctime of regular files: "engine" (stamped now at
    /// every change) or "kernel" (the caller gives them).
    #[getter]
    fn file_times(&self) -> BindingResult<&'static str> {
        Ok(file_times_name(self.get()?.file_times()))
    }

    #[setter]
    fn set_file_times(&self, owner: &str) -> BindingResult<()> {
        self.get()?.set_file_times(file_times_named(owner)?);
        Ok(())
    }

    /// Create a regular file (use `open_file` to count a handle on it).
    fn create_file(
        &self,
        py: Python<'_>,
        parent: u64,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> BindingResult<PyAttr> {
        let name = name.to_vec();
        run(py, self, |v| v.create(parent, &name, mode, uid, gid)).map(Into::into)
    }

    /// Create a node of the type in `mode` (file, fifo, device, socket).
    #[pyo3(signature = (parent, name, mode, uid, gid, rdev=0))]
    #[allow(clippy::too_many_arguments)]
    fn mknod(
        &self,
        py: Python<'_>,
        parent: u64,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
    ) -> BindingResult<PyAttr> {
        let kind = kind_of_mode(mode)?;
        if matches!(kind, InodeKind::Dir | InodeKind::Symlink) {
            return Err(BindingError::Value("use mkdir or symlink".into()));
        }
        let name = name.to_vec();
        run(py, self, |v| {
            v.mknod(parent, &name, kind, mode, uid, gid, rdev, b"")
        })
        .map(Into::into)
    }

    fn mkdir(
        &self,
        py: Python<'_>,
        parent: u64,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> BindingResult<PyAttr> {
        let name = name.to_vec();
        run(py, self, |v| v.mkdir(parent, &name, mode, uid, gid)).map(Into::into)
    }

    fn symlink(
        &self,
        py: Python<'_>,
        parent: u64,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> BindingResult<PyAttr> {
        let (name, target) = (name.to_vec(), target.to_vec());
        run(py, self, |v| v.symlink(parent, &name, &target, uid, gid)).map(Into::into)
    }

    fn readlink<'py>(&self, py: Python<'py>, ino: u64) -> BindingResult<Bound<'py, PyBytes>> {
        let t = run(py, self, |v| v.readlink(ino))?;
        Ok(PyBytes::new(py, &t))
    }

    fn link(
        &self,
        py: Python<'_>,
        ino: u64,
        new_parent: u64,
        new_name: &[u8],
    ) -> BindingResult<PyAttr> {
        let name = new_name.to_vec();
        run(py, self, |v| v.link(ino, new_parent, &name)).map(Into::into)
    }

    fn unlink(&self, py: Python<'_>, parent: u64, name: &[u8]) -> BindingResult<()> {
        let name = name.to_vec();
        run(py, self, |v| v.unlink(parent, &name))
    }

    fn rmdir(&self, py: Python<'_>, parent: u64, name: &[u8]) -> BindingResult<()> {
        let name = name.to_vec();
        run(py, self, |v| v.rmdir(parent, &name))
    }

    #[pyo3(signature = (parent, name, new_parent, new_name, noreplace=false, exchange=false))]
    #[allow(clippy::too_many_arguments)]
    fn rename(
        &self,
        py: Python<'_>,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        noreplace: bool,
        exchange: bool,
    ) -> BindingResult<()> {
        let (name, new_name) = (name.to_vec(), new_name.to_vec());
        run(py, self, |v| {
            v.rename(
                parent,
                &name,
                new_parent,
                &new_name,
                RenameFlags {
                    noreplace,
                    exchange,
                },
            )
        })
    }

    /// Entries after `offset` (0: from the first): a list of (name, ino,
    /// st_mode type bits, next offset). Offsets are stable cookies (see
    /// `readdirplus`).
    #[pyo3(signature = (ino, offset=0, limit=1024))]
    fn readdir<'py>(
        &self,
        py: Python<'py>,
        ino: u64,
        offset: u64,
        limit: usize,
    ) -> BindingResult<Vec<DirRow<'py>>> {
        let entries = run(py, self, |v| v.readdir(ino, offset, limit))?;
        Ok(entries
            .into_iter()
            .map(|e| {
                (
                    PyBytes::new(py, &e.name),
                    e.ino,
                    e.kind.mode_bits(),
                    e.next_offset,
                )
            })
            .collect())
    }

    /// Entries after `offset` with their attributes (as getattr returns
    /// them), read under one lock: a list of (name, Attr, next offset).
    /// Offsets are stable directory cookies: entries added or removed
    /// between calls never make a listing skip or repeat another entry.
    #[pyo3(signature = (ino, offset=0, limit=1024))]
    fn readdirplus<'py>(
        &self,
        py: Python<'py>,
        ino: u64,
        offset: u64,
        limit: usize,
    ) -> BindingResult<Vec<DirPlusRow<'py>>> {
        let entries = run(py, self, |v| v.readdirplus(ino, offset, limit))?;
        Ok(entries
            .into_iter()
            .map(|(e, a)| (PyBytes::new(py, &e.name), a.into(), e.next_offset))
            .collect())
    }

    /// Count an open handle; an unlinked file lives until its last release
    /// (and the kernel's last lookup, see `remember`).
    fn open_file(&self, py: Python<'_>, ino: u64) -> BindingResult<PyAttr> {
        run(py, self, |v| v.open(ino)).map(Into::into)
    }

    fn release_file(&self, py: Python<'_>, ino: u64) -> BindingResult<()> {
        run(py, self, |v| v.release(ino))
    }

    /// The kernel was handed these inodes' entries: one lookup each (see
    /// `forget`). ENOENT, counting none, if one is gone.
    #[pyo3(signature = (*inos))]
    fn remember(&self, py: Python<'_>, inos: Vec<u64>) -> BindingResult<()> {
        run(py, self, |v| v.remember(&inos))
    }

    /// The kernel forgot lookups: a list of (inode, nlookup), as pyfuse3's
    /// `forget` gets it. An inode left without name, handle or lookup is
    /// reclaimed.
    fn forget(&self, py: Python<'_>, forgotten: Vec<(u64, u64)>) -> BindingResult<()> {
        run(py, self, |v| v.forget(&forgotten))
    }

    /// Lookups of `ino` the kernel holds, as counted by remember and forget.
    fn kernel_lookups(&self, py: Python<'_>, ino: u64) -> BindingResult<u64> {
        run(py, self, |v| Ok(v.kernel_lookups(ino)))
    }

    /// The parent of directory `ino` (its ".."; the root's is itself).
    fn parent(&self, py: Python<'_>, ino: u64) -> BindingResult<u64> {
        run(py, self, |v| v.parent(ino))
    }

    /// The bytes at `offset` (fewer at the end of the file), as a read-only
    /// `memoryview` of the buffer the engine decrypted them in (no copy
    /// into a `bytes`).
    fn read<'py>(
        &self,
        py: Python<'py>,
        ino: u64,
        offset: u64,
        size: usize,
    ) -> BindingResult<Bound<'py, PyMemoryView>> {
        let data = run(py, self, |v| v.read_bytes(ino, offset, size))?;
        Ok(ReadBuffer::memoryview(py, data)?)
    }

    /// Write `data` at `offset`: the bytes object is borrowed as it is (it
    /// is immutable, and held until the call returns) while the GIL is
    /// released.
    fn write(
        &self,
        py: Python<'_>,
        ino: u64,
        offset: u64,
        data: PyBackedBytes,
    ) -> BindingResult<usize> {
        run(py, self, |v| v.write(ino, offset, &data))
    }

    /// As `write` (all of `data` is written), and whether the file's
    /// `st_blocks` changed.
    fn write_noting_blocks(
        &self,
        py: Python<'_>,
        ino: u64,
        offset: u64,
        data: PyBackedBytes,
    ) -> BindingResult<bool> {
        run(py, self, |v| v.write_noting_blocks(ino, offset, &data))
    }

    fn fsync(&self, py: Python<'_>, ino: u64) -> BindingResult<()> {
        run(py, self, |v| v.fsync(ino))
    }

    fn getxattr<'py>(
        &self,
        py: Python<'py>,
        ino: u64,
        name: &[u8],
    ) -> BindingResult<Bound<'py, PyBytes>> {
        let name = name.to_vec();
        let v = run(py, self, |v| v.getxattr(ino, &name))?;
        Ok(PyBytes::new(py, &v))
    }

    /// As `getxattr`, but `None` where `ino` has no attribute `name`
    /// (ENODATA): the kernel asks for `security.capability` before every
    /// write and every change of owner, and it is almost never there.
    fn find_xattr<'py>(
        &self,
        py: Python<'py>,
        ino: u64,
        name: &[u8],
    ) -> BindingResult<Option<Bound<'py, PyBytes>>> {
        let name = name.to_vec();
        let found = absent_as_none(run(py, self, |v| v.getxattr(ino, &name)), ENODATA)?;
        Ok(found.map(|v| PyBytes::new(py, &v)))
    }

    #[pyo3(signature = (ino, name, value, create=false, replace=false))]
    fn setxattr(
        &self,
        py: Python<'_>,
        ino: u64,
        name: &[u8],
        value: &[u8],
        create: bool,
        replace: bool,
    ) -> BindingResult<()> {
        let (name, value) = (name.to_vec(), value.to_vec());
        run(py, self, |v| {
            v.setxattr(ino, &name, &value, create, replace)
        })
    }

    fn listxattr<'py>(&self, py: Python<'py>, ino: u64) -> BindingResult<Vec<Bound<'py, PyBytes>>> {
        let names = run(py, self, |v| v.listxattr(ino))?;
        Ok(names.iter().map(|n| PyBytes::new(py, n)).collect())
    }

    fn removexattr(&self, py: Python<'_>, ino: u64, name: &[u8]) -> BindingResult<()> {
        let name = name.to_vec();
        run(py, self, |v| v.removexattr(ino, &name))
    }

    /// Counts for statfs: inodes (every kind), plaintext bytes stored, and
    /// directories (included in the inodes). O(1).
    fn statfs(&self, py: Python<'_>) -> BindingResult<VaultUsage> {
        let ((files, bytes), dirs) = run(py, self, |v| Ok((v.usage(), v.directories())))?;
        Ok(VaultUsage { files, bytes, dirs })
    }

    fn sync(&self, py: Python<'_>) -> BindingResult<()> {
        run(py, self, |v| v.sync())
    }

    /// Snapshot the metadata and drop the log it covers.
    fn compact_log(&self, py: Python<'_>) -> BindingResult<LogCompactionReport> {
        Ok(run(py, self, |v| v.compact_log())?.into())
    }

    /// One compaction cycle now: pack compaction and/or log compaction.
    #[pyo3(signature = (log=true, packs=true, pack_dead_ratio=0.5))]
    fn compact(
        &self,
        py: Python<'_>,
        log: bool,
        packs: bool,
        pack_dead_ratio: f64,
    ) -> BindingResult<CompactionCycleReport> {
        let (p, l) = run(py, self, |v| {
            v.run_compaction(CompactionAction { log, packs }, pack_dead_ratio)
        })?;
        Ok(CompactionCycleReport {
            log: l.map(Into::into),
            packs: p.map(Into::into),
        })
    }

    /// Start background compaction and flushing (unsynced changes become
    /// durable within `flush_ms`). Idempotent.
    #[pyo3(signature = (tick_ms=1000, flush_ms=5000))]
    fn start_compaction(&self, tick_ms: u64, flush_ms: u64) -> BindingResult<()> {
        let (tick, flush) = (
            Duration::from_millis(tick_ms),
            Duration::from_millis(flush_ms),
        );
        Ok(self.session.start_compaction(tick, flush)?)
    }

    /// Stop background compaction; returns the last error a cycle hit, if any.
    fn stop_compaction(&self, py: Python<'_>) -> Option<String> {
        py.detach(|| self.session.stop_compaction())
    }

    /// Live counters of the vault: counts the engine keeps (no copy of the
    /// metadata), this session's I/O and cache counts, sizes on disk.
    fn telemetry(&self, py: Python<'_>) -> BindingResult<VaultTelemetry> {
        let t = run(py, self, |v| Ok(v.telemetry()))?;
        Ok(VaultTelemetry::new(t, self.session.compaction_running()))
    }

    /// Check every invariant of the vault (crypto_core::fsck): `quick`, metadata
    /// only; `progress(done, total)`, plaintext bytes of frames verified;
    /// `repair`, repair what can be, then check again; `checkpoint_every`:
    /// seconds between records of progress (resumable). The report as a dict.
    #[pyo3(signature = (quick=false, progress=None, repair=false, checkpoint_every=None))]
    fn fsck<'py>(
        &self,
        py: Python<'py>,
        quick: bool,
        progress: Option<Py<PyAny>>,
        repair: bool,
        checkpoint_every: Option<f64>,
    ) -> BindingResult<Bound<'py, PyDict>> {
        let options = super::fsck::options(quick, repair, checkpoint_every);
        let report = run(py, self, |v| super::fsck::check(v, options, progress))?;
        Ok(super::fsck::report_to_dict(py, &report)?)
    }

    /// A path of inode `ino` from the root ("/a/b"), for messages; None if
    /// no directory names it. Walks the directories: not for hot paths.
    fn path_of(&self, py: Python<'_>, ino: u64) -> BindingResult<Option<String>> {
        run(py, self, |v| Ok(v.path_of(ino)))
    }

    /// What opening the vault found and did (a dict): the snapshot it
    /// started from, log records replayed, a torn log tail cut, snapshots
    /// that could not be read, orphaned inodes reclaimed.
    fn bootstrap_report<'py>(&self, py: Python<'py>) -> BindingResult<Bound<'py, PyDict>> {
        let report = run(py, self, |v| Ok(v.bootstrap_report().clone()))?;
        Ok(super::fsck::bootstrap_to_dict(py, &report)?)
    }

    /// Flush everything and close; later calls raise OSError(EBADF).
    fn close(&self, py: Python<'_>) -> BindingResult<()> {
        py.detach(|| self.session.close())
            .map_err(BindingError::Vault)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type, _exc_value, _traceback, /))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Py<PyAny>,
        _exc_value: Py<PyAny>,
        _traceback: Py<PyAny>,
    ) -> BindingResult<()> {
        // None: an exception raised in the `with` block propagates (the
        // stub says so too, so type checkers see no swallowed exception).
        self.close(py)
    }
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVault>()?;
    m.add("ROOT_INO", crypto_core::metadata::ROOT_INO)?;
    Ok(())
}
