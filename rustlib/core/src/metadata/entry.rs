//! `UnifiedEntry`: what a log record says, and its byte encoding (FORMAT.md §9).
//!
//! Every change of the vault's metadata is one entry; applying the entries in
//! order (`metadata::MetadataState::apply`) rebuilds the state, live,
//! at bootstrap and in fsck alike.
//!
//! Encoding: one tag byte, then the fields in order, little-endian; names,
//! symlink targets and xattr values as u32 length ‖ bytes; an optional field
//! as a presence byte (0/1) then the value. A decoder refuses trailing bytes,
//! unknown tags and lengths past the end, and never panics.

use super::carried::Carried;
use super::codec::{bad, Reader, Writer};
use super::inode::{AttrChange, InodeKind, Timespec};
use super::segment::SegmentRef;
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnifiedEntry {
    /// A new inode (not yet linked anywhere; `Link` names it).
    CreateInode {
        ino: u64,
        kind: InodeKind,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        time: Timespec,
        /// Random id salting the content key and bound into every frame's AAD.
        file_id: [u8; 16],
        /// Symlink target (empty for other kinds).
        target: Vec<u8>,
    },
    /// `parent/name` → `ino` (fails if the name exists).
    Link {
        parent: u64,
        name: Vec<u8>,
        ino: u64,
        time: Timespec,
    },
    /// Remove `parent/name`; the inode lives on while links or handles remain.
    Unlink {
        parent: u64,
        name: Vec<u8>,
        time: Timespec,
    },
    /// Move `parent/name` to `new_parent/new_name`, replacing what is there
    /// (an empty directory if the source is a directory), or swap both names.
    Rename {
        parent: u64,
        name: Vec<u8>,
        new_parent: u64,
        new_name: Vec<u8>,
        exchange: bool,
        time: Timespec,
    },
    SetAttr {
        ino: u64,
        change: AttrChange,
    },
    SetXattr {
        ino: u64,
        name: Vec<u8>,
        value: Vec<u8>,
    },
    RemoveXattr {
        ino: u64,
        name: Vec<u8>,
    },
    /// The `Encrypt` checkpoint of a write: new frames of a file's segments
    /// (already durable in packs) and the file's size after the write.
    WriteSegments {
        ino: u64,
        size: u64,
        mtime: Timespec,
        segments: Vec<(u64, SegmentRef)>,
    },
    /// (Format 2.) A `WriteSegments` that carries those of its frames
    /// that were not yet durable in their packs when the record was
    /// written: what an fsync writes when it makes the log durable and not
    /// the packs (one device flush instead of two; `vault::carry`).
    /// `carried[i]` is what segment i's item carries: nothing (durable),
    /// the frame's stored bytes, or a patch to seal it from (tag 17 without
    /// patches, tag 18 with; `super::carried`). Applies to the state as
    /// `WriteSegments` does; the frames are restored into their packs when
    /// the log is read after a crash (FORMAT.md §9.2).
    WriteSegmentsCarried {
        ino: u64,
        size: u64,
        mtime: Timespec,
        segments: Vec<(u64, SegmentRef)>,
        carried: Vec<Carried>,
    },
    /// An inode with no links and no open handle is gone.
    Forget {
        ino: u64,
    },
    /// A compaction cycle finished (the scheduler's bookkeeping).
    Scheduler {
        cycle: u64,
        time: Timespec,
    },
    /// Snapshot `number` holds the state after record `covers_seq`; the log
    /// files before this record were deleted. The log's snapshot marker,
    /// named as on disk (tag 11, FORMAT.md §9.2): not a stream's resume
    /// checkpoint ([`crate::recovery::checkpoint`]).
    SnapshotCheckpoint {
        number: u64,
        covers_seq: u64,
    },
    /// Pack compaction moved frames unchanged (same generation) to new
    /// places: (inode, segment index, where it was, where it is now). A move
    /// whose segment was rewritten meanwhile is ignored.
    MoveSegments {
        moves: Vec<(u64, u64, SegmentRef, SegmentRef)>,
    },
    /// A pack with no live frame left was deleted.
    PackDeleted {
        pack: u64,
    },
    /// (Format 2.) The session that wrote it closed the vault cleanly
    /// after it: the last record of a vault that was not cut or crashed.
    Close {
        time: Timespec,
    },
    /// (Format 2.) Generations up to `up_to` may be in frames from now on:
    /// written (and made durable) before any frame carries one, so that a
    /// session after a crash starts above every generation a frame may
    /// have, committed or not (FORMAT.md §9.3).
    ReserveGenerations {
        up_to: u64,
    },
    /// (Format 2.) Progress of a check of every frame (fsck) that an
    /// interrupted run resumes from: run `run` verifies `total` frames in
    /// a fixed order; the first `done` are verified, and `damaged` lists
    /// the (inode, segment index) of those that did not read.
    DecryptCheckpoint {
        run: [u8; 16],
        total: u64,
        done: u64,
        damaged: Vec<(u64, u64)>,
    },
}

