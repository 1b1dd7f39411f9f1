//! The metadata state machine: inodes, directory entries, each file's
//! segment map and pack accounting, changed only by [`MetadataState::apply`].
//!
//! Live operations, bootstrap (log replay) and fsck all go through `apply`,
//! so they cannot disagree about what an entry means. `apply` checks an
//! entry's preconditions and refuses it (with the errno the FUSE layer
//! returns) without changing anything.
//!
//! Truncation drops the segments that start at or past the new size; the
//! engine rewrites a segment cut in the middle, so bytes past the size read
//! as zeros if the file grows again.
//!
//! Some fields are derived (not in snapshots, recomputed when one is
//! loaded, maintained by `apply`): each directory entry's readdir cookie and
//! each directory's count of subdirectories ([`Dir`]), each inode's stored
//! bytes, and the vault's total of stored bytes. Cookies depend on the order
//! entries were inserted in, so they are not part of a state's equality and
//! need not survive a remount.
//!
//! The state is made of persistent maps (`imbl`): cloning it is O(1) and
//! shares every node, and a change after a clone copies only the nodes on
//! its path (O(log n)), not a whole map, directory or segment map. So a
//! compaction takes a consistent copy under the engine's lock in
//! microseconds and writes the snapshot, or scans the segment maps, from it
//! without the lock (issue 3: compaction must not stall readers and
//! writers). Inodes sit behind an `Arc` so that unsharing one after a clone
//! copies one inode, and the map nodes on its path hold only pointers.

use std::sync::Arc;

use imbl::{HashMap, OrdMap};

use super::dir::{Dir, NamedEntries};
use super::entry::UnifiedEntry;
use super::inode::{AttrChange, InodeKind, Timespec};
use super::segment::{SegmentMap, SegmentRef};
use crate::error::errno::*;
use crate::error::{fs_err, Result};

pub const ROOT_INO: u64 = 1;
pub const NAME_MAX: usize = 255;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    pub kind: InodeKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    /// Directory entries naming this inode (a directory's "." and ".." are
    /// not counted here; `nlink()` adds them).
    pub links: u32,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    pub file_id: [u8; 16],
    pub target: Vec<u8>,
    pub xattrs: OrdMap<Vec<u8>, Vec<u8>>,
    /// Segment index → where its current frame is.
    pub segments: SegmentMap,
    /// For a directory: its parent (the root is its own parent).
    pub parent: u64,
    /// Plaintext bytes of the segments in `segments` (derived).
    pub stored: u64,
}

impl Inode {
    /// Refuse anything but a regular file, as the kernel expects: EISDIR
    /// for a directory, EINVAL for the other kinds.
    pub fn require_file(&self, what: &str) -> Result<()> {
        match self.kind {
            InodeKind::File => Ok(()),
            InodeKind::Dir => Err(fs_err(EISDIR, what.to_string())),
            _ => Err(fs_err(EINVAL, what.to_string())),
        }
    }
}

/// Live and dead bytes of a pack (dead = frames no segment map points at).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackUsage {
    pub live: u64,
    pub dead: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataState {
    pub segment_size: u32,
    /// Inode number → inode; change one with [`Arc::make_mut`] (it copies
    /// the inode only if a clone of the state still shares it).
    pub inodes: HashMap<u64, Arc<Inode>>,
    /// Directory inode → its entries.
    pub dirs: HashMap<u64, Dir>,
    pub packs: OrdMap<u64, PackUsage>,
    pub next_ino: u64,
    pub scheduler_cycles: u64,
    /// Highest segment generation ever written in this vault. Generations
    /// come from one vault-wide counter that never goes back (not even when
    /// truncation or deletion drops the segments), so a (file, index,
    /// generation) triple, bound into a frame's AAD, is never used twice and
    /// an old frame can never pass for a current one.
    pub generation_high: u64,
    /// (Format 2.) Generations up to this one may be in frames already
    /// (ReserveGenerations): a new session takes generations above it.
    pub generation_reserved: u64,
    /// Frames of a generation up to this one have format 1's layout (a
    /// nonce stored in the frame); above it format 2's (FORMAT.md §8.2).
    /// `u64::MAX` in a vault of format 1; at the upgrade to format 2, the
    /// generation high of that moment; 0 in a vault made at format 2.
    pub legacy_generation_high: u64,
    /// Plaintext bytes of every stored segment of every inode (derived).
    pub stored_bytes: u64,
}

