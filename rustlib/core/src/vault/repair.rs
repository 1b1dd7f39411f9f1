//! What fsck's repair changes in an open vault: a repaired state installed
//! (written as a snapshot, so it replaces the log and any damage in it in
//! one atomic step), pack files no record refers to deleted, and metadata
//! copies rewritten from their files.
//!
//! Every step is crash-safe on its own: the snapshot is written under a
//! temporary name and renamed; the log files it covers (damaged ones too)
//! are deleted only after it is durable, and an open skips them while they
//! remain; a pack is deleted only once the state that no longer refers to
//! it is durable. Killed anywhere and run again, repair finishes.

use super::compaction::CompactionReport;
use super::engine::Vault;
use crate::error::Result;
use crate::metadata::{MetadataState, UnifiedEntry};
use crate::mirror;

impl Vault {
    /// Make `repaired` the vault's state: the log is cut, `repaired` written
    /// as the snapshot of the cut, and the log before it dropped. The vault
    /// must not change meanwhile (fsck holds it alone).
    pub fn install_repaired_state(&self, repaired: MetadataState) -> Result<CompactionReport> {
        // Generations continue past any the repaired state holds.
        self.generation.fetch_max(
            repaired.generation_high + 1,
            std::sync::atomic::Ordering::SeqCst,
        );
        self.snapshot_state(Some(repaired))
    }

    /// Record (durably) how far a check of every frame got, for an
    /// interrupted one to resume from (a DecryptCheckpoint). False when
    /// nothing can be recorded: read-only, or a vault of format 1.
    pub fn record_decrypt_checkpoint(&self, entry: UnifiedEntry) -> Result<bool> {
        if self.log.read_only() || self.config.version() < 2 {
            return Ok(false);
        }
        self.commit(&mut self.lock_state(), entry)?;
        self.log.sync()?;
        Ok(true)
    }

    /// Delete pack file `number`, which the durable state does not know.
    pub fn delete_unreferenced_pack(&self, number: u64) -> Result<()> {
        debug_assert!(!self.lock_state().packs.contains_key(&number));
        self.packs.delete_pack(number)
    }

    /// The metadata files whose copy differs from them (byte for byte),
    /// leaving out the log file this session appends to.
    pub fn differing_copies(&self) -> Vec<String> {
        let active = crate::log::unified::log_file_name(self.log.active_file_number());
        mirror::differing(
            &*self.fs,
            &self.dir,
            super::config::CONFIG_FILE,
            Some(&active),
        )
    }

    /// Rewrite the copy of `name` (as [`Vault::differing_copies`] names
    /// it: `fusefs.conf`, `snap/…` or `log/…`) from its file.
    pub fn refresh_copy(&self, name: &str) -> Result<u64> {
        let file = self.dir.join(name);
        mirror::refresh(
            &*self.fs,
            &file,
            &self.dir.join(mirror::MIRROR_DIR).join(name),
        )
    }
}