impl UnifiedEntry {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            UnifiedEntry::CreateInode {
                ino,
                kind,
                mode,
                uid,
                gid,
                rdev,
                time,
                file_id,
                target,
            } => {
                w.u8(1);
                w.u64(*ino);
                w.u8(kind.id());
                w.u32(*mode);
                w.u32(*uid);
                w.u32(*gid);
                w.u64(*rdev);
                w.time(*time);
                w.raw(file_id);
                w.bytes(target);
            }
            UnifiedEntry::Link {
                parent,
                name,
                ino,
                time,
            } => {
                w.u8(2);
                w.u64(*parent);
                w.bytes(name);
                w.u64(*ino);
                w.time(*time);
            }
            UnifiedEntry::Unlink { parent, name, time } => {
                w.u8(3);
                w.u64(*parent);
                w.bytes(name);
                w.time(*time);
            }
            UnifiedEntry::Rename {
                parent,
                name,
                new_parent,
                new_name,
                exchange,
                time,
            } => {
                w.u8(4);
                w.u64(*parent);
                w.bytes(name);
                w.u64(*new_parent);
                w.bytes(new_name);
                w.u8(*exchange as u8);
                w.time(*time);
            }
            UnifiedEntry::SetAttr { ino, change } => {
                w.u8(5);
                w.u64(*ino);
                w.opt_u32(change.mode);
                w.opt_u32(change.uid);
                w.opt_u32(change.gid);
                w.opt_u64(change.size);
                w.opt_time(change.atime);
                w.opt_time(change.mtime);
                w.opt_time(change.ctime);
            }
            UnifiedEntry::SetXattr { ino, name, value } => {
                w.u8(6);
                w.u64(*ino);
                w.bytes(name);
                w.bytes(value);
            }
            UnifiedEntry::RemoveXattr { ino, name } => {
                w.u8(7);
                w.u64(*ino);
                w.bytes(name);
            }
            UnifiedEntry::WriteSegments {
                ino,
                size,
                mtime,
                segments,
            } => {
                write_head(&mut w, 8, *ino, *size, *mtime, segments.len());
                for (index, r) in segments {
                    w.u64(*index);
                    w.seg(r);
                }
            }
            UnifiedEntry::WriteSegmentsCarried {
                ino,
                size,
                mtime,
                segments,
                carried,
            } => {
                let tag = Carried::tag_for(carried);
                write_head(&mut w, tag, *ino, *size, *mtime, segments.len());
                for ((index, r), c) in segments.iter().zip(carried) {
                    w.u64(*index);
                    w.seg(r);
                    c.encode(tag, &mut w);
                }
            }
            UnifiedEntry::Forget { ino } => {
                w.u8(9);
                w.u64(*ino);
            }
            UnifiedEntry::Scheduler { cycle, time } => {
                w.u8(10);
                w.u64(*cycle);
                w.time(*time);
            }
            UnifiedEntry::SnapshotCheckpoint { number, covers_seq } => {
                w.u8(11);
                w.u64(*number);
                w.u64(*covers_seq);
            }
            UnifiedEntry::MoveSegments { moves } => {
                w.u8(12);
                w.u32(moves.len() as u32);
                for (ino, index, from, to) in moves {
                    w.u64(*ino);
                    w.u64(*index);
                    w.seg(from);
                    w.seg(to);
                }
            }
            UnifiedEntry::PackDeleted { pack } => {
                w.u8(13);
                w.u64(*pack);
            }
            UnifiedEntry::Close { time } => {
                w.u8(14);
                w.time(*time);
            }
            UnifiedEntry::ReserveGenerations { up_to } => {
                w.u8(15);
                w.u64(*up_to);
            }
            UnifiedEntry::DecryptCheckpoint {
                run,
                total,
                done,
                damaged,
            } => {
                w.u8(16);
                w.raw(run);
                w.u64(*total);
                w.u64(*done);
                w.u32(damaged.len() as u32);
                for (ino, index) in damaged {
                    w.u64(*ino);
                    w.u64(*index);
                }
            }
        }
        w.finish()
    }

    pub fn decode(b: &[u8]) -> Result<UnifiedEntry> {
        let mut r = Reader::new(b);
        let e = match r.u8()? {
            1 => {
                let ino = r.u64()?;
                let kind = InodeKind::from_id(r.u8()?).ok_or_else(|| bad("unknown inode kind"))?;
                let (mode, uid, gid, rdev, time) =
                    (r.u32()?, r.u32()?, r.u32()?, r.u64()?, r.time()?);
                let file_id: [u8; 16] = r.take(16)?.try_into().expect("16");
                UnifiedEntry::CreateInode {
                    ino,
                    kind,
                    mode,
                    uid,
                    gid,
                    rdev,
                    time,
                    file_id,
                    target: r.bytes()?,
                }
            }
            2 => UnifiedEntry::Link {
                parent: r.u64()?,
                name: r.bytes()?,
                ino: r.u64()?,
                time: r.time()?,
            },
            3 => UnifiedEntry::Unlink {
                parent: r.u64()?,
                name: r.bytes()?,
                time: r.time()?,
            },
            4 => UnifiedEntry::Rename {
                parent: r.u64()?,
                name: r.bytes()?,
                new_parent: r.u64()?,
                new_name: r.bytes()?,
                exchange: r.present()?,
                time: r.time()?,
            },
            5 => UnifiedEntry::SetAttr {
                ino: r.u64()?,
                change: AttrChange {
                    mode: r.opt_u32()?,
                    uid: r.opt_u32()?,
                    gid: r.opt_u32()?,
                    size: r.opt_u64()?,
                    atime: r.opt_time()?,
                    mtime: r.opt_time()?,
                    ctime: r.opt_time()?,
                },
            },
            6 => UnifiedEntry::SetXattr {
                ino: r.u64()?,
                name: r.bytes()?,
                value: r.bytes()?,
            },
            7 => UnifiedEntry::RemoveXattr {
                ino: r.u64()?,
                name: r.bytes()?,
            },
            8 => {
                let (ino, size, mtime) = (r.u64()?, r.u64()?, r.time()?);
                let n = r.u32()? as usize;
                // Each segment takes 40 bytes: refuse counts the input cannot hold.
                if n > r.remaining() / 40 {
                    return Err(bad("segment count past the end"));
                }
                let mut segments = Vec::with_capacity(n);
                for _ in 0..n {
                    segments.push((r.u64()?, r.seg()?));
                }
                UnifiedEntry::WriteSegments {
                    ino,
                    size,
                    mtime,
                    segments,
                }
            }
            9 => UnifiedEntry::Forget { ino: r.u64()? },
            10 => UnifiedEntry::Scheduler {
                cycle: r.u64()?,
                time: r.time()?,
            },
            11 => UnifiedEntry::SnapshotCheckpoint {
                number: r.u64()?,
                covers_seq: r.u64()?,
            },
            12 => {
                let n = r.u32()? as usize;
                // Each move takes 80 bytes: refuse counts the input cannot hold.
                if n > r.remaining() / 80 {
                    return Err(bad("move count past the end"));
                }
                let mut moves = Vec::with_capacity(n);
                for _ in 0..n {
                    moves.push((r.u64()?, r.u64()?, r.seg()?, r.seg()?));
                }
                UnifiedEntry::MoveSegments { moves }
            }
            13 => UnifiedEntry::PackDeleted { pack: r.u64()? },
            14 => UnifiedEntry::Close { time: r.time()? },
            15 => UnifiedEntry::ReserveGenerations { up_to: r.u64()? },
            16 => {
                let run: [u8; 16] = r.take(16)?.try_into().expect("16");
                let (total, done) = (r.u64()?, r.u64()?);
                let n = r.u32()? as usize;
                if n > r.remaining() / 16 {
                    return Err(bad("damaged count past the end"));
                }
                let mut damaged = Vec::with_capacity(n);
                for _ in 0..n {
                    damaged.push((r.u64()?, r.u64()?));
                }
                UnifiedEntry::DecryptCheckpoint {
                    run,
                    total,
                    done,
                    damaged,
                }
            }
            tag @ (17 | 18) => {
                let (ino, size, mtime) = (r.u64()?, r.u64()?, r.time()?);
                let n = r.u32()? as usize;
                // Each item takes at least 44 bytes (17) or 41 (18).
                let least = 40 + if tag == 17 { 4 } else { Carried::MIN_ITEM_LEN };
                if n > r.remaining() / least {
                    return Err(bad("segment count past the end"));
                }
                let (mut segments, mut carried) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for _ in 0..n {
                    let (index, seg) = (r.u64()?, r.seg()?);
                    carried.push(Carried::decode(tag, &mut r, &seg)?);
                    segments.push((index, seg));
                }
                UnifiedEntry::WriteSegmentsCarried {
                    ino,
                    size,
                    mtime,
                    segments,
                    carried,
                }
            }
            t => return Err(bad(&format!("unknown tag {t}"))),
        };
        r.finish()?;
        Ok(e)
    }
}

/// The fields WriteSegments (tag 8) and WriteSegmentsCarried (tag 17)
/// begin with: tag, ino, size, mtime, segment count.
fn write_head(w: &mut Writer, tag: u8, ino: u64, size: u64, mtime: Timespec, count: usize) {
    w.u8(tag);
    w.u64(ino);
    w.u64(size);
    w.time(mtime);
    w.u32(count as u32);
}

#[cfg(test)]
mod tests;
