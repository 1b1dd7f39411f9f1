//! Bootstrap: `load_unified_log` replays the log into the metadata state and
//! returns a `LogManager` ready for appends.
//!
//! Replay goes through [`MetadataState::apply`], like live operation. An
//! entry that does not apply to the state its predecessors built means the
//! log is damaged (it is reported, not skipped). Inodes left without a name
//! (unlinked while open when the machine stopped) are reclaimed with a
//! `Forget` entry, made durable before the vault is used.

use std::path::Path;
use std::sync::Arc;

use crate::crypto::keys::SecretKey;
use crate::error::{Error, Result};
use crate::log::entry::UnifiedEntry;
use crate::log::unified::{LogManager, LogOptions, ReplayReport};
use crate::storage::FileSystem;
use crate::vault::metadata::MetadataState;

/// What bootstrap found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootstrapReport {
    pub log: ReplayReport,
    pub entries_replayed: u64,
    /// Orphaned inodes reclaimed.
    pub orphans_reclaimed: Vec<u64>,
}

/// Replay the log in `log_dir` onto `base` (the empty vault's state, or a
/// snapshot's) and open the log for appending.
pub fn load_unified_log(
    fs: Arc<dyn FileSystem>,
    log_dir: &Path,
    vault_id: [u8; 16],
    master: SecretKey,
    opts: LogOptions,
    mut base: MetadataState,
) -> Result<(MetadataState, LogManager, BootstrapReport)> {
    let (log, records, replay) = LogManager::open(fs, log_dir, vault_id, master, opts)?;
    let mut report = BootstrapReport {
        log: replay,
        ..Default::default()
    };
    for r in &records {
        let entry = UnifiedEntry::decode(&r.payload)
            .map_err(|e| Error::LogCorrupt(format!("record {}: {e}", r.seq)))?;
        base.apply(&entry).map_err(|e| {
            Error::LogCorrupt(format!(
                "record {} does not apply to the state before it: {e}",
                r.seq
            ))
        })?;
        report.entries_replayed += 1;
    }
    let orphans = base.orphans();
    if !orphans.is_empty() {
        for &ino in &orphans {
            let forget = UnifiedEntry::Forget { ino };
            base.apply(&forget)?;
            log.append(forget.encode())?;
        }
        log.sync()?;
        report.orphans_reclaimed = orphans;
    }
    Ok((base, log, report))
}
