//! The log's ends: cutting it for a snapshot (log compaction's first step,
//! FORMAT.md §9.6: every record durable and a new file started, so that the
//! records so far are exactly those of the files before it; later, deleting
//! those files once the snapshot is durable), and closing it.

use std::sync::Arc;

use super::format::CHAIN_LEN;
use super::unified::LogManager;
use crate::crypto::keys::SecretKey;
use crate::error::{Error, Result};
use crate::storage::FileSystem;

/// Where the log was cut for a snapshot: the snapshot must hold the state
/// after record `covers_seq`; files numbered below `first_new` only hold
/// records up to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogCut {
    pub covers_seq: u64,
    pub first_new: u64,
    /// The chain value after record `covers_seq` (its tag): what a
    /// snapshot of the state at the cut keeps, and what the new file
    /// continues.
    pub chain: [u8; CHAIN_LEN],
    appended_at_cut: u64,
}

impl LogManager {
    /// Make every record durable and start a new log file, so that the
    /// records up to now are exactly those of the files before the new one.
    /// Call it while holding the caller's write lock, and take the state to
    /// snapshot under the same lock: it is then exactly the state after
    /// `covers_seq`. Cheap (a sync and a file creation).
    pub fn cut(&self) -> Result<LogCut> {
        self.sync()?;
        let covers_seq = self.synced_seq();
        if self.next_seq() != covers_seq + 1 {
            return Err(Error::Internal(
                "records were appended during log compaction".into(),
            ));
        }
        let appended_at_cut = self.appended_bytes();
        let chain = self.chain_head();
        let first_new = self.rotate_now()?;
        Ok(LogCut {
            covers_seq,
            first_new,
            chain,
            appended_at_cut,
        })
    }

    /// Delete the files a snapshot of the state at `cut` covers, and stop
    /// counting their bytes in [`appended_bytes`](Self::appended_bytes).
    pub fn delete_before_cut(&self, cut: &LogCut) -> Result<usize> {
        let deleted = self.delete_files_before(cut.first_new)?;
        self.appended_bytes.fetch_sub(
            cut.appended_at_cut.min(self.appended_bytes()),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(deleted)
    }

    /// The vault id and master key the log was opened with.
    pub fn vault_id(&self) -> [u8; 16] {
        self.vault_id
    }

    /// The file system the log lives on.
    pub fn storage(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    pub(crate) fn master(&self) -> &SecretKey {
        &self.master
    }
}

impl Drop for LogManager {
    /// Closing the log makes what was appended durable (best effort: after a
    /// write error or a crash there is nothing more to do).
    fn drop(&mut self) {
        let _ = self.sync();
        let active = self.active.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(active) = active {
            let _ = active.cut_reserve();
            super::active::close_copy(&*self.fs, active, self.opts.copies.as_deref());
        }
    }
}
