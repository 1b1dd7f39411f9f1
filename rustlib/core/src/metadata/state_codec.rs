//! The snapshot's state encoding (FORMAT.md §9.5): the whole
//! [`MetadataState`] as bytes, in number order so equal states give equal
//! bytes. The snapshot file around it (prefix, sealing) is `crate::snapshot`.
//! Version 2 (snapshots of format 2 vaults) adds two counters after the
//! generation high: the generation reserved and the legacy generation high
//! (see [`MetadataState`]); version 1 has neither (read as: reserved = the
//! generation high, every frame of format 1).

use std::sync::Arc;

use imbl::OrdMap;

use super::codec::{bad, Reader, Writer};
use super::inode::InodeKind;
use super::segment::SegmentMap;
use super::state::{Inode, MetadataState, PackUsage};
use crate::error::Result;

/// Encode the state; inodes, entries and packs in number order, so equal
/// states give equal bytes. Meant to run on a copy of the state taken under
/// the engine's lock (O(1), see `metadata`), without the lock.
pub fn encode_state(s: &MetadataState) -> Vec<u8> {
    encode_state_version(s, 2)
}

/// [`encode_state`] in layout `version` (1 or 2; version 1 for tests and
/// fixtures of format 1 only).
pub fn encode_state_version(s: &MetadataState, version: u8) -> Vec<u8> {
    // Sized up front (about 128 bytes an inode with its entry): growing a
    // buffer of hundreds of MiB by doubling remaps it each time, and a
    // remap stops every other thread's page faults and mappings meanwhile.
    let mut w = Writer::with_capacity(s.inodes.len() * 128 + 4096);
    w.u32(s.segment_size);
    w.u64(s.next_ino);
    w.u64(s.scheduler_cycles);
    w.u64(s.generation_high);
    if version >= 2 {
        w.u64(s.generation_reserved);
        w.u64(s.legacy_generation_high);
    }
    // Sorted with their inodes: one pass over the map, no lookup per inode.
    let mut inodes: Vec<(u64, &Inode)> = s.inodes.iter().map(|(n, i)| (*n, &**i)).collect();
    inodes.sort_unstable_by_key(|(n, _)| *n);
    w.u64(inodes.len() as u64);
    for (ino, i) in inodes {
        w.u64(ino);
        w.u8(i.kind.id());
        w.u32(i.mode);
        w.u32(i.uid);
        w.u32(i.gid);
        w.u64(i.rdev);
        w.u64(i.size);
        w.u32(i.links);
        w.time(i.atime);
        w.time(i.mtime);
        w.time(i.ctime);
        w.raw(&i.file_id);
        w.bytes(&i.target);
        w.u64(i.parent);
        w.u32(i.xattrs.len() as u32);
        for (k, v) in &i.xattrs {
            w.bytes(k);
            w.bytes(v);
        }
        w.u64(i.segments.len() as u64);
        for (index, r) in &i.segments {
            w.u64(*index);
            w.seg(r);
        }
    }
    let mut dirs: Vec<_> = s.dirs.iter().collect();
    dirs.sort_unstable_by_key(|(d, _)| **d);
    w.u64(dirs.len() as u64);
    for (d, entries) in dirs {
        w.u64(*d);
        w.u64(entries.len() as u64);
        for (name, child) in entries.iter() {
            w.bytes(name);
            w.u64(child);
        }
    }
    w.u64(s.packs.len() as u64);
    for (p, u) in &s.packs {
        w.u64(*p);
        w.u64(u.live);
        w.u64(u.dead);
    }
    w.finish()
}

