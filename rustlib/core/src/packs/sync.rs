//! Making the frames a store appended durable: a sync of every pack
//! written to since the last one, and the tickets that tell a caller when a
//! sync begun after some point has completed (what a patch's base waits
//! for before it may be punched: `carried`).

use std::sync::atomic::Ordering;

use super::{lock, unsynced, PackStore};
use crate::error::{io_at, Error, Result};

impl PackStore {
    /// Make every frame written so far durable (fsync of every pack written
    /// since the last sync).
    pub fn sync(&self) -> Result<()> {
        let _one_at_a_time = lock(&self.sync_lock);
        let (ticket, packs) = {
            let mut inner = lock(&self.inner);
            if let Some(e) = &inner.failed {
                return Err(Error::PacksFailed(e.clone()));
            }
            inner.carriable = unsynced::Unsynced::default();
            inner.syncs_begun += 1;
            (inner.syncs_begun, std::mem::take(&mut inner.unsynced))
        };
        for (number, file) in packs {
            if let Err(e) = file.sync_data() {
                let e = io_at("cannot sync", &self.path(number))(e);
                lock(&self.inner).failed = Some(e.to_string());
                return Err(e);
            }
        }
        self.synced_ticket.fetch_max(ticket, Ordering::Release);
        Ok(())
    }

    /// The ticket of the next sync of the packs to begin: once
    /// [`PackStore::synced_since`] it, every frame appended before this
    /// call is durable. (What a patch's base waits for: `carried`.)
    pub fn sync_ticket(&self) -> u64 {
        lock(&self.inner).syncs_begun + 1
    }

    /// Whether a sync with `ticket` (or a later one) has completed.
    pub fn synced_since(&self, ticket: u64) -> bool {
        self.synced_ticket.load(Ordering::Acquire) >= ticket
    }
}
