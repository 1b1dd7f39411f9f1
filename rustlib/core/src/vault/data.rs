//! The data path: write, truncate (`setattr` with a size), fsync; reads
//! are in [`super::read`]. Segment arithmetic is in [`super::segments`].

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::engine::{lock, Attr, StateGuard, Vault, MAX_FILE_SIZE};
use super::segments;
use crate::crypto::aead::AeadKey;
use crate::error::errno::*;
use crate::error::{fs_err, Result};
use crate::metadata::{AttrChange, FramePatch, InodeKind, SegmentRef, Timespec, UnifiedEntry};
use crate::packs::CARRY_MAX_BYTES;

/// What a write found under the state lock: the file's id and size, and
/// the frames of the segments it may overwrite in part.
struct WritePlan {
    file_id: [u8; 16],
    size: u64,
    stored: u64,
    old: Vec<(u64, SegmentRef)>,
}

impl Vault {
    /// One visit to the state lock: what `write` of `[offset, end)` needs.
    fn plan_write(&self, ino: u64, offset: u64, end: u64) -> Result<WritePlan> {
        let seg = self.segment_size();
        let s = self.lock_state();
        let i = s.inode(ino)?;
        i.require_file("not a file")?;
        let old = segments::partial_candidates(offset, end, seg)
            .into_iter()
            .filter_map(|k| i.segments.get(&k).map(|r| (k, *r)))
            .collect();
        Ok(WritePlan {
            file_id: i.file_id,
            size: i.size,
            stored: i.stored,
            old,
        })
    }

