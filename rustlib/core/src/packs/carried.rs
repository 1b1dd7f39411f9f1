//! Frames a log record carries until their pack is synced: one device
//! flush per fsync instead of two.
//!
//! An fsync must make a write's frames durable before (or with) the log
//! record that refers to them. Syncing the packs and then the log costs
//! two flushes of the device, in sequence. For a small write the record
//! can instead carry the frame's sealed bytes (`WriteSegmentsCarried`,
//! FORMAT.md §9.2), so that the one sync of the log makes both durable; the
//! pack itself is synced later (by the scheduler's flush, a snapshot, the
//! close), and until then the log holds the only durable copy.
//!
//! * A small write into a bigger segment would carry the whole segment's
//!   frame (a 4 KiB write into a 64 KiB segment: 64 KiB of log). Such a
//!   frame is carried as a *patch* instead (entry 18): how its plaintext
//!   differs from its segment's previous frame (the *base*). Format-2
//!   sealing is deterministic (nonce = generation, zero padding), so after
//!   a crash the frame is sealed again from the base and the patch, byte
//!   for byte ([`crate::vault`]'s open does it). The base must stay
//!   readable until the patched frame is durable in its pack: frames freed
//!   by a record are punched only after a sync of the packs that began
//!   after the record ([`PackStore::sync_ticket`]), and pack compaction
//!   syncs the packs before it deletes any.
//! * While they are not synced, the store keeps the bytes (or the patches)
//!   of the frames it appended for writes ((`unsynced::Unsynced`)), up to
//!   `CARRY_MAX_BYTES` in all.
//!   A frame it does not keep (more than that, or a compaction's copy)
//!   makes [`PackStore::carry`] refuse: the packs are synced instead.
//! * A frame not in the list is durable: the list is emptied under the
//!   same lock that takes the packs a sync will flush, and a frame is
//!   noted under the lock its append holds.
//! * After a crash the log is read and every carried frame that its
//!   segment still refers to is written back where its pack lost it
//!   ([`PackStore::restore_frames`]; a read-only open keeps them in memory
//!   instead, [`PackStore::overlay_frames`]). A frame no segment refers to
//!   any more is dead: it is not restored (its place may have been punched).

use std::sync::Arc;

use super::frame::{open_pack_frame, seal_pack_frames};
use super::unsynced::Kept;
use super::{lock, unsynced, PackHeader, PackStore, PACK_HEADER_LEN};
use crate::crypto::aead::AeadKey;
use crate::error::{io_at, Result};
use crate::metadata::{Carried, SegmentRef};
use crate::storage::StorageFile;

impl PackStore {
    /// Whether every frame not durable yet is one a record can carry.
    pub fn all_carriable(&self) -> bool {
        !lock(&self.inner).carriable.untracked
    }

    /// What a log record is to carry of each frame of `refs`: nothing for
    /// one durable in its pack, else its stored bytes or its patch, which
    /// are forgotten here (the record carries them from now on). `None` if
    /// a frame not durable cannot be carried: then sync the packs.
    pub fn carry(&self, refs: &[SegmentRef]) -> Option<Vec<Carried>> {
        let mut inner = lock(&self.inner);
        let unsynced = &mut inner.carriable;
        if unsynced.untracked {
            return None;
        }
        let out = refs
            .iter()
            .map(|r| match unsynced.take((r.pack, r.offset)) {
                Some(Kept::Frame(b)) if b.len() == r.stored_len as usize => Carried::Frame(b),
                Some(Kept::Patch(p)) => Carried::Patch(p),
                _ => Carried::Nothing,
            })
            .collect();
        Some(out)
    }

