//! Upgrading a vault of format 1 to format 2 in place (FORMAT.md §11), at
//! its first read-write open with its password, before the vault is opened
//! as format 2. Each step is durable before the next; the new
//! `fusefs.conf` is the moment the upgrade takes effect:
//!
//! 1. what an interrupted upgrade left (version 2 files under a version 1
//!    config) is removed — a version 2 log file holding records is refused;
//! 2. the vault is read as format 1, writing nothing;
//! 3. a version 2 snapshot of that state is written: the frames written so
//!    far keep format 1's layout (legacy generation high = generation high);
//! 4. an empty version 2 log file is started after it;
//! 5. the config is rewritten at version 2 (copy first);
//! 6. the version 1 log files and snapshots are deleted.

use std::path::Path;
use std::sync::Arc;

use super::config::VaultConfig;
use crate::crypto::keys::SecretKey;
use crate::error::{io_at, Error, Result};
use crate::log::format::{LogFileHeader, LogFormat, CHAIN_START, LOG_FILE};
use crate::log::unified::{create_empty_file, FileStart, LogOptions};
use crate::metadata::{MetadataState, Timespec};
use crate::mirror;
use crate::recovery::bootstrap::bootstrap;
use crate::snapshot::{parse_snapshot_file_name, read_snapshot_version, write_snapshot};
use crate::storage::readonly::ReadOnlyFs;
use crate::storage::FileSystem;

pub use crate::recovery::bootstrap::UpgradeReport;

/// Upgrade the format 1 vault in `dir` (locked by the caller), whose config
/// `config` `password` unlocked to `master`. Returns the config of format 2.
pub fn upgrade(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    config: &VaultConfig,
    master: &SecretKey,
    password: &[u8],
) -> Result<(VaultConfig, UpgradeReport)> {
    debug_assert_eq!(config.version(), 1);
    let mut report = UpgradeReport::default();
    let (log_dir, snap_dir) = (dir.join("log"), dir.join("snap"));
    let (log_copies, snap_copies) = (mirror::log_copies(dir), mirror::snapshot_copies(dir));
    for d in [&log_dir, &log_copies, &snap_dir, &snap_copies] {
        fs.create_dir_all(d).map_err(io_at("cannot create", d))?;
    }
    report.leftovers_removed =
        remove_leftovers(&**fs, &log_dir, &log_copies, &snap_dir, &snap_copies)?;

    // 2. Read it as format 1, writing nothing.
    let ro: Arc<dyn FileSystem> = Arc::new(ReadOnlyFs(Arc::clone(fs)));
    let mut empty = MetadataState::new(config.segment_size(), 0o755, 0, 0, Timespec::default());
    empty.legacy_generation_high = u64::MAX;
    let opts = LogOptions {
        cipher: config.cipher(),
        copies: Some(log_copies.clone()),
        read_only: true,
        format: LogFormat::V1,
        ..Default::default()
    };
    let (mut state, log, _) = bootstrap(
        ro,
        &snap_dir,
        Some(&snap_copies),
        &log_dir,
        *config.vault_id(),
        master.clone(),
        opts,
        empty,
    )?;
    let covers_seq = log.next_seq() - 1;
    drop(log);
    state.legacy_generation_high = state.generation_high;
    state.generation_reserved = state.generation_high;

    // 3. The state as a snapshot of version 2, and its copy.
    let old_snapshots = numbered(&**fs, &[&snap_dir, &snap_copies], parse_snapshot_file_name);
    let number = old_snapshots.iter().max().map_or(1, |n| n + 1);
    write_snapshot(
        &**fs,
        &snap_dir,
        *config.vault_id(),
        master,
        number,
        covers_seq,
        CHAIN_START,
        &state,
    )?;
    let name = crate::snapshot::snapshot_file_name(number);
    mirror::refresh(&**fs, &snap_dir.join(&name), &snap_copies.join(&name))?;

    // 4. An empty log file of version 2 after every old one.
    let old_logs = numbered(&**fs, &[&log_dir, &log_copies], |n| {
        LOG_FILE.parse_file_name(n)
    });
    let start = FileStart {
        number: old_logs.iter().max().map_or(1, |n| n + 1),
        first_seq: covers_seq + 1,
        chain_in: CHAIN_START,
        format: LogFormat::V2,
    };
    create_empty_file(
        &**fs,
        &log_dir,
        Some(&log_copies),
        config.vault_id(),
        master,
        config.cipher(),
        start,
    )?;

    // 5. The upgrade takes effect.
    let upgraded = config.write_upgraded(&**fs, dir, master, password)?;

    // 6. What format 1 left.
    for n in old_logs {
        let name = LOG_FILE.file_name(n);
        for d in [&log_dir, &log_copies] {
            let p = d.join(&name);
            if fs.exists(&p) {
                fs.remove(&p).map_err(io_at("cannot remove", &p))?;
            }
        }
        report.files_deleted += 1;
    }
    for n in old_snapshots {
        mirror::remove_snapshot(&**fs, &snap_dir, Some(&snap_copies), n)?;
        report.files_deleted += 1;
    }
    for d in [&log_dir, &log_copies, &snap_dir, &snap_copies] {
        fs.sync_dir(d).map_err(io_at("cannot sync", d))?;
    }
    report.covers_seq = covers_seq;
    report.snapshot = number;
    Ok((upgraded, report))
}

