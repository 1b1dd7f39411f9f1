//! The metadata's second copy: as ZFS keeps ditto blocks of its metadata
//! and ext4 backup superblocks, every file that holds a vault's metadata is
//! kept twice, byte for byte, under `mirror/` (FORMAT.md §10):
//!
//! ```text
//! VAULT/fusefs.conf        VAULT/mirror/fusefs.conf
//! VAULT/snap/N.snap        VAULT/mirror/snap/N.snap
//! VAULT/log/N.ulog         VAULT/mirror/log/N.ulog
//! ```
//!
//! A copy holds exactly the bytes of its file (the same ciphertext: it
//! tells nothing the file does not), so one damaged byte anywhere in the
//! metadata loses nothing: the log mends a record from the copy's record at
//! the same offset (`crate::log::replay`), a snapshot or the config that
//! does not read is read from its copy, and the damaged file is rewritten
//! from the good one. Packs hold file data and are not copied.
//!
//! Order of writes: a file is made durable before its copy (snapshots,
//! config) or written before it (log records, whose copy is synced when the
//! file is closed), and deleted before its copy. So a crash leaves a copy
//! missing or behind, never ahead; opening rewrites such a copy from its
//! file, and a copy whose file is missing is taken as the survivor of a
//! lost file. A vault made before copies existed gets them at its first
//! open.

use std::path::{Path, PathBuf};

use crate::error::{io_at, Result};
use crate::snapshot::snapshot_file_name;
use crate::storage::durable::{copy_durably, write_durably};
use crate::storage::FileSystem;

/// The directory of the copies, in the vault directory.
pub const MIRROR_DIR: &str = "mirror";

/// `VAULT/mirror/log`: the log files' copies.
pub fn log_copies(vault: &Path) -> PathBuf {
    vault.join(MIRROR_DIR).join("log")
}

/// `VAULT/mirror/snap`: the snapshots' copies.
pub fn snapshot_copies(vault: &Path) -> PathBuf {
    vault.join(MIRROR_DIR).join("snap")
}

/// `VAULT/mirror/NAME`: the copy of `VAULT/NAME` (the config's).
pub fn copy_of(vault: &Path, name: &str) -> PathBuf {
    vault.join(MIRROR_DIR).join(name)
}

/// Write `bytes` durably as the copy of `VAULT/NAME`.
pub fn write_copy(fs: &dyn FileSystem, vault: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = vault.join(MIRROR_DIR);
    fs.create_dir_all(&dir)
        .map_err(io_at("cannot create", &dir))?;
    write_durably(fs, &dir.join(name), bytes)
}

/// Where a vault's config was unlocked from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// The config, its copy already the same.
    Config,
    /// The config; its copy was missing or behind, and was rewritten.
    CopyRefreshed,
    /// The copy: the config did not load or unlock, and was rewritten from
    /// the copy.
    Mended,
}

/// Make `to` a durable copy of `from`, creating its directory.
pub fn refresh(fs: &dyn FileSystem, from: &Path, to: &Path) -> Result<u64> {
    if let Some(parent) = to.parent() {
        fs.create_dir_all(parent)
            .map_err(io_at("cannot create", parent))?;
    }
    copy_durably(fs, from, to)
}

/// True if `copy` exists with the length of `file` (the cheap check made
/// at every open; fsck compares the bytes).
pub fn looks_current(fs: &dyn FileSystem, file: &Path, copy: &Path) -> bool {
    match (fs.file_len(file), fs.file_len(copy)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Remove snapshot `number` from `snap_dir` and its copy: the copy first,
/// so that a crash between never leaves a copy without its file (which an
/// open would take for a lost snapshot and restore).
pub fn remove_snapshot(
    fs: &dyn FileSystem,
    snap_dir: &Path,
    copies: Option<&Path>,
    number: u64,
) -> Result<()> {
    let name = snapshot_file_name(number);
    if let Some(c) = copies {
        let copy = c.join(&name);
        if fs.exists(&copy) {
            fs.remove(&copy).map_err(io_at("cannot remove", &copy))?;
        }
    }
    let path = snap_dir.join(&name);
    if fs.exists(&path) {
        fs.remove(&path).map_err(io_at("cannot remove", &path))?;
    }
    Ok(())
}

/// Compare every metadata file of the vault in `vault` (`config`: the
/// config's name) with its copy, byte for byte (fsck): the names of those
/// whose copy is missing or differs. The log file being appended to
/// (`active_log`) is left out: its copy may lag until the file is closed.
pub fn differing(
    fs: &dyn FileSystem,
    vault: &Path,
    config: &str,
    active_log: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    let same = |a: &Path, b: &Path| -> bool {
        let read = |p: &Path| {
            crate::storage::durable::read_small(fs, p, u64::MAX)
                .ok()
                .flatten()
        };
        match (read(a), read(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    };
    let conf = vault.join(config);
    // (A vault opened with a config kept elsewhere, as tests do, has none.)
    if fs.exists(&conf) && !same(&conf, &copy_of(vault, config)) {
        out.push(config.to_string());
    }
    for (sub, copies) in [("snap", snapshot_copies(vault)), ("log", log_copies(vault))] {
        let dir = vault.join(sub);
        let mut names: Vec<String> = fs.list(&dir).unwrap_or_default();
        names.sort();
        for n in names {
            let ours = n.ends_with(".snap") || n.ends_with(".ulog");
            if !ours || Some(n.as_str()) == active_log {
                continue;
            }
            if !same(&dir.join(&n), &copies.join(&n)) {
                out.push(format!("{sub}/{n}"));
            }
        }
    }
    out
}