    /// The stored bytes of the newest frame of `links`, one segment's
    /// carried frames oldest first (`recovery::carried`): the first is
    /// carried whole, a patch with no base, or the base as its pack holds it
    /// (`Carried::Nothing`); each later one a patch over the one before.
    /// Sealed again from the patches where the newest is one: format-2
    /// sealing is deterministic, so these are the bytes the frame had.
    /// `None` if a base cannot be read or authenticated, or a patch does
    /// not apply (the frame stays lost: reading it reports the damage).
    ///
    /// The patches are applied from the newest earlier frame of the chain
    /// that its pack holds intact, not always from the first: a sync of
    /// the packs between two of the records made a carried frame durable
    /// and let its own base be punched (frames a record frees are punched
    /// once a sync begun after it completes: `vault::reclaim`). By that
    /// rule the newest durable frame before a lost one is never punched:
    /// punching it would have needed a sync that made the lost one durable.
    pub fn rebuild_carried(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        index: u64,
        links: &[(SegmentRef, Carried)],
    ) -> Option<Vec<u8>> {
        let (newest, carried) = links.last()?;
        if let Carried::Frame(bytes) = carried {
            return Some(bytes.clone());
        }
        if !self.opts.layout.is_v2(newest.generation) {
            return None;
        }
        let held = (0..links.len() - 1).rev().find_map(|k| {
            let plain = self.read_segment(key, file_id, index, &links[k].0).ok()?;
            Some((k, plain))
        });
        let (from, mut plain) = match held {
            Some((k, plain)) => (k + 1, plain),
            None => (0, Vec::new()),
        };
        for (k, (r, c)) in links.iter().enumerate().skip(from) {
            plain = match (k, c) {
                (0, Carried::Nothing) => self.read_segment(key, file_id, index, r).ok()?,
                (0, Carried::Frame(b)) => {
                    let layout = self.opts.layout;
                    open_pack_frame(key, &self.vault_id, file_id, index, r, layout, b.clone())
                        .ok()?
                }
                (_, Carried::Patch(p)) => p.apply(&plain, r.plain_len)?,
                _ => return None,
            };
        }
        let segment = [(index, newest.generation, &plain[..])];
        let (frame, sizes) = seal_pack_frames(
            key,
            &self.vault_id,
            file_id,
            &segment,
            None,
            self.opts.layout,
            1,
        )
        .ok()?;
        (sizes[0] == newest.stored_len as usize).then_some(frame)
    }

    /// Whether the pack may have lost frame `r` to a crash, as far as can
    /// be told without its bytes: the pack ends before the frame does, or
    /// holds a run of [`ZERO_RUN`] zero bytes in it (what a block never
    /// written reads as; sealed bytes hold such a run with a chance of
    /// 2^-256). A patched frame is sealed again only then: that costs a
    /// read and two AEAD passes, where this costs a read.
    pub fn may_have_lost(&self, r: &SegmentRef) -> bool {
        match self.read_frame(r) {
            Ok(held) => held.windows(ZERO_RUN).any(|w| w.iter().all(|b| *b == 0)),
            Err(_) => true,
        }
    }