/// The numbers of the files in `dirs` that `parse` reads, without repeats.
fn numbered(fs: &dyn FileSystem, dirs: &[&Path], parse: impl Fn(&str) -> Option<u64>) -> Vec<u64> {
    let mut out: Vec<u64> = dirs
        .iter()
        .flat_map(|d| fs.list(d).unwrap_or_default())
        .filter_map(|n| parse(&n))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Step 1: remove the version 2 files an interrupted upgrade left (under a
/// version 1 config they were never in use). A version 2 log file that
/// holds a record was in use: the config must have been replaced by an
/// older one, and nothing is removed.
fn remove_leftovers(
    fs: &dyn FileSystem,
    log_dir: &Path,
    log_copies: &Path,
    snap_dir: &Path,
    snap_copies: &Path,
) -> Result<usize> {
    let mut doomed = Vec::new();
    for d in [log_dir, log_copies] {
        for n in fs.list(d).unwrap_or_default() {
            if LOG_FILE.parse_file_name(&n).is_none() {
                continue;
            }
            let p = d.join(&n);
            let mut bytes = vec![0u8; 81]; // a header of version 2, and a byte more if any
            let read = fs.open_read(&p).and_then(|f| f.read_at(&mut bytes, 0));
            bytes.truncate(read.map_err(io_at("cannot read", &p))?);
            match LogFileHeader::decode(&bytes) {
                Ok(h) if h.format == LogFormat::V2 && bytes.len() > h.encoded_len() => {
                    return Err(Error::ConfigTampered(format!(
                        "fusefs.conf says format 1, but log file {n} of format 2 holds records \
                         (was fusefs.conf replaced by an older copy?)"
                    )));
                }
                Ok(h) if h.format == LogFormat::V2 => doomed.push(p),
                _ => {}
            }
        }
    }
    for d in [snap_dir, snap_copies] {
        for n in fs.list(d).unwrap_or_default() {
            let p = d.join(&n);
            if parse_snapshot_file_name(&n).is_some() && read_snapshot_version(fs, &p) == Some(2) {
                doomed.push(p);
            }
        }
    }
    for p in &doomed {
        fs.remove(p).map_err(io_at("cannot remove", p))?;
    }
    if !doomed.is_empty() {
        for d in [log_dir, log_copies, snap_dir, snap_copies] {
            let _ = fs.sync_dir(d);
        }
    }
    Ok(doomed.len())
}