/// Decode a state of layout `version` (1 or 2); every count is checked
/// against the bytes left.
pub fn decode_state(b: &[u8], version: u8) -> Result<MetadataState> {
    let mut r = Reader::new(b);
    let count = |r: &mut Reader<'_>, min_item: usize| -> Result<usize> {
        let n = r.u64()? as usize;
        if n > r.remaining() / min_item.max(1) {
            return Err(bad("count past the end"));
        }
        Ok(n)
    };
    let segment_size = r.u32()?;
    if segment_size == 0 {
        return Err(bad("segment size 0"));
    }
    let next_ino = r.u64()?;
    let scheduler_cycles = r.u64()?;
    let generation_high = r.u64()?;
    let (reserved, legacy) = match version {
        1 => (generation_high, u64::MAX),
        _ => (r.u64()?, r.u64()?),
    };
    let n = count(&mut r, 90)?;
    let mut inodes = Vec::with_capacity(n);
    for _ in 0..n {
        let ino = r.u64()?;
        let kind = InodeKind::from_id(r.u8()?).ok_or_else(|| bad("unknown inode kind"))?;
        let (mode, uid, gid, rdev, size, links) =
            (r.u32()?, r.u32()?, r.u32()?, r.u64()?, r.u64()?, r.u32()?);
        let (atime, mtime, ctime) = (r.time()?, r.time()?, r.time()?);
        let file_id: [u8; 16] = r.take(16)?.try_into().expect("16");
        let target = r.bytes()?;
        let parent = r.u64()?;
        let mut xattrs = OrdMap::new();
        let nx = r.u32()? as usize;
        if nx > r.remaining() / 8 {
            return Err(bad("count past the end"));
        }
        for _ in 0..nx {
            let k = r.bytes()?;
            xattrs.insert(k, r.bytes()?);
        }
        let mut segments = SegmentMap::new();
        for _ in 0..count(&mut r, 40)? {
            let index = r.u64()?;
            segments.insert(index, r.seg()?);
        }
        let inode = Inode {
            kind,
            mode,
            uid,
            gid,
            rdev,
            size,
            links,
            atime,
            mtime,
            ctime,
            file_id,
            target,
            xattrs,
            segments,
            parent,
            stored: 0, // derived, computed by from_parts
        };
        inodes.push((ino, Arc::new(inode))); // from_parts refuses an inode twice
    }
    let mut dirs = Vec::new();
    for _ in 0..count(&mut r, 16)? {
        let d = r.u64()?;
        let n = count(&mut r, 12)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            // Straight into the form a directory keeps its names in.
            let name: Arc<[u8]> = r.slice()?.into();
            entries.push((name, r.u64()?));
        }
        dirs.push((d, entries));
    }
    let mut packs = OrdMap::new();
    for _ in 0..count(&mut r, 24)? {
        let p = r.u64()?;
        packs.insert(
            p,
            PackUsage {
                live: r.u64()?,
                dead: r.u64()?,
            },
        );
    }
    r.finish()?;
    MetadataState::from_parts(
        segment_size,
        inodes,
        dirs,
        packs,
        next_ino,
        scheduler_cycles,
        generation_high,
    )
    .map(|mut s| {
        s.generation_reserved = reserved;
        s.legacy_generation_high = legacy;
        s
    })
    .map_err(|e| bad(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{UnifiedEntry, ROOT_INO};

    const T: crate::metadata::Timespec = crate::metadata::Timespec { sec: 1, nsec: 0 };

    fn create(s: &mut MetadataState, parent: u64, name: &str, ino: u64, kind: InodeKind) {
        for e in [
            UnifiedEntry::CreateInode {
                ino,
                kind,
                mode: 0o755,
                uid: 0,
                gid: 0,
                rdev: 0,
                time: T,
                file_id: [ino as u8; 16],
                target: vec![],
            },
            UnifiedEntry::Link {
                parent,
                name: name.as_bytes().to_vec(),
                ino,
                time: T,
            },
        ] {
            s.apply(&e).unwrap();
        }
    }

    /// Directories holding files and subdirectories, by inode numbers that
    /// do not follow the names' order.
    fn tree() -> MetadataState {
        let mut s = MetadataState::new(65536, 0o755, 0, 0, T);
        create(&mut s, ROOT_INO, "b", 9, InodeKind::Dir);
        create(&mut s, ROOT_INO, "a", 3, InodeKind::File);
        create(&mut s, 9, "z", 4, InodeKind::Dir);
        create(&mut s, 9, "y", 7, InodeKind::Dir);
        create(&mut s, 9, "x", 5, InodeKind::File);
        s.next_ino = 10;
        s
    }

    #[test]
    fn decoded_directories_know_which_entries_are_directories() {
        let s = tree();
        let back = decode_state(&encode_state(&s), 2).unwrap();
        assert_eq!(back, s);
        // Subdirectory counts (derived at decode, from each entry's kind).
        assert_eq!(back.nlink(ROOT_INO), 3);
        assert_eq!(back.nlink(9), 4);
        assert_eq!(back.nlink(4), 2);
        assert_eq!(back.dirs[&9].subdirs(), 2);
        assert_eq!(back.lookup(9, b"y").unwrap(), 7);
    }

    #[test]
    fn an_entry_naming_a_missing_inode_is_refused() {
        let mut s = tree();
        s.inodes.remove(&5); // "x" in directory 9
        let err = decode_state(&encode_state(&s), 2).unwrap_err().to_string();
        assert!(err.contains("directory 9 names missing inode 5"), "{err}");
    }

    /// Past `PARALLEL_BUILD_MIN` inodes the inode map is built on a thread
    /// of its own: the same state, and the same refusals.
    #[test]
    fn a_big_state_is_built_the_same_on_two_threads() {
        let mut s = tree();
        for k in 0..25_000u64 {
            let kind = if k % 10 == 0 {
                InodeKind::Dir
            } else {
                InodeKind::File
            };
            create(&mut s, 9, &format!("n{k:05}"), 100 + k, kind);
        }
        s.next_ino = 100 + 25_000;
        let bytes = encode_state(&s);
        let back = decode_state(&bytes, 2).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.nlink(9), 4 + 2_500);
        let mut missing = s.clone();
        missing.inodes.remove(&(100 + 24_990));
        let err = decode_state(&encode_state(&missing), 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("directory 9 names missing inode 25090"),
            "{err}"
        );
        let twice: Vec<_> = s.inodes.iter().map(|(n, i)| (*n, Arc::clone(i))).collect();
        let twice = [twice.clone(), twice].concat();
        let no_dirs: Listing = vec![];
        let err = MetadataState::from_parts(65536, twice, no_dirs, OrdMap::new(), 10, 0, 0);
        assert!(err.unwrap_err().ends_with("twice"));
    }

    type Listing = Vec<(u64, Vec<(Vec<u8>, u64)>)>;

    #[test]
    fn parts_in_any_order_give_the_same_state() {
        let s = tree();
        let mut inodes: Vec<_> = s.inodes.iter().map(|(n, i)| (*n, Arc::clone(i))).collect();
        inodes.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n));
        let dirs = |s: &MetadataState| -> Listing {
            s.dirs
                .iter()
                .map(|(d, e)| (*d, e.iter().map(|(n, i)| (n.to_vec(), i)).collect()))
                .collect()
        };
        let from = |inodes: Vec<(u64, Arc<Inode>)>, dirs| {
            MetadataState::from_parts(65536, inodes, dirs, OrdMap::new(), 10, 0, 0)
        };
        let back = from(inodes.clone(), dirs(&s)).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.nlink(9), 4);
        inodes.retain(|(n, _)| *n != 7);
        let err = from(inodes, dirs(&s)).unwrap_err();
        assert_eq!(err, "directory 9 names missing inode 7");
    }
}
