//! Before a log batch is written, every frame its records refer to is made
//! durable: by a sync of the packs, or — for a batch an fsync writes, whose
//! new frames are few — by the records themselves, which then carry the
//! frames' bytes or their patches (`WriteSegmentsCarried`, entries 17 and
//! 18; `packs::carried` says why and how a crash is recovered). Then the fsync costs one flush of the log
//! instead of a flush of the packs followed by one of the log.
//!
//! A batch written without a sync (the queue grew large), or while the log
//! file's reserve for a full disk is short, always syncs the packs first,
//! as does any batch while a frame is not durable that no
//! record can carry (too many bytes, a compaction's copies): so when a
//! durable batch is written, every frame not durable that its records refer
//! to is one the store still holds the bytes of.

use crate::error::Result;
use crate::metadata::{Carried, SegmentRef, UnifiedEntry};
use crate::packs::PackStore;

/// Entry tag of `WriteSegments` (FORMAT.md §9.2): the only records whose
/// frames may be carried.
const WRITE_SEGMENTS_TAG: u8 = 8;

/// The log's before-write step (`LogManager::set_before_write`).
/// `may_carry`: the batch will be synced and the log has room to spare;
/// `carry`: the vault's log may hold carried records (format 2).
pub(super) fn before_log_write(
    packs: &PackStore,
    batch: &mut [(u64, Vec<u8>)],
    may_carry: bool,
    carry: bool,
) -> Result<()> {
    if carry && may_carry && carry_frames(packs, batch) {
        return Ok(());
    }
    packs.sync()
}

/// Rewrite the batch's WriteSegments records whose frames are not durable
/// so that they carry them. False (the batch unchanged) if that cannot be
/// done: then the packs must be synced.
fn carry_frames(packs: &PackStore, batch: &mut [(u64, Vec<u8>)]) -> bool {
    if !packs.all_carriable() {
        return false;
    }
    let mut rewritten: Vec<(usize, Vec<u8>)> = Vec::new();
    for (at, (_, payload)) in batch.iter().enumerate() {
        if payload.first() != Some(&WRITE_SEGMENTS_TAG) {
            continue;
        }
        let Ok(UnifiedEntry::WriteSegments {
            ino,
            size,
            mtime,
            segments,
        }) = UnifiedEntry::decode(payload)
        else {
            return false;
        };
        let refs: Vec<SegmentRef> = segments.iter().map(|(_, r)| *r).collect();
        let Some(carried) = packs.carry(&refs) else {
            return false;
        };
        if carried.iter().all(Carried::is_nothing) {
            continue;
        }
        let carried = UnifiedEntry::WriteSegmentsCarried {
            ino,
            size,
            mtime,
            segments,
            carried,
        };
        rewritten.push((at, carried.encode()));
    }
    for (at, payload) in rewritten {
        batch[at].1 = payload;
    }
    true
}