/// From this many inodes on, [`MetadataState::from_parts`] builds the
/// inode map on a thread of its own beside the directories.
const PARALLEL_BUILD_MIN: usize = 20_000;

/// Inode `ino` for a change: copied first if a clone of the state shares it.
fn inode_mut<'a>(inodes: &'a mut HashMap<u64, Arc<Inode>>, ino: &u64) -> Option<&'a mut Inode> {
    inodes.get_mut(ino).map(Arc::make_mut)
}

/// A valid directory entry name: 1..=255 bytes, no '/' or NUL, not "." or "..".
fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(fs_err(ENAMETOOLONG, "name longer than 255 bytes"));
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(fs_err(EINVAL, "invalid name"));
    }
    Ok(())
}

impl MetadataState {
    /// An empty vault: the root directory only.
    pub fn new(segment_size: u32, root_mode: u32, uid: u32, gid: u32, time: Timespec) -> Self {
        let root = Inode {
            kind: InodeKind::Dir,
            mode: root_mode,
            uid,
            gid,
            rdev: 0,
            size: 0,
            links: 1,
            atime: time,
            mtime: time,
            ctime: time,
            file_id: [0; 16],
            target: Vec::new(),
            xattrs: OrdMap::new(),
            segments: SegmentMap::new(),
            parent: ROOT_INO,
            stored: 0,
        };
        MetadataState {
            segment_size,
            inodes: HashMap::unit(ROOT_INO, Arc::new(root)),
            dirs: HashMap::unit(ROOT_INO, Dir::default()),
            packs: OrdMap::new(),
            next_ino: ROOT_INO + 1,
            scheduler_cycles: 0,
            generation_high: 0,
            generation_reserved: 0,
            legacy_generation_high: 0,
            stored_bytes: 0,
        }
    }

    /// A state from its stored parts (a snapshot): inodes as (number,
    /// inode) pairs, directories as (name, inode) lists; the derived fields
    /// are computed here. Fails if an inode comes twice or an entry names a
    /// missing inode.
    pub fn from_parts<N: Into<Arc<[u8]>>>(
        segment_size: u32,
        inodes: impl IntoIterator<Item = (u64, Arc<Inode>)>,
        dirs: Vec<(u64, NamedEntries<N>)>,
        packs: OrdMap<u64, PackUsage>,
        next_ino: u64,
        scheduler_cycles: u64,
        generation_high: u64,
    ) -> std::result::Result<MetadataState, String> {
        let mut stored_bytes = 0u64;
        let mut list = Vec::new();
        // (number, is a directory) of every inode, for the entries' checks
        // below: a binary search in this array (sorted already when the
        // inodes come from a snapshot) costs a fraction of a lookup in the
        // persistent map, and a mount of a vault of 100,000 files makes one
        // per entry (issue 15: mount time).
        let mut kinds: Vec<(u64, bool)> = Vec::new();
        for (ino, mut i) in inodes {
            let inode = Arc::make_mut(&mut i); // not shared yet: no copy
            inode.stored = inode.segments.values().map(|r| r.plain_len as u64).sum();
            stored_bytes += inode.stored;
            kinds.push((ino, inode.kind == InodeKind::Dir));
            list.push((ino, i));
        }
        if !kinds.is_sorted_by_key(|(ino, _)| *ino) {
            kinds.sort_unstable_by_key(|(ino, _)| *ino);
        }
        let build_inodes = move || {
            let mut by_number = HashMap::new();
            for (ino, i) in list {
                if by_number.insert(ino, i).is_some() {
                    return Err(format!("inode {ino} twice"));
                }
            }
            Ok(by_number)
        };
        let build_dirs = || {
            let mut by_ino = HashMap::new();
            for (d, entries) in dirs {
                let dir = Dir::from_sorted(entries, |ino| {
                    match kinds.binary_search_by_key(&ino, |(n, _)| *n) {
                        Ok(at) => Ok(kinds[at].1),
                        Err(_) => Err(format!("directory {d} names missing inode {ino}")),
                    }
                })?;
                if by_ino.insert(d, dir).is_some() {
                    return Err(format!("directory {d} twice"));
                }
            }
            Ok(by_ino)
        };
        // The two maps of a big state are built side by side: each is
        // allocation and first touch for the most part (a mount of 100,000
        // files, issue 15).
        let (inodes, by_ino) = if kinds.len() >= PARALLEL_BUILD_MIN {
            std::thread::scope(|scope| {
                let inodes = scope.spawn(build_inodes);
                let dirs = build_dirs();
                let inodes = inodes
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (inodes, dirs)
            })
        } else {
            (build_inodes(), build_dirs())
        };
        let (inodes, by_ino) = (inodes?, by_ino?);
        Ok(MetadataState {
            segment_size,
            inodes,
            dirs: by_ino,
            packs,
            next_ino,
            scheduler_cycles,
            generation_high,
            generation_reserved: 0,
            legacy_generation_high: 0,
            stored_bytes,
        })
    }

