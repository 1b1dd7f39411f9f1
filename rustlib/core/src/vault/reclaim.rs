//! Giving the space of dead frames back at once: a frame that a durable
//! record left without a reference (its segment overwritten, truncated
//! away, or its file deleted) is punched out of its pack
//! (`fallocate(PUNCH_HOLE | KEEP_SIZE)`), so that deleting files on a full
//! disk frees space without waiting for (or having room for) pack
//! compaction.
//!
//! Order, which makes a crash harmless: [`Vault::commit`] notes the frames
//! an entry frees with the entry's log sequence number; a frame is punched
//! only once the log is durable up to that number (`synced_seq`), so no
//! record that survives a crash can refer to a punched frame. And only once
//! a sync of the packs that began after the entry completed (its pack
//! sync ticket): the freed frame may be the base of a patch the entry's
//! record carries (`packs::carried`), needed until the frame that replaced
//! it is durable in its pack. Between the
//! two, a call that looked up the frame before the entry was applied may
//! still read it: punching first waits those out (`frames_in_use`, as pack
//! compaction does before it deletes packs).
//!
//! Accounting: punched bytes stay *dead* bytes of their pack (the pack
//! keeps its length; FORMAT.md §8 allows zeroed ranges of dead frames), so
//! the pack accounting and fsck are unchanged. Pack compaction still
//! rewrites mostly-dead packs, which gives back the partial blocks at the
//! edges of punched frames and the headers of emptied packs.

use std::collections::BTreeMap;

use super::engine::{lock, Vault};
use crate::metadata::SegmentRef;

/// Merge the frames of one pack into ranges `(offset, len)`: adjacent dead
/// frames become one range, so the blocks between them are freed too.
fn ranges(frames: &mut [SegmentRef]) -> Vec<(u64, u64)> {
    frames.sort_unstable_by_key(|r| r.offset);
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in frames.iter() {
        let len = r.stored_len as u64;
        match out.last_mut() {
            Some((start, l)) if *start + *l == r.offset => *l += len,
            _ => out.push((r.offset, len)),
        }
    }
    out
}

impl Vault {
    /// Stored bytes of frames waiting for their freeing entry to be durable
    /// (the scheduler syncs early when they add up; see `spawn_scheduler_cycle`).
    pub fn bytes_awaiting_punch(&self) -> u64 {
        lock(&self.freed).bytes
    }

    /// Punch out of their packs the frames whose freeing entries are
    /// durable; returns the bytes punched. Best effort, never an error: a
    /// frame that cannot be punched (a file system without hole punching,
    /// a pack compaction deleted meanwhile, an I/O error) stays dead space
    /// for compaction to reclaim. Skipped while a compaction runs (it may
    /// be deleting the packs); the frames wait for the next sync then.
    pub(super) fn punch_freed_frames(&self) -> u64 {
        let Ok(_no_compaction) = self.compaction.try_lock() else {
            return 0;
        };
        let synced = self.log.synced_seq();
        let ready = lock(&self.freed).take_durable(synced, |t| self.packs.synced_since(t));
        if ready.is_empty() {
            return 0;
        }
        // Wait out every call that looked up these frames before their
        // freeing entries were applied; calls after this never see them.
        drop(
            self.frames_in_use
                .write()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let mut by_pack: BTreeMap<u64, Vec<SegmentRef>> = BTreeMap::new();
        for r in ready {
            by_pack.entry(r.pack).or_default().push(r);
        }
        let mut punched = 0;
        for (pack, mut frames) in by_pack {
            punched += self.packs.punch_ranges(pack, &ranges(&mut frames));
        }
        punched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pack: u64, offset: u64, stored_len: u32) -> SegmentRef {
        SegmentRef {
            pack,
            offset,
            stored_len,
            plain_len: stored_len - 28,
            generation: 1,
        }
    }

    #[test]
    fn adjacent_frames_merge_into_one_range() {
        let mut frames = vec![frame(1, 164, 50), frame(1, 64, 100), frame(1, 300, 40)];
        assert_eq!(ranges(&mut frames), vec![(64, 150), (300, 40)]);
    }
}
