//! Pack files: file contents as sealed pack frames appended to files shared by
//! many files (FORMAT.md §8).
//!
//! * [`file`](mod@file): a pack's 64-byte header and its file name;
//! * [`frame`]: pack frames, sealed and opened (the layout is there);
//! * `unsynced`, `carried`: frames not yet synced that log records may
//!   carry instead (whole or as patches), and putting them back after a
//!   crash;
//! * `sync`: making appended frames durable, and sync tickets;
//! * [`read_into`]: frames read and opened straight into a reader's buffer;
//! * this module: [`PackStore`], which appends frames to packs, reads them
//!   back, rotates and deletes packs.
//!
//! Nothing in a pack names a file, a segment index or a length in clear: the
//! segment map in the (sealed) metadata says where each frame is
//! ([`SegmentRef`]). Because the AAD binds the frame to its file, index,
//! generation and length but *not* to its pack or offset, a frame cannot be
//! moved to another file or position or replaced by an older generation
//! without failing to open, yet pack compaction can copy it byte for byte.
//!
//! * A zero-length segment is never stored: `write_segments` refuses one
//!   (an empty segment is simply absent from the segment map, like a hole).
//! * A pack is never appended to after the store that created it is dropped
//!   (or after a crash): the first write of a store creates a new pack
//!   numbered after the highest existing one, and its name is made durable
//!   (`sync_dir`) before any frame is written to it.
//! * Frames become durable at [`PackStore::sync`]; the caller makes them
//!   durable before the log record that references them, or lets that
//!   record carry them (`carried`).
//! * A failed write (e.g. ENOSPC) is cut off again (the pack is truncated to
//!   its last whole frame, and appending goes on from there), so a full disk
//!   is survivable. After a failed sync, or a write
//!   that cannot be cut off, the store refuses every further write and sync
//!   (`PacksFailed`): it never reports success for data it may have failed
//!   to persist. Reads keep working.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::crypto::aead::AeadKey;
use crate::error::{io_at, Error, Result};
use crate::metadata::{FramePatch, SegmentRef};
use crate::pipeline::for_each_split;
use crate::storage::{FileSystem, StorageFile};
use crate::types::Cipher;

mod carried;
pub mod file;
pub mod frame;
pub mod read_into;
mod sync;
mod unsynced;

use file::list_packs;
pub use file::{
    pack_file_name, parse_pack_file_name, PackHeader, PACK_HEADER_LEN, PACK_MAGIC, PACK_VERSION,
};
pub use frame::{
    frame_nonce, pack_frame_aad, padded_frame_len, FrameLayout, MAX_PLAIN_LEN, PACK_FRAME_AAD_LEN,
    PACK_FRAME_OVERHEAD,
};
use frame::{open_pack_frame, seal_pack_frames, threads_for};
pub use unsynced::CARRY_MAX_BYTES;

pub const DEFAULT_PACK_SIZE_LIMIT: u64 = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackOptions {
    /// A pack is not grown past this many bytes, except by its first frame.
    pub size_limit: u64,
    /// zstd level, or `None` to store every segment raw.
    pub compression: Option<i32>,
    /// How frames are laid out (format 1 or 2, by generation).
    pub layout: FrameLayout,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            size_limit: DEFAULT_PACK_SIZE_LIMIT,
            compression: None,
            layout: FrameLayout::V1,
        }
    }
}

struct Active {
    number: u64,
    file: Arc<dyn StorageFile>,
    len: u64,
}

struct Inner {
    /// The pack frames are appended to; `None` until the first write.
    active: Option<Active>,
    /// Number the next new pack gets.
    next_number: u64,
    /// Packs written to since the last sync.
    unsynced: Vec<(u64, Arc<dyn StorageFile>)>,
    /// Set by the first write or sync error.
    failed: Option<String>,
    /// Frames written since the last sync that a log record may carry.
    carriable: unsynced::Unsynced,
    /// Syncs begun so far (each one's ticket: `sync_ticket`).
    syncs_begun: u64,
}