    /// Change attributes; a new size truncates or grows (sparse). Times not
    /// given are stamped as [`FileTimes`](super::times::FileTimes) says.
    pub fn setattr(&self, ino: u64, change: AttrChange) -> Result<Attr> {
        let file_lock = self.file_lock(ino);
        let _guard = lock(&file_lock);
        let (kind, current) = {
            let s = self.lock_state();
            let i = s.inode(ino)?;
            (i.kind, i.size)
        };
        let mut shrink_to = None;
        if let Some(size) = change.size {
            if size > MAX_FILE_SIZE {
                return Err(fs_err(EFBIG, "file too large"));
            }
            if size < current {
                shrink_to = Some(size);
            } else {
                // Growing: first cut whatever the last segment holds past
                // the current end (left by a crash between a truncate's two
                // records), so it cannot reappear inside the file.
                self.cut_segment_at(ino, current)?;
            }
        }
        let mut change = change;
        self.stamp_attr_change(kind, &mut change);
        let size = change.size;
        let file_id = {
            let mut s = self.lock_state();
            // Nothing to change (the caller's times are kept and none were
            // given): no record.
            if change != AttrChange::default() {
                self.commit(&mut s, UnifiedEntry::SetAttr { ino, change })?;
            }
            s.inode(ino)?.file_id
        };
        // Shrinking: the new size first, then the segment it cuts is
        // rewritten. In this order a crash between the two records leaves
        // exactly the truncated file (the old bytes past its end are never
        // read, and are cut before it grows again); the other order could
        // leave the old size with zeros inside it.
        if let Some(size) = shrink_to {
            self.cut_segment_at(ino, size)?;
        }
        if let Some(size) = size {
            // The segment cut at the new end (rewritten: a new generation)
            // and every segment after it.
            self.cache.invalidate(&file_id, size / self.segment_size());
        }
        let s = self.lock_state();
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    /// Rewrite the segment that offset `size` cuts (truncating to `size`, or
    /// about to grow from it), so its bytes past `size` cannot come back if
    /// the file grows. Keeps the file's size and times.
    pub(super) fn cut_segment_at(&self, ino: u64, size: u64) -> Result<()> {
        let seg = self.segment_size();
        let _frames = self.use_frames();
        let (file_id, cut) = {
            let s = self.lock_state();
            let i = s.inode(ino)?;
            i.require_file("not a file")?;
            let cut = segments::cut_at(size, seg).and_then(|(index, within)| {
                i.segments
                    .get(&index)
                    .filter(|r| r.plain_len as u64 > within)
                    .map(|r| (index, *r, within))
            });
            (i.file_id, cut)
        };
        if let Some((index, r, within)) = cut {
            let key = self.key_for(&file_id);
            let mut plain = self.old_segment(&key, &file_id, index, &r)?;
            plain.truncate(within as usize);
            let generation = self.take_generation()?;
            // What a record carries of it: the old frame cut (`packs::carried`).
            let cut = FramePatch {
                base_generation: r.generation,
                keep: within as u32,
                offset: 0,
                bytes: Vec::new(),
            };
            let refs = self.packs.write_patched_segments(
                &key,
                &file_id,
                &[(index, generation, &plain)],
                Some(vec![cut]),
            )?;
            let mut s = self.lock_state();
            let size = s.inode(ino)?.size;
            self.commit_segments(&mut s, ino, size, None, vec![(index, refs[0])])?;
        }
        Ok(())
    }

    /// Commit new frames of `ino` and its new size, with `mtime` as its
    /// mtime and ctime, or (`None`) keeping both times it has. The
    /// WriteSegments record can only set ctime to its mtime (FORMAT.md
    /// §9.2), so a ctime that differs from the kept mtime is put back by a
    /// SetAttr right after it (a crash between the two leaves ctime = mtime).
    fn commit_segments(
        &self,
        s: &mut StateGuard<'_>,
        ino: u64,
        size: u64,
        mtime: Option<Timespec>,
        segments: Vec<(u64, SegmentRef)>,
    ) -> Result<()> {
        let (kept_mtime, kept_ctime) = {
            let i = s.inode(ino)?;
            (i.mtime, i.ctime)
        };
        let entry = UnifiedEntry::WriteSegments {
            ino,
            size,
            mtime: mtime.unwrap_or(kept_mtime),
            segments,
        };
        self.commit(s, entry)?;
        if mtime.is_none() && kept_ctime != kept_mtime {
            let change = AttrChange {
                ctime: Some(kept_ctime),
                ..AttrChange::default()
            };
            self.commit(s, UnifiedEntry::SetAttr { ino, change })?;
        }
        Ok(())
    }

    /// The plaintext of a segment about to be rewritten, owned: taken out
    /// of the cache, or opened (and not cached: its new version will be).
    pub(super) fn old_segment(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        index: u64,
        r: &SegmentRef,
    ) -> Result<Vec<u8>> {
        // Taken, not copied: the write gives the segment a new generation.
        match self.cache.take((*file_id, index, r.generation)) {
            Some(plain) => Ok(plain),
            None => self.packs.read_segment(key, file_id, index, r),
        }
    }

    /// Write `data` at `offset`; returns the bytes written (all of them).
    pub fn write(&self, ino: u64, offset: u64, data: &[u8]) -> Result<usize> {
        self.write_noting_blocks(ino, offset, data)?;
        Ok(data.len())
    }

    /// Write `data` at `offset` (all of it), and say whether the file's
    /// `st_blocks` changed: a rewrite of bytes already stored leaves it, so
    /// the mount need not tell the kernel its cached attributes went stale.
    pub fn write_noting_blocks(&self, ino: u64, offset: u64, data: &[u8]) -> Result<bool> {
        if data.is_empty() {
            return Ok(false);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= MAX_FILE_SIZE);
        let Some(end) = end else {
            return Err(fs_err(EFBIG, "file too large"));
        };
        let seg = self.segment_size();
        let file_lock = self.file_lock(ino);
        let _guard = lock(&file_lock);
        // Planned under one visit to the state lock, sealed outside it,
        // committed under a second one. Writes and truncates of this file
        // hold its file lock, so the plan still holds at the commit.
        let mut frames = self.use_frames();
        let mut plan = self.plan_write(ino, offset, end)?;
        let blocks_before = plan.stored.div_ceil(512);
        let mtime = self.content_mtime(InodeKind::File);
        if offset > plan.size && segments::cut_at(plan.size, seg).is_some() {
            // Writing past the end leaves a gap: first cut whatever the last
            // segment holds past the end (see `setattr`), so the gap reads
            // as zeros. (Rare: the frames guard is not taken twice.)
            drop(frames);
            self.cut_segment_at(ino, plan.size)?;
            frames = self.use_frames();
            plan = self.plan_write(ino, offset, end)?;
        }
        let _frames = frames;
        let WritePlan {
            file_id, size, old, ..
        } = plan;
        let key = self.key_for(&file_id);
        // The old plaintext a write keeps, with its frame's generation.
        let mut old_plain: HashMap<u64, (u64, Vec<u8>)> = HashMap::new();
        for (k, r) in &old {
            if !segments::covers_whole(*k, offset, end, seg) && !old_plain.contains_key(k) {
                let mut plain = self.old_segment(&key, &file_id, *k, r)?;
                // Bytes past the current end are not the file's (see
                // `setattr`): what the write does not cover there is zeros.
                plain.truncate(
                    plain
                        .len()
                        .min(segments::bytes_within_size(*k, size, seg) as usize),
                );
                old_plain.insert(*k, (r.generation, plain));
            }
        }
        // A small write's frames are carried by an fsync's record as patches
        // (`packs::carried`): its bytes, not whole segments. A big write's
        // would not fit the carry budget anyway, and a store that takes no
        // patches (compression, format 1) would drop them.
        let patching = data.len() <= CARRY_MAX_BYTES && self.packs.takes_patches();
        let mut patches = Vec::new();
        let new_size = size.max(end);
        // A segment the write covers from its start, with nothing old to
        // keep, is sealed straight from `data` (no copy).
        let mut sealed: Vec<(u64, u64, std::borrow::Cow<'_, [u8]>)> = Vec::new();
        for k in segments::touched(offset, end, seg) {
            let seg_start = segments::start_of(k, seg);
            let (from, to, _) = segments::covered_part(k, offset, end, new_size, seg);
            let src = &data[(from - offset) as usize..(to - offset) as usize];
            let old = old_plain.remove(&k);
            if patching {
                let (base_generation, kept) = old.as_ref().map_or((0, 0), |(g, p)| (*g, p.len()));
                patches.push(FramePatch {
                    base_generation,
                    keep: kept as u32,
                    offset: (from - seg_start) as u32,
                    bytes: src.to_vec(),
                });
            }
            let plain = match old.map(|(_, p)| p) {
                None if from == seg_start => std::borrow::Cow::Borrowed(src),
                old => {
                    let mut plain = old.unwrap_or_default();
                    let needed = (to - seg_start) as usize;
                    if plain.len() < needed {
                        plain.resize(needed, 0);
                    }
                    plain[(from - seg_start) as usize..needed].copy_from_slice(src);
                    std::borrow::Cow::Owned(plain)
                }
            };
            sealed.push((k, self.take_generation()?, plain));
        }
        let batch: Vec<(u64, u64, &[u8])> =
            sealed.iter().map(|(k, g, p)| (*k, *g, &p[..])).collect();
        // Sealed on this thread below 2 MiB (packs::frame::PARALLEL_MIN_BYTES):
        // splitting a 1 MiB call over both cores of the reference VM, each
        // share sealed and appended by its own thread, measured slower
        // (0.8-1.0 against 0.9-1.35 GB/s, vault_bench, idle machine).
        let patches = patching.then_some(patches);
        let refs = self
            .packs
            .write_patched_segments(&key, &file_id, &batch, patches)?;
        drop(batch);
        let placed = sealed.iter().map(|(k, _, _)| *k).zip(refs).collect();
        let blocks_changed = {
            let mut s = self.lock_state();
            // Writes and truncates of this file hold its file lock, so the size
            // read above still holds; a write never shrinks the file anyway.
            let size = new_size.max(s.inode(ino)?.size);
            self.commit_segments(&mut s, ino, size, mtime, placed)?;
            s.inode(ino)?.stored.div_ceil(512) != blocks_before
        };
        // Keep the segments the next small write or read is likely to need:
        // those built here (kept without a copy) and partial ones. Whole
        // segments sealed straight from `data` would cost a copy each.
        self.cache
            .insert_many(sealed.into_iter().filter_map(|(k, g, p)| {
                let plain = match p {
                    std::borrow::Cow::Owned(v) => v,
                    std::borrow::Cow::Borrowed(b) if (b.len() as u64) < seg => b.to_vec(),
                    std::borrow::Cow::Borrowed(_) => return None,
                };
                Some(((file_id, k, g), Arc::new(plain)))
            }));
        self.counters.writes.fetch_add(1, Relaxed);
        self.counters
            .bytes_written
            .fetch_add(data.len() as u64, Relaxed);
        Ok(blocks_changed)
    }

    /// Make `ino`'s data and metadata (and everything before them) durable.
    ///
    /// One sync of the log: the frames its records refer to are made
    /// durable first by the log's before-write step, which for a few small
    /// frames lets the records carry them instead of syncing the packs
    /// (`super::carry`): one device flush, not two.
    ///
    /// Frames freed meanwhile are not punched here: a punch is a change of
    /// the pack's extents that the file system journals (about 200 µs on
    /// the reference VM's ext4, and the next sync of that pack then commits
    /// the journal), on the path of a call a program waits for. The
    /// scheduler's next sync punches them (within a tick once
    /// `PUNCH_EARLY_BYTES` wait), as does [`Vault::sync`].
    pub fn fsync(&self, _ino: u64) -> Result<()> {
        self.counters.fsyncs.fetch_add(1, Relaxed);
        self.log.sync()
    }

    /// Make everything written so far durable, the packs included (no
    /// frame is left for the log to carry); then punch out the frames that
    /// records now durable freed (see [`super::reclaim`]).
    pub fn sync(&self) -> Result<()> {
        self.packs.sync()?;
        self.log.sync()?;
        self.punch_freed_frames();
        Ok(())
    }
}