    pub fn inode(&self, ino: u64) -> Result<&Inode> {
        self.inodes
            .get(&ino)
            .map(|i| &**i)
            .ok_or_else(|| fs_err(ENOENT, format!("no inode {ino}")))
    }

    /// Link count as stat reports it (a directory counts "." and its
    /// subdirectories' ".."; a removed one, still open or someone's current
    /// directory, counts nothing, as on ext4: its "." went with its name).
    pub fn nlink(&self, ino: u64) -> u32 {
        let Some(i) = self.inodes.get(&ino) else {
            return 0;
        };
        match self.dirs.get(&ino) {
            Some(_) if i.links == 0 && ino != ROOT_INO => 0,
            Some(entries) => i.links + 1 + entries.subdirs(),
            None => i.links,
        }
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<u64> {
        let entries = self.dir(parent)?;
        entries
            .get(name)
            .ok_or_else(|| fs_err(ENOENT, "no such entry"))
    }

    /// The entries of directory `ino` (ENOENT, ENOTDIR).
    pub fn dir(&self, ino: u64) -> Result<&Dir> {
        self.inode(ino)?;
        self.dirs
            .get(&ino)
            .ok_or_else(|| fs_err(ENOTDIR, format!("inode {ino} is not a directory")))
    }

    /// A directory that can receive a new entry: it still has a name.
    fn live_dir(&self, ino: u64) -> Result<&Dir> {
        let d = self.dir(ino)?;
        if ino != ROOT_INO && self.inodes[&ino].links == 0 {
            return Err(fs_err(ENOENT, format!("directory {ino} was removed")));
        }
        Ok(d)
    }

    /// `parent/name` can be created: a valid name, not taken, in a directory
    /// that still has a name (Link's first preconditions, for callers that
    /// must know before creating the inode).
    pub fn check_new_name(&self, parent: u64, name: &[u8]) -> Result<()> {
        check_name(name)?;
        if self.live_dir(parent)?.contains_key(name) {
            return Err(fs_err(EEXIST, "name exists"));
        }
        Ok(())
    }

    /// True if `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: u64, ancestor: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.inodes.get(&ino) {
                Some(i) if i.parent != ino && self.dirs.contains_key(&ino) => ino = i.parent,
                _ => return false,
            }
        }
    }

    fn touch_dir(&mut self, dir: u64, time: Timespec) {
        if let Some(d) = inode_mut(&mut self.inodes, &dir) {
            d.mtime = time;
            d.ctime = time;
        }
    }

    /// Account for segments no longer referenced (noted in `freed`); returns
    /// their plaintext bytes.
    fn drop_segments(
        packs: &mut OrdMap<u64, PackUsage>,
        freed: &mut Vec<SegmentRef>,
        refs: impl Iterator<Item = SegmentRef>,
    ) -> u64 {
        let mut plain = 0;
        for r in refs {
            freed.push(r);
            let u = packs.entry(r.pack).or_default();
            u.live = u.live.saturating_sub(r.stored_len as u64);
            u.dead += r.stored_len as u64;
            plain += r.plain_len as u64;
        }
        plain
    }

    /// Apply one entry, or refuse it and change nothing.
    pub fn apply(&mut self, e: &UnifiedEntry) -> Result<()> {
        self.apply_freeing(e).map(drop)
    }

    /// [`apply`](Self::apply), returning the frames the entry left without
    /// a reference: segments overwritten, truncated away or of a forgotten
    /// inode (the engine punches them once the entry is durable). Not the
    /// frames a `MoveSegments` moved out of a pack: compaction deletes
    /// their pack whole.
    pub fn apply_freeing(&mut self, e: &UnifiedEntry) -> Result<Vec<SegmentRef>> {
        let mut freed = Vec::new();
        self.apply_into(e, &mut freed)?;
        Ok(freed)
    }

    fn apply_into(&mut self, e: &UnifiedEntry, freed: &mut Vec<SegmentRef>) -> Result<()> {
        match e {
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
                if *ino == 0 || *ino == u64::MAX {
                    return Err(fs_err(EINVAL, format!("inode number {ino}")));
                }
                if self.inodes.contains_key(ino) {
                    return Err(fs_err(EEXIST, format!("inode {ino} exists")));
                }
                let parent = if *kind == InodeKind::Dir { 0 } else { *ino };
                self.inodes.insert(
                    *ino,
                    Arc::new(Inode {
                        kind: *kind,
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                        rdev: *rdev,
                        size: if *kind == InodeKind::Symlink {
                            target.len() as u64
                        } else {
                            0
                        },
                        links: 0,
                        atime: *time,
                        mtime: *time,
                        ctime: *time,
                        file_id: *file_id,
                        target: target.clone(),
                        xattrs: OrdMap::new(),
                        segments: SegmentMap::new(),
                        parent,
                        stored: 0,
                    }),
                );
                if *kind == InodeKind::Dir {
                    self.dirs.insert(*ino, Dir::default());
                }
                self.next_ino = self.next_ino.max(ino + 1);
            }
            UnifiedEntry::Link {
                parent,
                name,
                ino,
                time,
            } => {
                self.check_new_name(*parent, name)?;
                let target = self.inode(*ino)?;
                if target.kind == InodeKind::Dir && target.links > 0 {
                    return Err(fs_err(EISDIR, "a directory has one name"));
                }
                if target.kind == InodeKind::Dir && self.is_within(*parent, *ino) {
                    return Err(fs_err(EINVAL, "a directory cannot contain itself"));
                }
                let is_dir = target.kind == InodeKind::Dir;
                self.dirs
                    .get_mut(parent)
                    .expect("checked")
                    .insert(name, *ino, is_dir);
                let t = inode_mut(&mut self.inodes, ino).expect("checked");
                t.links += 1;
                t.ctime = *time;
                if t.kind == InodeKind::Dir {
                    t.parent = *parent;
                }
                self.touch_dir(*parent, *time);
            }
            UnifiedEntry::Unlink { parent, name, time } => {
                let ino = self.lookup(*parent, name)?;
                if self.dirs.get(&ino).is_some_and(|d| !d.is_empty()) {
                    return Err(fs_err(ENOTEMPTY, "directory not empty"));
                }
                self.dirs.get_mut(parent).expect("checked").remove(name);
                let t = inode_mut(&mut self.inodes, &ino).expect("linked inode exists");
                t.links -= 1;
                t.ctime = *time;
                self.touch_dir(*parent, *time);
            }
            UnifiedEntry::Rename {
                parent,
                name,
                new_parent,
                new_name,
                exchange,
                time,
            } => {
                check_name(new_name)?;
                let src = self.lookup(*parent, name)?;
                self.live_dir(*new_parent)?;
                let dst = self.dirs[new_parent].get(new_name);
                let src_dir = self.dirs.contains_key(&src);
                if src_dir && self.is_within(*new_parent, src) {
                    return Err(fs_err(EINVAL, "cannot move a directory into itself"));
                }
                if *exchange {
                    let dst = dst.ok_or_else(|| fs_err(ENOENT, "nothing to exchange with"))?;
                    if self.dirs.contains_key(&dst) && self.is_within(*parent, dst) {
                        return Err(fs_err(EINVAL, "cannot move a directory into itself"));
                    }
                    let dst_dir = self.dirs.contains_key(&dst);
                    self.dirs
                        .get_mut(parent)
                        .expect("checked")
                        .insert(name, dst, dst_dir);
                    self.dirs
                        .get_mut(new_parent)
                        .expect("checked")
                        .insert(new_name, src, src_dir);
                    for (ino, p) in [(src, *new_parent), (dst, *parent)] {
                        let i = inode_mut(&mut self.inodes, &ino).expect("linked");
                        i.ctime = *time;
                        if i.kind == InodeKind::Dir {
                            i.parent = p;
                        }
                    }
                } else {
                    if let Some(dst) = dst {
                        if dst == src {
                            return Ok(()); // two names of one inode: nothing to do
                        }
                        match (src_dir, self.dirs.get(&dst)) {
                            (true, None) => {
                                return Err(fs_err(
                                    ENOTDIR,
                                    "cannot replace a non-directory with a directory",
                                ))
                            }
                            (false, Some(_)) => {
                                return Err(fs_err(
                                    EISDIR,
                                    "cannot replace a directory with a non-directory",
                                ))
                            }
                            (true, Some(d)) if !d.is_empty() => {
                                return Err(fs_err(ENOTEMPTY, "directory not empty"))
                            }
                            _ => {}
                        }
                        let d = inode_mut(&mut self.inodes, &dst).expect("linked");
                        d.links -= 1;
                        d.ctime = *time;
                    }
                    self.dirs.get_mut(parent).expect("checked").remove(name);
                    self.dirs
                        .get_mut(new_parent)
                        .expect("checked")
                        .insert(new_name, src, src_dir);
                    let i = inode_mut(&mut self.inodes, &src).expect("linked");
                    i.ctime = *time;
                    if i.kind == InodeKind::Dir {
                        i.parent = *new_parent;
                    }
                }
                self.touch_dir(*parent, *time);
                self.touch_dir(*new_parent, *time);
            }
            UnifiedEntry::SetAttr { ino, change } => {
                let seg = self.segment_size as u64;
                let i = inode_mut(&mut self.inodes, ino)
                    .ok_or_else(|| fs_err(ENOENT, format!("no inode {ino}")))?;
                let AttrChange {
                    mode,
                    uid,
                    gid,
                    size,
                    atime,
                    mtime,
                    ctime,
                } = change;
                if let Some(size) = size {
                    i.require_file("size of a non-file")?;
                    let keep = size.div_ceil(seg);
                    let dropped = i.segments.cut_from(keep);
                    let plain = Self::drop_segments(&mut self.packs, freed, dropped.into_iter());
                    i.stored -= plain;
                    self.stored_bytes -= plain;
                    i.size = *size;
                }
                if let Some(m) = mode {
                    i.mode = (i.mode & !0o7777) | (m & 0o7777);
                }
                if let Some(u) = uid {
                    i.uid = *u;
                }
                if let Some(g) = gid {
                    i.gid = *g;
                }
                if let Some(t) = atime {
                    i.atime = *t;
                }
                if let Some(t) = mtime {
                    i.mtime = *t;
                }
                if let Some(t) = ctime {
                    i.ctime = *t;
                }
            }
            UnifiedEntry::SetXattr { ino, name, value } => {
                let i = inode_mut(&mut self.inodes, ino)
                    .ok_or_else(|| fs_err(ENOENT, format!("no inode {ino}")))?;
                i.xattrs.insert(name.clone(), value.clone());
            }
            UnifiedEntry::RemoveXattr { ino, name } => {
                let i = inode_mut(&mut self.inodes, ino)
                    .ok_or_else(|| fs_err(ENOENT, format!("no inode {ino}")))?;
                i.xattrs
                    .remove(name)
                    .ok_or_else(|| fs_err(ENODATA, "no such attribute"))?;
            }
            UnifiedEntry::WriteSegments {
                ino,
                size,
                mtime,
                segments,
            }
            | UnifiedEntry::WriteSegmentsCarried {
                ino,
                size,
                mtime,
                segments,
                ..
            } => {
                let seg = self.segment_size;
                let i = inode_mut(&mut self.inodes, ino)
                    .ok_or_else(|| fs_err(ENOENT, format!("no inode {ino}")))?;
                if i.kind != InodeKind::File {
                    return Err(fs_err(EISDIR, "content of a non-file"));
                }
                let mut seen = std::collections::HashSet::new();
                for (index, r) in segments {
                    if !seen.insert(*index) {
                        return Err(fs_err(
                            EINVAL,
                            format!("segment {index} twice in one write"),
                        ));
                    }
                    if r.plain_len > seg {
                        return Err(fs_err(EINVAL, "segment longer than the segment size"));
                    }
                    if let Some(old) = i.segments.get(index) {
                        if r.generation <= old.generation {
                            return Err(fs_err(
                                EINVAL,
                                format!("segment {index} generation goes back"),
                            ));
                        }
                    }
                }
                for (index, r) in segments {
                    self.generation_high = self.generation_high.max(r.generation);
                    if let Some(old) = i.segments.insert(*index, *r) {
                        let plain =
                            Self::drop_segments(&mut self.packs, freed, std::iter::once(old));
                        i.stored -= plain;
                        self.stored_bytes -= plain;
                    }
                    self.packs.entry(r.pack).or_default().live += r.stored_len as u64;
                    i.stored += r.plain_len as u64;
                    self.stored_bytes += r.plain_len as u64;
                }
                i.size = *size;
                i.mtime = *mtime;
                i.ctime = *mtime;
            }
            UnifiedEntry::Forget { ino } => {
                let i = self.inode(*ino)?;
                if i.links > 0 || *ino == ROOT_INO {
                    return Err(fs_err(EINVAL, format!("inode {ino} is still linked")));
                }
                if self.dirs.get(ino).is_some_and(|d| !d.is_empty()) {
                    return Err(fs_err(
                        ENOTEMPTY,
                        format!("directory {ino} still has entries"),
                    ));
                }
                let i = self.inodes.remove(ino).expect("checked");
                self.dirs.remove(ino);
                self.stored_bytes -=
                    Self::drop_segments(&mut self.packs, freed, i.segments.values().copied());
            }
            UnifiedEntry::Scheduler { cycle, .. } => self.scheduler_cycles = *cycle,
            UnifiedEntry::SnapshotCheckpoint { .. }
            | UnifiedEntry::Close { .. }
            | UnifiedEntry::DecryptCheckpoint { .. } => {}
            UnifiedEntry::ReserveGenerations { up_to } => {
                self.generation_reserved = self.generation_reserved.max(*up_to)
            }
            UnifiedEntry::MoveSegments { moves } => {
                if moves.iter().any(|(_, _, from, to)| {
                    from.generation != to.generation || from.stored_len != to.stored_len
                }) {
                    return Err(fs_err(EINVAL, "a move must keep the frame unchanged"));
                }
                for (ino, index, from, to) in moves {
                    let current =
                        inode_mut(&mut self.inodes, ino).and_then(|i| i.segments.get_mut(index));
                    match current {
                        Some(r) if r == from => {
                            *r = *to;
                            let u = self.packs.entry(from.pack).or_default();
                            u.live = u.live.saturating_sub(from.stored_len as u64);
                            u.dead += from.stored_len as u64;
                            self.packs.entry(to.pack).or_default().live += to.stored_len as u64;
                        }
                        // Rewritten or removed meanwhile: the copy is dead on arrival.
                        _ => self.packs.entry(to.pack).or_default().dead += to.stored_len as u64,
                    }
                }
            }
            UnifiedEntry::PackDeleted { pack } => {
                if self.packs.get(pack).is_some_and(|u| u.live > 0) {
                    return Err(fs_err(
                        EINVAL,
                        format!("pack {pack} still holds live frames"),
                    ));
                }
                self.packs.remove(pack);
            }
        }
        Ok(())
    }

    /// Inodes with no name left (unlinked while open); bootstrap reclaims them.
    pub fn orphans(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .inodes
            .iter()
            .filter(|(&n, i)| i.links == 0 && n != ROOT_INO)
            .map(|(&n, _)| n)
            .collect();
        v.sort();
        v
    }
}
