//! The invariants of a metadata state, one function each: what must hold of
//! any state that `MetadataState::apply` can build, checked from scratch
//! (not trusting the derived fields). Each returns its findings; none
//! changes the state.

use std::collections::{HashMap, HashSet, VecDeque};

use super::finding::{Check, Finding};
use crate::metadata::{InodeKind, MetadataState, SegmentRef, ROOT_INO};

/// Longest name of a directory entry, symlink target and attribute (Linux limits).
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;
const XATTR_SIZE_MAX: usize = 65536;
/// What a pack frame may add to a segment's plaintext: nonce, encoding
/// byte, tag, and zstd's worst case for incompressible input (far below).
const FRAME_OVERHEAD_MAX: u64 = 1024;

/// Every check of this module, in the order a report lists them.
pub fn check_state(s: &MetadataState) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(check_directories(s));
    out.extend(check_tree(s));
    out.extend(check_link_counts(s));
    out.extend(check_subdir_counts(s));
    out.extend(check_segment_maps(s));
    out.extend(check_frames_unshared(s));
    out.extend(check_records(s));
    out.extend(check_pack_accounting(s));
    out.extend(check_counters(s));
    out
}

/// A directory inode has an entry table and nothing else has one; every
/// entry has a valid name and names an inode that exists.
pub fn check_directories(s: &MetadataState) -> Vec<Finding> {
    let mut out = Vec::new();
    for (&ino, inode) in s.inodes.iter() {
        if inode.kind == InodeKind::Dir && !s.dirs.contains_key(&ino) {
            out.push(Finding::new(
                Check::Tree,
                Some(ino),
                "a directory without an entry table",
            ));
        }
    }
    for (&d, dir) in s.dirs.iter() {
        match s.inodes.get(&d) {
            None => out.push(Finding::new(
                Check::Tree,
                Some(d),
                "an entry table of a directory that does not exist",
            )),
            Some(i) if i.kind != InodeKind::Dir => out.push(Finding::new(
                Check::Tree,
                Some(d),
                format!("a {:?} with an entry table", i.kind),
            )),
            _ => {}
        }
        for (name, ino) in dir.iter() {
            if !valid_name(name) {
                out.push(Finding::new(
                    Check::Tree,
                    Some(d),
                    format!("an invalid entry name {:?}", String::from_utf8_lossy(name)),
                ));
            }
            if !s.inodes.contains_key(&ino) {
                out.push(Finding::new(
                    Check::DanglingEntry,
                    Some(d),
                    format!(
                        "entry {:?} names inode {ino}, which does not exist",
                        String::from_utf8_lossy(name)
                    ),
                ));
            }
        }
    }
    out
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && !name.contains(&0)
}

/// The root is a directory and its own parent; every directory is named
/// exactly once, by its parent, and reaches the root; every named inode is
/// reachable from the root (no cycles, nothing disconnected).
pub fn check_tree(s: &MetadataState) -> Vec<Finding> {
    let mut out = Vec::new();
    match s.inodes.get(&ROOT_INO) {
        None => {
            out.push(Finding::new(
                Check::Tree,
                Some(ROOT_INO),
                "the root directory is missing",
            ));
            return out;
        }
        Some(r) if r.kind != InodeKind::Dir || r.parent != ROOT_INO => {
            out.push(Finding::new(
                Check::Tree,
                Some(ROOT_INO),
                "the root is not a directory that is its own parent",
            ));
        }
        _ => {}
    }
    // Where each directory is named.
    let mut named_in: HashMap<u64, Vec<u64>> = HashMap::new();
    for (&d, dir) in s.dirs.iter() {
        for (_, ino) in dir.iter() {
            if s.dirs.contains_key(&ino) {
                named_in.entry(ino).or_default().push(d);
            }
        }
    }
    for (&ino, inode) in s.inodes.iter() {
        if inode.kind != InodeKind::Dir || ino == ROOT_INO {
            continue;
        }
        let names = named_in.get(&ino).map_or(&[][..], Vec::as_slice);
        if names.len() > 1 {
            out.push(Finding::new(
                Check::Tree,
                Some(ino),
                format!("a directory named {} times (in {:?})", names.len(), names),
            ));
        }
        if names.len() == 1 && names[0] != inode.parent {
            out.push(Finding::new(
                Check::Tree,
                Some(ino),
                format!(
                    "a directory named in {} but whose parent is {}",
                    names[0], inode.parent
                ),
            ));
        }
    }
    if named_in.get(&ROOT_INO).is_some_and(|v| !v.is_empty()) {
        out.push(Finding::new(
            Check::Tree,
            Some(ROOT_INO),
            "the root is named in a directory",
        ));
    }
    // Reachability from the root.
    let mut seen: HashSet<u64> = HashSet::from([ROOT_INO]);
    let mut queue = VecDeque::from([ROOT_INO]);
    while let Some(d) = queue.pop_front() {
        let Some(dir) = s.dirs.get(&d) else { continue };
        for (_, ino) in dir.iter() {
            if seen.insert(ino) && s.dirs.contains_key(&ino) {
                queue.push_back(ino);
            }
        }
    }
    let mut disconnected: Vec<u64> = s
        .inodes
        .iter()
        .filter(|(ino, i)| !seen.contains(ino) && i.links > 0)
        .map(|(&ino, _)| ino)
        .collect();
    disconnected.sort_unstable();
    for ino in disconnected {
        out.push(Finding::new(
            Check::Disconnected,
            Some(ino),
            "named only in directories the root does not reach (a cycle or a lost subtree)",
        ));
    }
    out
}