/// The packs of a vault. Shareable across threads: every method takes `&self`.
pub struct PackStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    vault_id: [u8; 16],
    cipher: Cipher,
    opts: PackOptions,
    inner: Mutex<Inner>,
    /// Serializes syncs, so a sync returns only after every frame written
    /// before it started is durable, even if another sync took its pack.
    sync_lock: Mutex<()>,
    /// Open files by pack number, for reading (headers checked).
    handles: Mutex<HashMap<u64, Arc<dyn StorageFile>>>,
    /// Read-only: frames the log carries that their packs lost (`carried`).
    overlay: std::sync::OnceLock<unsynced::FramesAt>,
    /// The highest ticket of a completed sync.
    synced_ticket: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PackStore {
    /// Open the packs in `dir` (created if missing). Nothing is written until
    /// the first write, which starts a new pack after the highest existing one.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        vault_id: [u8; 16],
        cipher: Cipher,
        opts: PackOptions,
    ) -> Result<PackStore> {
        if opts.size_limit <= (PACK_HEADER_LEN + PACK_FRAME_OVERHEAD) as u64 {
            return Err(Error::InvalidParams(format!(
                "pack size limit of {} bytes",
                opts.size_limit
            )));
        }
        fs.create_dir_all(dir)
            .map_err(io_at("cannot create", dir))?;
        let highest = list_packs(&*fs, dir)?.last().copied().unwrap_or(0);
        Ok(PackStore {
            fs,
            dir: dir.to_path_buf(),
            vault_id,
            cipher,
            opts,
            inner: Mutex::new(Inner {
                active: None,
                next_number: highest + 1,
                unsynced: Vec::new(),
                failed: None,
                carriable: unsynced::Unsynced::default(),
                syncs_begun: 0,
            }),
            overlay: std::sync::OnceLock::new(),
            synced_ticket: AtomicU64::new(0),
            sync_lock: Mutex::new(()),
            handles: Mutex::new(HashMap::new()),
        })
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    pub fn options(&self) -> PackOptions {
        self.opts
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(pack_file_name(number))
    }

    /// Seal `segments` (index, generation, plaintext) of one file and append
    /// their frames to the active pack. Durable after [`sync`](Self::sync).
    /// Returns one reference per segment, in order.
    pub fn write_segments(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        segments: &[(u64, u64, &[u8])],
    ) -> Result<Vec<SegmentRef>> {
        self.write_patched_segments(key, file_id, segments, None)
    }

    /// Whether new frames' patches are kept ([`PackStore::write_patched_segments`]):
    /// frames are sealed again from them byte for byte only as format 2
    /// (every new generation of a format-2 vault) and raw (no compression).
    pub fn takes_patches(&self) -> bool {
        self.opts.compression.is_none() && self.opts.layout.legacy_high < u64::MAX
    }

    /// [`PackStore::write_segments`], with the patch each frame's plaintext
    /// is made by from its segment's previous frame, for a log record to
    /// carry instead of the frame (`carried`), kept where the store
    /// [`takes_patches`](PackStore::takes_patches) and every frame is format 2.
    pub fn write_patched_segments(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        segments: &[(u64, u64, &[u8])],
        patches: Option<Vec<FramePatch>>,
    ) -> Result<Vec<SegmentRef>> {
        if let Some(e) = &lock(&self.inner).failed {
            return Err(Error::PacksFailed(e.clone()));
        }
        let mut total_plain = 0usize;
        for &(index, _, plain) in segments {
            if plain.is_empty() || plain.len() > MAX_PLAIN_LEN {
                return Err(Error::InvalidParams(format!(
                    "segment {index} of {} bytes (a stored segment holds 1 to {MAX_PLAIN_LEN} bytes)",
                    plain.len()
                )));
            }
            total_plain += plain.len();
        }
        if segments.is_empty() {
            return Ok(Vec::new());
        }
        let threads = threads_for(segments.len(), total_plain);
        let (out, sizes) = seal_pack_frames(
            key,
            &self.vault_id,
            file_id,
            segments,
            self.opts.compression,
            self.opts.layout,
            threads,
        )?;
        let layout = self.opts.layout;
        let patches = patches.filter(|p| {
            p.len() == segments.len()
                && self.takes_patches()
                && segments.iter().all(|s| layout.is_v2(s.1))
        });
        let placed = self.append(&out, &sizes, true, patches)?;
        Ok(placed
            .into_iter()
            .zip(segments)
            .zip(&sizes)
            .map(
                |(((pack, offset), (_, generation, plain)), &size)| SegmentRef {
                    pack,
                    offset,
                    stored_len: size as u32,
                    plain_len: plain.len() as u32,
                    generation: *generation,
                },
            )
            .collect())
    }

    /// Append frames (`frames` is their concatenation, `sizes` their lengths)
    /// to the active pack, rotating as needed. Returns (pack, offset) of each.
    /// `carriable`: keep their bytes for a log record to carry (`carried`).
    fn append(
        &self,
        frames: &[u8],
        sizes: &[usize],
        carriable: bool,
        patches: Option<Vec<FramePatch>>,
    ) -> Result<Vec<(u64, u64)>> {
        let mut inner = lock(&self.inner);
        if let Some(e) = &inner.failed {
            return Err(Error::PacksFailed(e.clone()));
        }
        let result = self.append_locked(&mut inner, frames, sizes);
        if let Ok(placed) = &result {
            inner
                .carriable
                .note(placed, frames, sizes, carriable, patches);
        }
        if let Err(e) = &result {
            // A failed write (e.g. the disk is full) placed nothing anyone
            // refers to: cut it off again and go on appending to this pack
            // (every frame has its own random nonce, so rewriting the same
            // offsets is safe). Only a pack that cannot be cut off stops
            // all writes.
            if let Some(active) = &inner.active {
                if active.file.set_len(active.len).is_err() {
                    inner.failed = Some(e.to_string());
                }
            }
        }
        result
    }

    fn append_locked(
        &self,
        inner: &mut Inner,
        frames: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<(u64, u64)>> {
        let limit = self.opts.size_limit;
        let mut placed = Vec::with_capacity(sizes.len());
        let mut i = 0;
        let mut pos = 0usize;
        while i < sizes.len() {
            let full = match &inner.active {
                None => true,
                Some(a) => a.len > PACK_HEADER_LEN as u64 && a.len + sizes[i] as u64 > limit,
            };
            if full {
                self.start_pack(inner)?;
            }
            let active = inner.active.as_mut().expect("an active pack");
            // Every frame that fits goes into one write; a pack's first frame
            // always goes in, whatever its size.
            let start = pos;
            let at = active.len;
            while i < sizes.len() {
                let end = at + (pos - start) as u64;
                if end > PACK_HEADER_LEN as u64 && end + sizes[i] as u64 > limit {
                    break;
                }
                placed.push((active.number, end));
                pos += sizes[i];
                i += 1;
            }
            let path = self.path(active.number);
            active
                .file
                .write_all_at(&frames[start..pos], at)
                .map_err(io_at("cannot write", &path))?;
            active.len += (pos - start) as u64;
            let (number, file) = (active.number, active.file.clone());
            if !inner.unsynced.iter().any(|(n, _)| *n == number) {
                inner.unsynced.push((number, file));
            }
        }
        Ok(placed)
    }

    /// Create the next pack, write its header and make its name durable. A
    /// pack that could not be made whole is removed again.
    fn start_pack(&self, inner: &mut Inner) -> Result<()> {
        let number = inner.next_number;
        inner.next_number += 1;
        let result = self.start_pack_numbered(inner, number);
        if result.is_err() && inner.active.as_ref().is_none_or(|a| a.number != number) {
            let _ = self.fs.remove(&self.path(number));
            inner.unsynced.retain(|(n, _)| *n != number);
        }
        result
    }

    fn start_pack_numbered(&self, inner: &mut Inner, number: u64) -> Result<()> {
        let path = self.path(number);
        let file: Arc<dyn StorageFile> = Arc::from(
            self.fs
                .create_new(&path)
                .map_err(io_at("cannot create", &path))?,
        );
        let header = PackHeader {
            vault_id: self.vault_id,
            number,
        };
        file.write_all_at(&header.encode(), 0)
            .map_err(io_at("cannot write", &path))?;
        // The header is made durable by the next sync, with the frames.
        inner.unsynced.push((number, file.clone()));
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_at("cannot sync", &self.dir))?;
        lock(&self.handles).insert(number, file.clone());
        inner.active = Some(Active {
            number,
            file,
            len: PACK_HEADER_LEN as u64,
        });
        Ok(())
    }

    /// The open file of pack `number`, its header checked.
    fn handle(&self, number: u64) -> Result<Arc<dyn StorageFile>> {
        if let Some(h) = lock(&self.handles).get(&number) {
            return Ok(h.clone());
        }
        let path = self.path(number);
        let file: Arc<dyn StorageFile> = match self.fs.open(&path) {
            Ok(f) => Arc::from(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::PackMissing { pack: number })
            }
            Err(e) => return Err(io_at("cannot open", &path)(e)),
        };
        let mut b = [0u8; PACK_HEADER_LEN];
        let n = file
            .read_at(&mut b, 0)
            .map_err(io_at("cannot read", &path))?;
        let corrupt = |reason: String| Error::PackCorrupt {
            pack: number,
            offset: 0,
            reason,
        };
        let h = PackHeader::decode(&b[..n]).map_err(corrupt)?;
        if h.vault_id != self.vault_id {
            return Err(corrupt("the pack belongs to another vault".into()));
        }
        if h.number != number {
            return Err(corrupt(format!("the header says pack {}", h.number)));
        }
        Ok(lock(&self.handles).entry(number).or_insert(file).clone())
    }

    /// The stored bytes of the frame `r` points at, unauthenticated.
    fn read_frame(&self, r: &SegmentRef) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; r.stored_len as usize];
        self.read_frame_into(r, &mut buf)?;
        Ok(buf)
    }

    /// Read the stored bytes of the frame `r` points at, unauthenticated,
    /// into `buf` (exactly `r.stored_len` bytes).
    fn read_frame_into(&self, r: &SegmentRef, buf: &mut [u8]) -> Result<()> {
        let stored = r.stored_len as usize;
        if r.plain_len == 0
            || r.plain_len as usize > MAX_PLAIN_LEN
            || !(PACK_FRAME_OVERHEAD..=MAX_PLAIN_LEN + PACK_FRAME_OVERHEAD).contains(&stored)
            || r.offset < PACK_HEADER_LEN as u64
        {
            return Err(Error::InvalidParams(format!(
                "invalid segment reference {r:?}"
            )));
        }
        debug_assert_eq!(buf.len(), stored);
        if let Some(frame) = self.overlaid(r) {
            buf.copy_from_slice(&frame);
            return Ok(());
        }
        let file = self.handle(r.pack)?;
        let n = file
            .read_at(buf, r.offset)
            .map_err(io_at("cannot read", &self.path(r.pack)))?;
        if n < stored {
            return Err(Error::PackCorrupt {
                pack: r.pack,
                offset: r.offset,
                reason: format!("the pack ends {n} bytes into this {stored}-byte frame"),
            });
        }
        Ok(())
    }

    /// Read, authenticate and decode segment `index` of a file.
    pub fn read_segment(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        index: u64,
        r: &SegmentRef,
    ) -> Result<Vec<u8>> {
        let frame = self.read_frame(r)?;
        open_pack_frame(
            key,
            &self.vault_id,
            file_id,
            index,
            r,
            self.opts.layout,
            frame,
        )
    }

    /// Read several segments of one file (in parallel when worth it).
    pub fn read_segments(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        segments: &[(u64, SegmentRef)],
    ) -> Result<Vec<Vec<u8>>> {
        let bytes = segments.iter().map(|(_, r)| r.plain_len as usize).sum();
        let mut jobs: Vec<(u64, SegmentRef, Vec<u8>)> =
            segments.iter().map(|&(i, r)| (i, r, Vec::new())).collect();
        for_each_split(
            threads_for(segments.len(), bytes),
            &mut jobs,
            |(i, r, out)| {
                *out = self.read_segment(key, file_id, *i, r)?;
                Ok(())
            },
        )?;
        Ok(jobs.into_iter().map(|(_, _, out)| out).collect())
    }

    /// Copy a frame's bytes unchanged into the active pack (pack compaction:
    /// the AAD does not bind the pack or offset, so no re-encryption). The
    /// frame is not authenticated here.
    pub fn copy_frame(&self, r: &SegmentRef) -> Result<SegmentRef> {
        if let Some(e) = &lock(&self.inner).failed {
            return Err(Error::PacksFailed(e.clone()));
        }
        let frame = self.read_frame(r)?;
        let placed = self.append(&frame, &[frame.len()], false, None)?;
        Ok(SegmentRef {
            pack: placed[0].0,
            offset: placed[0].1,
            ..*r
        })
    }

    /// Punch `ranges` (offset, length) of pack `number` (dead frames: see
    /// `vault::reclaim`); they read as zeros after. Returns the bytes
    /// punched; a range that cannot be punched (no hole punching on this
    /// file system, the pack gone, an I/O error) is left as it is. Never
    /// touches the header or anything past the pack's end.
    pub fn punch_ranges(&self, number: u64, ranges: &[(u64, u64)]) -> u64 {
        let Ok(file) = self.handle(number) else {
            return 0;
        };
        let mut punched = 0;
        for &(offset, len) in ranges {
            if offset < PACK_HEADER_LEN as u64 {
                continue;
            }
            match file.punch_hole(offset, len) {
                Ok(()) => punched += len,
                Err(e) if e.kind() == io::ErrorKind::Unsupported => break,
                Err(_) => {}
            }
        }
        punched
    }

    /// Numbers of the packs in the directory, ascending.
    pub fn pack_numbers(&self) -> Result<Vec<u64>> {
        list_packs(&*self.fs, &self.dir)
    }

    /// Length in bytes of pack `number` (header included).
    pub fn pack_len(&self, number: u64) -> Result<u64> {
        let path = self.path(number);
        let cached = lock(&self.handles).get(&number).cloned();
        let file = match cached {
            Some(f) => f,
            None => match self.fs.open(&path) {
                Ok(f) => Arc::from(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::PackMissing { pack: number })
                }
                Err(e) => return Err(io_at("cannot open", &path)(e)),
            },
        };
        let len = file.len().map_err(io_at("cannot read", &path))?;
        Ok(len.max(self.overlay_end(number)))
    }

    /// Number of the pack being appended to, if this store has written one.
    pub fn active_pack(&self) -> Option<u64> {
        lock(&self.inner).active.as_ref().map(|a| a.number)
    }

    /// Delete pack `number` durably (remove + directory sync). The caller
    /// first makes durable the records that moved its live frames. The
    /// active pack cannot be deleted. An error here does not stop writes: at
    /// worst the pack reappears after a crash, as dead space.
    pub fn delete_pack(&self, number: u64) -> Result<()> {
        let handle = {
            let mut inner = lock(&self.inner);
            if inner.active.as_ref().map(|a| a.number) == Some(number) {
                return Err(Error::InvalidParams(format!(
                    "pack {} is being written to and cannot be deleted",
                    pack_file_name(number)
                )));
            }
            inner.unsynced.retain(|(n, _)| *n != number);
            lock(&self.handles).remove(&number)
        };
        // Closing, removing and syncing the directory happen without the
        // lock appends take: freeing a pack's pages (or a directory sync on
        // a disk) must not hold up writers.
        drop(handle);
        let path = self.path(number);
        match self.fs.remove(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::PackMissing { pack: number })
            }
            Err(e) => return Err(io_at("cannot remove", &path)(e)),
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_at("cannot sync", &self.dir))
    }
}

#[cfg(test)]
mod tests;
