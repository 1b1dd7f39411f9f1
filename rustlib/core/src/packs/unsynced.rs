//! The frames a pack store appended since its last sync, with their bytes
//! while they are few enough for log records to carry (see `carried`).

use std::collections::HashMap;
use std::sync::Arc;

/// Bytes of unsynced frames kept for log records to carry. An fsync after
/// more than this syncs the packs: writing 128 KiB more into the log costs
/// about what the flush it saves does (ext4 on the reference VM's disk:
/// ~300 µs a flush, ~500 MB/s), and the carried bytes take space in the log
/// until the next snapshot (a 200 KB file fsync'd is stored once).
pub const CARRY_MAX_BYTES: usize = 128 << 10;

/// Frames' stored bytes by (pack, offset).
pub(super) type FramesAt = HashMap<(u64, u64), Arc<Vec<u8>>>;

/// Frames appended since the last sync, with their bytes while they fit.
#[derive(Default)]
pub(super) struct Unsynced {
    pub(super) frames: FramesAt,
    pub(super) bytes: usize,
    /// A frame whose bytes are not kept was appended: only a sync of the
    /// packs makes everything durable.
    pub(super) untracked: bool,
}

impl Unsynced {
    /// Frames `sizes` (concatenated in `frames`) were placed at `placed`.
    pub(super) fn note(
        &mut self,
        placed: &[(u64, u64)],
        frames: &[u8],
        sizes: &[usize],
        carriable: bool,
    ) {
        if self.untracked {
            return;
        }
        if !carriable || self.bytes + frames.len() > CARRY_MAX_BYTES {
            *self = Unsynced {
                untracked: true,
                ..Unsynced::default()
            };
            return;
        }
        let mut at = 0;
        for (&(pack, offset), &size) in placed.iter().zip(sizes) {
            let bytes = Arc::new(frames[at..at + size].to_vec());
            at += size;
            self.bytes += size;
            self.frames.insert((pack, offset), bytes);
        }
    }
}