/// Each inode's link count is the number of entries naming it; an inode
/// without any (but the root) is an orphan, which the vault's open
/// reclaims, so none is left once it is open.
pub fn check_link_counts(s: &MetadataState) -> Vec<Finding> {
    let mut names: HashMap<u64, u32> = HashMap::new();
    for (_, dir) in s.dirs.iter() {
        for (_, ino) in dir.iter() {
            *names.entry(ino).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
    inos.sort_unstable();
    for ino in inos {
        let inode = &s.inodes[&ino];
        let counted = if ino == ROOT_INO {
            1
        } else {
            names.get(&ino).copied().unwrap_or(0)
        };
        if inode.links != counted {
            out.push(Finding::new(
                Check::LinkCount,
                Some(ino),
                format!("link count {} but {} entries name it", inode.links, counted),
            ));
        }
        if ino != ROOT_INO && counted == 0 {
            out.push(Finding::new(
                Check::Orphan,
                Some(ino),
                "an inode that no entry names",
            ));
        }
    }
    out
}

/// Each directory's count of subdirectories (its `st_nlink` less 2) is
/// the number of its entries that are directories.
pub fn check_subdir_counts(s: &MetadataState) -> Vec<Finding> {
    let mut out = Vec::new();
    for (&d, dir) in s.dirs.iter() {
        let counted = dir
            .iter()
            .filter(|(_, ino)| s.inodes.get(ino).is_some_and(|i| i.kind == InodeKind::Dir))
            .count() as u32;
        if dir.subdirs() != counted {
            out.push(Finding::new(
                Check::SubdirCount,
                Some(d),
                format!(
                    "{} subdirectories counted, {} present",
                    dir.subdirs(),
                    counted
                ),
            ));
        }
    }
    out
}

/// Only regular files have segments; each starts within the file's size
/// and lies within the vault's segment size, has a plausible frame length,
/// and a generation the vault has handed out; stored bytes add up.
///
/// The segment that holds the end of the file may reach past it: a
/// truncate records the new size first and the cut segment after it, so a
/// crash between the two leaves the old segment whole (its bytes past the
/// size are never read, and the engine cuts them before the file grows
/// again: `Vault::cut_segment_at`). A segment that starts at or past the
/// size is another matter: the size record drops those.
pub fn check_segment_maps(s: &MetadataState) -> Vec<Finding> {
    let seg = s.segment_size as u64;
    let mut out = Vec::new();
    let mut total = 0u64;
    for (&ino, inode) in s.inodes.iter() {
        if inode.kind != InodeKind::File && !inode.segments.is_empty() {
            out.push(Finding::new(
                Check::SegmentMap,
                Some(ino),
                format!("a {:?} with {} segments", inode.kind, inode.segments.len()),
            ));
        }
        let mut stored = 0u64;
        for (&index, r) in inode.segments.iter() {
            stored += r.plain_len as u64;
            let start = index.saturating_mul(seg);
            let problem = if r.plain_len == 0 || r.plain_len as u64 > seg {
                Some(format!("{} plaintext bytes", r.plain_len))
            } else if start >= inode.size {
                Some(format!("starts at or past the size {}", inode.size))
            } else if r.stored_len == 0 || r.stored_len as u64 > seg + FRAME_OVERHEAD_MAX {
                Some(format!("a frame of {} bytes", r.stored_len))
            } else if r.generation == 0 || r.generation > s.generation_high {
                Some(format!(
                    "generation {} (the vault's highest is {})",
                    r.generation, s.generation_high
                ))
            } else {
                None
            };
            if let Some(p) = problem {
                out.push(Finding::new(
                    Check::SegmentMap,
                    Some(ino),
                    format!("segment {index} (bytes {start}..): {p}"),
                ));
            }
        }
        if stored != inode.stored {
            out.push(Finding::new(
                Check::SegmentMap,
                Some(ino),
                format!(
                    "{} stored bytes counted, {} in its segments",
                    inode.stored, stored
                ),
            ));
        }
        total += stored;
    }
    if total != s.stored_bytes {
        out.push(Finding::new(
            Check::SegmentMap,
            None,
            format!(
                "{} stored bytes counted for the vault, {} in its files",
                s.stored_bytes, total
            ),
        ));
    }
    out
}

/// No two segments share a frame (a frame belongs to one file, index and
/// generation: shared, one of them cannot authenticate).
pub fn check_frames_unshared(s: &MetadataState) -> Vec<Finding> {
    let mut owner: HashMap<(u64, u64), (u64, u64)> = HashMap::new();
    let mut out = Vec::new();
    let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
    inos.sort_unstable();
    for ino in inos {
        for (&index, r) in s.inodes[&ino].segments.iter() {
            if let Some((other, other_index)) = owner.insert((r.pack, r.offset), (ino, index)) {
                out.push(Finding::new(
                    Check::SharedFrame,
                    Some(ino),
                    format!(
                        "segment {index} uses the frame at pack {} offset {} that segment \
                         {other_index} of inode {other} uses too",
                        r.pack, r.offset
                    ),
                ));
            }
        }
    }
    out
}

/// Symlinks have a target of 1..=4095 bytes (their size), nothing else has
/// one; attribute names and values are within the kernel's limits; each
/// file has its own, non-zero file id (it selects the file's key).
pub fn check_records(s: &MetadataState) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut file_ids: HashMap<[u8; 16], u64> = HashMap::new();
    let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
    inos.sort_unstable();
    for ino in inos {
        let inode = &s.inodes[&ino];
        let mut bad = |what: String| out.push(Finding::new(Check::Record, Some(ino), what));
        if inode.kind == InodeKind::Symlink {
            if inode.target.is_empty() || inode.target.len() >= PATH_MAX {
                bad(format!("a symlink target of {} bytes", inode.target.len()));
            } else if inode.size != inode.target.len() as u64 {
                bad(format!(
                    "a symlink of size {} with a {}-byte target",
                    inode.size,
                    inode.target.len()
                ));
            }
        } else if !inode.target.is_empty() {
            bad(format!("a {:?} with a symlink target", inode.kind));
        }
        for (name, value) in inode.xattrs.iter() {
            if name.is_empty() || name.len() > NAME_MAX || value.len() > XATTR_SIZE_MAX {
                bad(format!(
                    "an attribute of {} name and {} value bytes",
                    name.len(),
                    value.len()
                ));
            }
        }
        if inode.kind == InodeKind::File {
            if inode.file_id == [0; 16] {
                bad("a file without a file id".into());
            } else if let Some(other) = file_ids.insert(inode.file_id, ino) {
                bad(format!("the file id of inode {other}"));
            }
        }
    }
    out
}

/// Each pack's live bytes are the frames the segment maps point into it,
/// and every pack a segment points into is known.
pub fn check_pack_accounting(s: &MetadataState) -> Vec<Finding> {
    let mut live: HashMap<u64, u64> = HashMap::new();
    for (_, inode) in s.inodes.iter() {
        for (_, r) in inode.segments.iter() {
            *live.entry(r.pack).or_default() += r.stored_len as u64;
        }
    }
    let mut out = Vec::new();
    let mut packs: Vec<u64> = live.keys().chain(s.packs.keys()).copied().collect();
    packs.sort_unstable();
    packs.dedup();
    for p in packs {
        let counted = live.get(&p).copied().unwrap_or(0);
        match s.packs.get(&p) {
            None => out.push(Finding::new(
                Check::PackAccounting,
                None,
                format!("pack {p} holds {counted} live bytes but the vault does not know it"),
            )),
            Some(u) if u.live != counted => out.push(Finding::new(
                Check::PackAccounting,
                None,
                format!(
                    "pack {p}: {} live bytes counted, {} referenced",
                    u.live, counted
                ),
            )),
            _ => {}
        }
    }
    out
}

/// The next inode number is above every inode's.
pub fn check_counters(s: &MetadataState) -> Vec<Finding> {
    match s.inodes.keys().max() {
        Some(&max) if s.next_ino <= max => vec![Finding::new(
            Check::Record,
            None,
            format!(
                "the next inode number {} is not above inode {max}",
                s.next_ino
            ),
        )],
        _ => Vec::new(),
    }
}

/// Where a segment's plaintext lies in its file: `(start, end)`.
pub fn segment_range(s: &MetadataState, index: u64, r: &SegmentRef) -> (u64, u64) {
    let start = index * s.segment_size as u64;
    (start, start + r.plain_len as u64)
}