    /// Read-only, once, at open: serve those of these frames (read from the
    /// log) that their packs lost ([`lost_to_a_crash`]) in place of what the
    /// packs hold. A frame the pack holds damaged is not overlaid: reading
    /// it reports the damage, as without the log's copy.
    pub fn overlay_frames(&self, frames: Vec<(SegmentRef, Vec<u8>)>) {
        let mut overlay = unsynced::FramesAt::new();
        for (r, bytes) in frames {
            let held = match self.fs.open_read(&self.path(r.pack)) {
                Ok(file) => held_at(&*file, r.offset, bytes.len()).unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            if held != bytes && lost_to_a_crash(&held, &bytes) {
                overlay.insert((r.pack, r.offset), Arc::new(bytes));
            }
        }
        let _ = self.overlay.set(overlay);
    }

    /// The overlaid frame at `r`, if any (no lock: set once at open).
    pub(super) fn overlaid(&self, r: &SegmentRef) -> Option<Vec<u8>> {
        self.overlay
            .get()?
            .get(&(r.pack, r.offset))
            .filter(|b| b.len() == r.stored_len as usize)
            .map(|b| b.to_vec())
    }

    /// Where the overlaid frames of pack `number` end (0: none): a
    /// read-only open's view of the pack's length.
    pub(super) fn overlay_end(&self, number: u64) -> u64 {
        self.overlay.get().map_or(0, |o| {
            o.iter()
                .filter(|((pack, _), _)| *pack == number)
                .map(|((_, offset), b)| offset + b.len() as u64)
                .max()
                .unwrap_or(0)
        })
    }

    /// Write these frames (read from the log) back into their packs where
    /// the packs do not hold them, the header first if the pack lost it
    /// too, and sync what was written. Returns how many were written back.
    pub fn restore_frames(&self, frames: &[(SegmentRef, Vec<u8>)]) -> Result<usize> {
        let mut restored = 0;
        // Each pack opened (and its header checked) once; `None`: a pack
        // not to write to.
        let mut packs: Vec<(u64, Option<Box<dyn StorageFile>>)> = Vec::new();
        for (r, bytes) in frames {
            let path = self.path(r.pack);
            let at = match packs.iter().position(|(n, _)| *n == r.pack) {
                Some(at) => at,
                None => {
                    packs.push((r.pack, self.open_to_restore(r.pack)?));
                    packs.len() - 1
                }
            };
            let Some(file) = &packs[at].1 else { continue };
            let old =
                held_at(&**file, r.offset, bytes.len()).map_err(io_at("cannot read", &path))?;
            if old != *bytes && lost_to_a_crash(&old, bytes) {
                file.write_all_at(bytes, r.offset)
                    .map_err(io_at("cannot write", &path))?;
                restored += 1;
            }
        }
        for (pack, file) in &packs {
            if let Some(file) = file {
                file.sync_data()
                    .map_err(io_at("cannot sync", &self.path(*pack)))?;
            }
            lock(&self.handles).remove(pack);
        }
        Ok(restored)
    }

    /// Pack `number` opened to write carried frames back into, its header
    /// written first if a crash lost it; `None` if it is not to be written
    /// to: missing (a pack's name is durable before any frame is written to
    /// it, so that is damage, which fsck reports and its repair handles),
    /// or with a header that is neither this pack's nor zeros (reading the
    /// pack reports it).
    fn open_to_restore(&self, number: u64) -> Result<Option<Box<dyn StorageFile>>> {
        let path = self.path(number);
        let file = match self.fs.open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            f => f.map_err(io_at("cannot open", &path))?,
        };
        let header = PackHeader {
            vault_id: self.vault_id,
            number,
        }
        .encode();
        let old = held_at(&*file, 0, PACK_HEADER_LEN).map_err(io_at("cannot read", &path))?;
        if old != header {
            if old.len() == PACK_HEADER_LEN && old.iter().any(|&b| b != 0) {
                return Ok(None);
            }
            file.write_all_at(&header, 0)
                .map_err(io_at("cannot write", &path))?;
        }
        Ok(Some(file))
    }
}

/// Zero bytes in a row that tell a block a crash left unwritten.
const ZERO_RUN: usize = 32;

/// Up to `len` bytes of `file` at `offset` (fewer where the file ends).
fn held_at(file: &dyn StorageFile, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    let n = file.read_at(&mut b, offset)?;
    b.truncate(n);
    Ok(b)
}

/// Whether the pack's bytes `held` (shorter where the pack ends) differ
/// from the frame `frame` only as a crash leaves an unsynced tail: past the
/// end, or zeros where a block (or a sector of it) was never written (ext4
/// and others show unwritten space as zeros, never as older or other data).
/// Any other difference (a bit flipped, other bytes) is damage: not
/// overwritten, so that fsck reports it. (A damaged byte that happens to
/// read zero is put right from the log's copy.)
pub(super) fn lost_to_a_crash(held: &[u8], frame: &[u8]) -> bool {
    held.iter().zip(frame).all(|(&h, &f)| h == f || h == 0)
}

#[cfg(test)]
mod tests {
    use super::lost_to_a_crash;

    #[test]
    fn a_crash_leaves_a_short_file_or_zeros_and_damage_is_anything_else() {
        let frame: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
        assert!(lost_to_a_crash(&[], &frame), "past the end");
        assert!(lost_to_a_crash(&frame[..3996], &frame), "cut short");
        let mut zeros = frame.clone();
        zeros[3996..8092].fill(0);
        assert!(lost_to_a_crash(&zeros, &frame), "a block of zeros");
        zeros[4500..5000].copy_from_slice(&frame[4500..5000]);
        assert!(
            lost_to_a_crash(&zeros, &frame),
            "sectors of a block written"
        );
        let mut flipped = frame.clone();
        flipped[5000] ^= 0x40;
        assert!(!lost_to_a_crash(&flipped, &frame), "a bit flipped");
        let mut other = frame.clone();
        other[9000] = 7;
        assert!(!lost_to_a_crash(&other, &frame), "another byte");
    }
}
