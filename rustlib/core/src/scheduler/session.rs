//! [`VaultSession`]: an open vault as a long-lived caller (a mount, the
//! Python binding) holds it: the engine, shared with calls in flight, and
//! the background scheduler that flushes and compacts it while mounted.
//! Starting and stopping the scheduler, and closing (scheduler first, then
//! a last sync), happen here in one order, whoever calls.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::policy::{spawn_scheduler_cycle, HybridCompactionPolicy, SchedulerHandle};
use crate::error::{errno::EBADF, Result};
use crate::vault::Vault;

/// A call on a session that was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the vault is closed")]
pub struct VaultClosed;

impl VaultClosed {
    /// The errno a file-system call on a closed vault answers with.
    pub fn errno(self) -> i32 {
        EBADF
    }
}

/// An open vault and its optional background scheduler. Thread-safe: every
/// method may be called from any thread, concurrently.
pub struct VaultSession {
    /// `None` once closed. Calls in flight keep their own `Arc`, so the
    /// engine (and its lock on the vault) goes when the last of them ends.
    vault: RwLock<Option<Arc<Vault>>>,
    scheduler: Mutex<Option<SchedulerHandle>>,
}

impl VaultSession {
    pub fn new(vault: Vault) -> Self {
        VaultSession {
            vault: RwLock::new(Some(Arc::new(vault))),
            scheduler: Mutex::new(None),
        }
    }

    /// The engine, for one call.
    pub fn vault(&self) -> Result<Arc<Vault>, VaultClosed> {
        self.vault
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(VaultClosed)
    }

    /// Start background compaction and flushing: every `tick` the policy
    /// ([`HybridCompactionPolicy::default`]) is asked whether to compact,
    /// and unsynced changes become durable within `flush`. Zero durations
    /// count as 1 ms. Idempotent: a running scheduler is left as it is.
    pub fn start_compaction(&self, tick: Duration, flush: Duration) -> Result<(), VaultClosed> {
        // The vault's read lock is held until the scheduler is in place, so
        // `close` (which takes the vault first) cannot miss a scheduler
        // started beside it.
        let vault = self.vault.read().unwrap_or_else(|p| p.into_inner());
        let vault = vault.as_ref().ok_or(VaultClosed)?;
        let mut scheduler = self.scheduler.lock().unwrap_or_else(|p| p.into_inner());
        if scheduler.is_none() {
            let at_least = |d: Duration| d.max(Duration::from_millis(1));
            *scheduler = Some(spawn_scheduler_cycle(
                Arc::clone(vault),
                HybridCompactionPolicy::default(),
                at_least(tick),
                at_least(flush),
            ));
        }
        Ok(())
    }

    /// Stop background compaction, waiting for a cycle in progress to end.
    /// Returns the last error a cycle hit (a flush or a compaction), if any;
    /// `None` also when nothing was running.
    pub fn stop_compaction(&self) -> Option<String> {
        let handle = self
            .scheduler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        handle.and_then(SchedulerHandle::stop)
    }

    pub fn compaction_running(&self) -> bool {
        self.scheduler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Close: no new call or scheduler gets the engine from here on, the
    /// scheduler stops (a cycle in progress ends first; its last error is
    /// [`VaultSession::stop_compaction`]'s to report, so stop it first to
    /// hear it), then everything is made durable. Returns that last sync's
    /// error. Closing again does nothing.
    pub fn close(&self) -> Result<()> {
        let vault = self.vault.write().unwrap_or_else(|p| p.into_inner()).take();
        let _ = self.stop_compaction();
        match vault {
            Some(v) => v.end_session(),
            None => Ok(()),
        }
    }
}
