//! The checker run from Python, its report, and what opening the vault
//! did, as Python dicts.

use crypto_core::fsck::{Finding, FsckOptions, FsckReport};
use crypto_core::recovery::bootstrap::BootstrapReport;
use crypto_core::vault::config::ConfigSource;
use crypto_core::vault::Vault;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Check `vault` (see `crypto_core::fsck`), calling `progress(done, total)`
/// with the plaintext bytes of frames verified; a callback that raises is
/// printed and the check goes on.
pub fn check(
    vault: &Vault,
    options: FsckOptions,
    progress: Option<Py<PyAny>>,
) -> crypto_core::Result<FsckReport> {
    let mut report_progress = |done: u64, total: u64| {
        if let Some(f) = &progress {
            Python::attach(|py| {
                if let Err(e) = f.call1(py, (done, total)) {
                    e.print(py);
                }
            });
        }
    };
    crypto_core::fsck::check(vault, options, &mut report_progress)
}

/// `{"findings": [{"check", "ino", "path", "detail"}...], "inodes", ...}`.
/// With repair: `"repairs"` (lines) and `"remaining"` (findings after it).
pub fn report_to_dict<'py>(py: Python<'py>, r: &FsckReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("findings", findings_to_list(py, &r.findings)?)?;
    d.set_item("repairs", r.repairs.clone())?;
    d.set_item("remaining", findings_to_list(py, &r.remaining)?)?;
    d.set_item("known_damage", r.known_damage.clone())?;
    d.set_item("inodes", r.inodes)?;
    d.set_item("directories", r.directories)?;
    d.set_item("files", r.files)?;
    d.set_item("packs", r.packs)?;
    d.set_item("frames_verified", r.frames_verified)?;
    d.set_item("frames_resumed", r.frames_resumed)?;
    d.set_item("bytes_verified", r.bytes_verified)?;
    Ok(d)
}

/// The checker's options from the binding's arguments (`checkpoint_every`
/// in seconds).
pub fn options(quick: bool, repair: bool, checkpoint_every: Option<f64>) -> FsckOptions {
    FsckOptions {
        quick,
        repair,
        checkpoint_every: checkpoint_every.map(|s| std::time::Duration::from_secs_f64(s.max(0.0))),
    }
}

fn findings_to_list<'py>(py: Python<'py>, fs: &[Finding]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for f in fs {
        let d = PyDict::new(py);
        d.set_item("check", f.check.name())?;
        d.set_item("ino", f.ino)?;
        d.set_item("path", f.path.as_deref())?;
        d.set_item("detail", &f.detail)?;
        d.set_item("text", f.to_string())?;
        list.append(d)?;
    }
    Ok(list)
}

/// What opening the vault found and did: torn log tail cut, snapshots that
/// could not be read, orphans reclaimed, files mended from their copies,
/// and (with salvage) the log records that could not be read or applied.
pub fn bootstrap_to_dict<'py>(
    py: Python<'py>,
    r: &BootstrapReport,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("snapshot", r.snapshot)?;
    d.set_item("entries_replayed", r.entries_replayed)?;
    d.set_item("log_files", r.log.files)?;
    d.set_item("read_only", r.read_only)?;
    d.set_item("closed_cleanly", r.closed_cleanly)?;
    d.set_item("local_state_notes", r.local_state_notes.clone())?;
    d.set_item("chain_breaks", r.log.chain_breaks.clone())?;
    d.set_item(
        "upgraded",
        r.upgraded
            .as_ref()
            .map(|u| (u.covers_seq, u.snapshot, u.files_deleted)),
    )?;
    d.set_item("torn_bytes_cut", r.log.torn_bytes_cut)?;
    d.set_item("removed_torn_log_file", r.log.removed_torn_file.as_deref())?;
    let bad = PyList::empty(py);
    for (n, why) in &r.bad_snapshots {
        bad.append((n, why))?;
    }
    d.set_item("bad_snapshots", bad)?;
    d.set_item("removed_temporaries", r.removed_temporaries)?;
    d.set_item("orphans_reclaimed", r.orphans_reclaimed.clone())?;
    d.set_item("stray_packs_removed", r.stray_packs_removed.clone())?;
    d.set_item("carried_frames_restored", r.carried_frames_restored)?;
    d.set_item("log_files_mended", r.log.mended_from_copy.clone())?;
    d.set_item("snapshots_mended", r.snapshots_mended.clone())?;
    d.set_item(
        "copies_refreshed",
        r.log.copies_refreshed + r.snapshot_copies_refreshed,
    )?;
    d.set_item(
        "config",
        match r.config_source {
            None => None,
            Some(ConfigSource::Config) => Some("config"),
            Some(ConfigSource::CopyRefreshed) => Some("copy-refreshed"),
            Some(ConfigSource::Mended) => Some("mended"),
        },
    )?;
    let lost = PyList::empty(py);
    for l in &r.log.lost {
        lost.append((l.first, l.last, &l.file, &l.why))?;
    }
    d.set_item("records_lost", lost)?;
    let unapplied = PyList::empty(py);
    for (seq, why) in &r.unapplied {
        unapplied.append((seq, why))?;
    }
    d.set_item("records_unapplied", unapplied)?;
    Ok(d)
}
