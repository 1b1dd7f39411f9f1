//! The frames a pack store appended since its last sync, with what a log
//! record needs to carry each while they are few enough (see `carried`):
//! its stored bytes, or a patch to seal it from again.

use std::collections::HashMap;
use std::sync::Arc;

use crate::metadata::FramePatch;

/// Bytes kept for log records to carry. An fsync after more than this
/// syncs the packs. Kept frames count their stored bytes, patches their
/// bytes: writing 128 KiB more into the log (and its copy) costs about
/// what the flush it saves does (ext4 on the reference VM's disk: ~300 µs
/// a flush, ~500 MB/s), and the carried bytes take space in the log until
/// the next snapshot. Patches make this go much further: 32 random 4 KiB
/// writes into 64 KiB segments keep 128 KiB of patches, not 2 MiB of frames.
pub const CARRY_MAX_BYTES: usize = 128 << 10;

/// Frames' stored bytes by (pack, offset).
pub(super) type FramesAt = HashMap<(u64, u64), Arc<Vec<u8>>>;

/// What is kept of one unsynced frame for a record to carry.
pub(super) enum Kept {
    Frame(Vec<u8>),
    Patch(FramePatch),
}

impl Kept {
    fn len(&self) -> usize {
        match self {
            Kept::Frame(b) => b.len(),
            Kept::Patch(p) => p.bytes.len(),
        }
    }
}

/// Frames appended since the last sync, with what is kept of them while it fits.
#[derive(Default)]
pub(super) struct Unsynced {
    pub(super) frames: HashMap<(u64, u64), Kept>,
    pub(super) bytes: usize,
    /// A frame of which nothing is kept was appended: only a sync of the
    /// packs makes everything durable.
    pub(super) untracked: bool,
}

impl Unsynced {
    /// Frames `sizes` (concatenated in `frames`) were placed at `placed`;
    /// `patches` (one per frame) replace their bytes when given.
    pub(super) fn note(
        &mut self,
        placed: &[(u64, u64)],
        frames: &[u8],
        sizes: &[usize],
        carriable: bool,
        patches: Option<Vec<FramePatch>>,
    ) {
        if self.untracked {
            return;
        }
        let adding = match &patches {
            Some(p) => p.iter().map(|p| p.bytes.len()).sum(),
            None => frames.len(),
        };
        if !carriable || self.bytes + adding > CARRY_MAX_BYTES {
            *self = Unsynced {
                untracked: true,
                ..Unsynced::default()
            };
            return;
        }
        let mut patches = patches.map(Vec::into_iter);
        let mut at = 0;
        for (&(pack, offset), &size) in placed.iter().zip(sizes) {
            let kept = match patches.as_mut().and_then(Iterator::next) {
                Some(p) => Kept::Patch(p),
                None => Kept::Frame(frames[at..at + size].to_vec()),
            };
            at += size;
            self.bytes += kept.len();
            self.frames.insert((pack, offset), kept);
        }
    }

    /// Take what is kept of the frame at (pack, offset), if anything.
    pub(super) fn take(&mut self, at: (u64, u64)) -> Option<Kept> {
        let kept = self.frames.remove(&at)?;
        self.bytes -= kept.len();
        Some(kept)
    }
}
