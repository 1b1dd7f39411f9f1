//! The frames committed entries freed, each with the log sequence number
//! of its entry, until [`super::reclaim`] punches them once that entry is
//! durable. Held by the engine under its own leaf lock (`Vault::freed`).

use crate::metadata::SegmentRef;

/// Frames freed by entries not yet known to be durable, with the sequence
/// number of the entry that freed them and the ticket of the first sync of
/// the packs to begin after it (`PackStore::sync_ticket`).
#[derive(Default)]
pub(super) struct FreedFrames {
    frames: Vec<(u64, u64, SegmentRef)>,
    pub(super) bytes: u64,
}

impl FreedFrames {
    /// Note the frames freed by the entry with log sequence number `seq`,
    /// committed before the sync of the packs with ticket `ticket` began.
    pub(super) fn note(&mut self, seq: u64, ticket: u64, freed: Vec<SegmentRef>) {
        self.bytes += freed.iter().map(|r| r.stored_len as u64).sum::<u64>();
        self.frames
            .extend(freed.into_iter().map(|r| (seq, ticket, r)));
    }

    /// Take the frames freed by entries up to `synced_seq` whose pack sync
    /// ticket `packs_synced` says is done.
    pub(super) fn take_durable(
        &mut self,
        synced_seq: u64,
        packs_synced: impl Fn(u64) -> bool,
    ) -> Vec<SegmentRef> {
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.frames)
            .into_iter()
            .partition(|(seq, ticket, _)| *seq <= synced_seq && packs_synced(*ticket));
        self.frames = later;
        self.bytes = self
            .frames
            .iter()
            .map(|(_, _, r)| r.stored_len as u64)
            .sum();
        ready.into_iter().map(|(_, _, r)| r).collect()
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
    fn only_frames_of_durable_entries_are_taken() {
        let mut f = FreedFrames::default();
        let any = |_| true;
        f.note(3, 1, vec![frame(1, 64, 100)]);
        f.note(5, 1, vec![frame(1, 164, 50), frame(2, 64, 40)]);
        assert_eq!(f.bytes, 190);
        assert_eq!(f.take_durable(4, any), vec![frame(1, 64, 100)]);
        assert_eq!(f.bytes, 90);
        assert_eq!(f.take_durable(4, any), vec![]);
        assert_eq!(f.take_durable(5, any).len(), 2);
        assert_eq!(f.bytes, 0);
    }

    #[test]
    fn frames_wait_for_a_sync_of_the_packs_begun_after_their_entry() {
        let mut f = FreedFrames::default();
        f.note(3, 2, vec![frame(1, 64, 100)]);
        assert_eq!(f.take_durable(9, |t| t <= 1), vec![], "only sync 1 done");
        assert_eq!(f.take_durable(9, |t| t <= 2), vec![frame(1, 64, 100)]);
    }
}
