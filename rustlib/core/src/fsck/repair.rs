//! Repair of a metadata state: from a state that breaks invariants (a
//! damaged vault, or one opened with salvage past lost log records), the
//! nearest state that keeps them, built from its parts the way a snapshot
//! is loaded. Nothing that still has a name is dropped:
//!
//! * entries naming an inode that does not exist, tables of directories
//!   that do not exist, and second names of a directory go;
//! * inodes with links that the root does not reach (a lost subtree, a
//!   cycle) are named in `/lost+found` as `#INODE`;
//! * inodes without any name and not in use are reclaimed (their frames
//!   become dead bytes);
//! * link counts are the entries that name each inode; directory parents
//!   the directory naming them;
//! * segments of other kinds than files go; a file whose segments reach
//!   past its size grows to cover them (the data is kept);
//! * pack accounting is counted again from the segment maps; the counters
//!   (next inode, highest generation) are raised past what is in use.
//!
//! Committing the result (a snapshot, written crash-safely) is the
//! engine's ([`crate::vault::Vault::install_repaired_state`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::metadata::{Inode, InodeKind, MetadataState, PackUsage, Timespec, ROOT_INO};

/// Record in each damaged file's `fusefs.damaged` attribute ([`super::damage`])
/// the segments in `damaged` (found by frame verification) and those in a
/// pack that is missing or too short (`on_disk`: pack → length); records
/// that no longer match a segment are dropped. What was recorded, a line each.
pub fn record_damage(
    s: &mut MetadataState,
    damaged: &[(u64, super::damage::Damaged)],
    on_disk: &HashMap<u64, u64>,
) -> Changes {
    use super::damage::{merged, DAMAGE_XATTR};
    let mut by_ino: BTreeMap<u64, Vec<super::damage::Damaged>> = BTreeMap::new();
    for (ino, d) in damaged {
        by_ino.entry(*ino).or_default().push(*d);
    }
    let seg = s.segment_size as u64;
    for (&ino, i) in s.inodes.iter() {
        for (&index, r) in i.segments.iter() {
            let short = on_disk
                .get(&r.pack)
                .is_none_or(|&len| len < r.offset + r.stored_len as u64);
            if short {
                let start = index * seg;
                by_ino.entry(ino).or_default().push((
                    index,
                    r.generation,
                    start,
                    start + r.plain_len as u64,
                ));
            }
        }
        if i.xattrs.contains_key(DAMAGE_XATTR) {
            by_ino.entry(ino).or_default();
        }
    }
    let paths = crate::metadata::paths::PathIndex::new(s);
    let mut changes = Vec::new();
    for (ino, add) in by_ino {
        let Some(inode) = s.inodes.get(&ino) else {
            continue;
        };
        let before = inode.xattrs.get(DAMAGE_XATTR).cloned();
        let after = merged(inode, &add);
        if before == after {
            continue;
        }
        let path = paths.path(s, ino).unwrap_or_else(|| format!("inode {ino}"));
        if after.as_ref().map_or(0, |v| super::damage::parse(v).len())
            < before.as_ref().map_or(0, |v| super::damage::parse(v).len())
        {
            changes.push(format!(
                "dropped damage records of {path} that no segment matches any more"
            ));
        }
        for (index, _, start, end) in &add {
            changes.push(format!(
                "recorded bytes {start}..{end} of {path} (segment {index}) as damaged: they read as EIO"
            ));
        }
        let i = Arc::make_mut(s.inodes.get_mut(&ino).expect("listed"));
        match after {
            Some(v) => i.xattrs.insert(DAMAGE_XATTR.to_vec(), v),
            None => i.xattrs.remove(DAMAGE_XATTR),
        };
    }
    changes.dedup();
    changes
}

/// Name of the directory disconnected inodes are put in.
pub const LOST_AND_FOUND: &[u8] = b"lost+found";

/// What one repair changed, a line each, for the report.
pub type Changes = Vec<String>;

/// The repaired form of `s`; `in_use(ino)` tells inodes still open (they
/// keep living without a name). `pack_totals` gives each pack's bytes
/// (live + dead) as the state knew them, so reclaimed frames count dead.
pub fn repair_state(
    s: &MetadataState,
    in_use: &dyn Fn(u64) -> bool,
    now: Timespec,
) -> (MetadataState, Changes) {
    let mut changes = Vec::new();
    let mut inodes: BTreeMap<u64, Inode> =
        s.inodes.iter().map(|(&n, i)| (n, (**i).clone())).collect();
    if !matches!(inodes.get(&ROOT_INO), Some(r) if r.kind == InodeKind::Dir) {
        changes.push("the root directory was missing or not a directory: made anew".into());
        inodes.insert(ROOT_INO, new_dir(ROOT_INO, 0o755, now));
    }
    // Directory tables: only of directories, only naming inodes that exist.
    let mut dirs: BTreeMap<u64, BTreeMap<Vec<u8>, u64>> = BTreeMap::new();
    for (&d, dir) in s.dirs.iter() {
        if !matches!(inodes.get(&d), Some(i) if i.kind == InodeKind::Dir) {
            changes.push(format!(
                "dropped the entry table of inode {d}, not a directory"
            ));
            continue;
        }
        let mut entries = BTreeMap::new();
        for (name, ino) in dir.iter() {
            if !inodes.contains_key(&ino) || ino == ROOT_INO || !valid_name(name) {
                changes.push(format!(
                    "dropped entry {:?} of directory {d} (names inode {ino}, {})",
                    String::from_utf8_lossy(name),
                    if inodes.contains_key(&ino) {
                        "not allowed there"
                    } else {
                        "which does not exist"
                    }
                ));
                continue;
            }
            entries.insert(name.to_vec(), ino);
        }
        dirs.insert(d, entries);
    }
    for (&ino, i) in &inodes {
        if i.kind == InodeKind::Dir && !dirs.contains_key(&ino) {
            changes.push(format!("gave directory {ino} an empty entry table"));
            dirs.insert(ino, BTreeMap::new());
        }
    }
    // A directory named more than once keeps the name in the directory its
    // inode records as its parent (else the first the walk meets).
    let mut names_of: HashMap<u64, Vec<(u64, Vec<u8>)>> = HashMap::new();
    for (&d, entries) in &dirs {
        for (name, &ino) in entries {
            if inodes[&ino].kind == InodeKind::Dir {
                names_of.entry(ino).or_default().push((d, name.clone()));
            }
        }
    }
    for (ino, names) in names_of.into_iter().filter(|(_, n)| n.len() > 1) {
        let recorded = inodes[&ino].parent;
        if let Some(keep) = names.iter().position(|(d, _)| *d == recorded) {
            for (k, (d, name)) in names.iter().enumerate() {
                if k != keep {
                    dirs.get_mut(d).expect("listed").remove(name);
                    changes.push(format!(
                        "dropped entry {:?} of directory {d}: a second name of directory {ino}",
                        String::from_utf8_lossy(name)
                    ));
                }
            }
        }
    }
    // Walk from the root: each directory keeps its first name only.
    let mut parent: HashMap<u64, u64> = HashMap::from([(ROOT_INO, ROOT_INO)]);
    let mut reached: HashSet<u64> = HashSet::from([ROOT_INO]);
    let mut queue = VecDeque::from([ROOT_INO]);
    while let Some(d) = queue.pop_front() {
        let names: Vec<(Vec<u8>, u64)> = dirs[&d].iter().map(|(n, &i)| (n.clone(), i)).collect();
        for (name, ino) in names {
            let is_dir = inodes[&ino].kind == InodeKind::Dir;
            if is_dir && parent.contains_key(&ino) {
                dirs.get_mut(&d).expect("walked").remove(&name);
                changes.push(format!(
                    "dropped entry {:?} of directory {d}: a second name of directory {ino}",
                    String::from_utf8_lossy(&name)
                ));
                continue;
            }
            if reached.insert(ino) && is_dir {
                parent.insert(ino, d);
                queue.push_back(ino);
            }
        }
    }
    // Inodes the walk did not reach.
    let named: HashSet<u64> = dirs.values().flat_map(|e| e.values().copied()).collect();
    let mut lost: Vec<u64> = inodes
        .keys()
        .copied()
        .filter(|i| !reached.contains(i))
        .collect();
    lost.sort_unstable();
    let mut next_ino = s.next_ino.max(inodes.keys().max().map_or(2, |m| m + 1));
    let mut found: Option<u64> = None;
    for ino in lost {
        if !named.contains(&ino) && inodes[&ino].kind != InodeKind::Dir && inodes[&ino].links == 0 {
            if in_use(ino) {
                continue; // open, nameless by design: reclaimed on its last close
            }
            inodes.remove(&ino);
            dirs.remove(&ino);
            changes.push(format!("reclaimed inode {ino}, which nothing names"));
            continue;
        }
        // Disconnected: named only where the root does not reach, or a
        // directory (which always has a name): into lost+found. Inodes
        // inside a lost directory are reached through it.
        if parent.contains_key(&ino) || reached.contains(&ino) {
            continue;
        }
        let lf = *found.get_or_insert_with(|| {
            lost_and_found(&mut inodes, &mut dirs, &mut next_ino, &mut changes, now)
        });
        let name = format!("#{ino}").into_bytes();
        // Its old names (in directories the root does not reach) go.
        for entries in dirs.values_mut() {
            entries.retain(|_, i| *i != ino);
        }
        dirs.get_mut(&lf).expect("made").insert(name, ino);
        changes.push(format!("named disconnected inode {ino} /lost+found/#{ino}"));
        reached.insert(ino);
        if inodes[&ino].kind == InodeKind::Dir {
            parent.insert(ino, lf);
            // Its subtree is reachable now.
            let mut q = VecDeque::from([ino]);
            while let Some(d) = q.pop_front() {
                for &i in dirs[&d].values() {
                    if reached.insert(i) && inodes[&i].kind == InodeKind::Dir {
                        parent.insert(i, d);
                        q.push_back(i);
                    }
                }
            }
        }
    }
    // Entries left in directories that are gone or unreached.
    dirs.retain(|d, _| inodes.contains_key(d));
    // Link counts and parents.
    let mut links: HashMap<u64, u32> = HashMap::new();
    for entries in dirs.values() {
        for &i in entries.values() {
            *links.entry(i).or_default() += 1;
        }
    }
    let seg = s.segment_size as u64;
    for (&ino, i) in inodes.iter_mut() {
        let want = links.get(&ino).copied().unwrap_or(0);
        if ino != ROOT_INO && i.links != want {
            changes.push(format!("link count of inode {ino}: {} → {want}", i.links));
            i.links = want;
        }
        if i.kind == InodeKind::Dir {
            let p = parent.get(&ino).copied().unwrap_or(ROOT_INO);
            if i.parent != p {
                changes.push(format!("parent of directory {ino}: {} → {p}", i.parent));
                i.parent = p;
            }
        }
        if i.kind != InodeKind::File && !i.segments.is_empty() {
            changes.push(format!(
                "dropped {} segments of {:?} inode {ino}",
                i.segments.len(),
                i.kind
            ));
            i.segments = Default::default();
        }
        let end = i
            .segments
            .iter()
            .map(|(&k, r)| k.saturating_mul(seg) + r.plain_len as u64)
            .max()
            .unwrap_or(0);
        if end > i.size {
            changes.push(format!(
                "size of inode {ino}: {} → {end} (its segments reach there)",
                i.size
            ));
            i.size = end;
        }
    }
    // Pack accounting from the maps; totals kept, so what is no longer
    // referenced counts dead.
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let mut generation_high = s.generation_high;
    for i in inodes.values() {
        for r in i.segments.values() {
            *live.entry(r.pack).or_default() += r.stored_len as u64;
            generation_high = generation_high.max(r.generation);
        }
    }
    let mut packs = imbl::OrdMap::new();
    for (&p, u) in s.packs.iter() {
        let l = live.get(&p).copied().unwrap_or(0);
        let total = (u.live + u.dead).max(l);
        packs.insert(
            p,
            PackUsage {
                live: l,
                dead: total - l,
            },
        );
    }
    for (&p, &l) in &live {
        if !s.packs.contains_key(&p) {
            packs.insert(p, PackUsage { live: l, dead: 0 });
        }
    }
    if packs != s.packs {
        changes.push("pack accounting counted again from the segment maps".into());
    }
    if generation_high != s.generation_high {
        changes.push(format!(
            "highest generation: {} → {generation_high}",
            s.generation_high
        ));
    }
    next_ino = next_ino.max(inodes.keys().max().map_or(2, |m| m + 1));
    if next_ino != s.next_ino {
        changes.push(format!("next inode number: {} → {next_ino}", s.next_ino));
    }
    let dirs_parts = dirs
        .into_iter()
        .map(|(d, e)| (d, e.into_iter().collect::<Vec<_>>()))
        .collect();
    let state = MetadataState::from_parts(
        s.segment_size,
        inodes.into_iter().map(|(n, i)| (n, Arc::new(i))),
        dirs_parts,
        packs,
        next_ino,
        s.scheduler_cycles,
        generation_high,
    )
    .expect("a repaired state is consistent by construction");
    (state, changes)
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= crate::metadata::state::NAME_MAX
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && !name.contains(&0)
}

fn new_dir(_ino: u64, mode: u32, now: Timespec) -> Inode {
    Inode {
        kind: InodeKind::Dir,
        mode,
        uid: 0,
        gid: 0,
        rdev: 0,
        size: 0,
        links: 0,
        atime: now,
        mtime: now,
        ctime: now,
        file_id: [0; 16],
        target: Vec::new(),
        xattrs: Default::default(),
        segments: Default::default(),
        parent: ROOT_INO,
        stored: 0,
    }
}

/// `/lost+found`: the existing directory of that name, or a new one (mode
/// 0700, owned as the root is).
fn lost_and_found(
    inodes: &mut BTreeMap<u64, Inode>,
    dirs: &mut BTreeMap<u64, BTreeMap<Vec<u8>, u64>>,
    next_ino: &mut u64,
    changes: &mut Changes,
    now: Timespec,
) -> u64 {
    if let Some(&i) = dirs[&ROOT_INO].get(LOST_AND_FOUND) {
        if inodes[&i].kind == InodeKind::Dir {
            return i;
        }
    }
    let ino = *next_ino;
    *next_ino += 1;
    let root = &inodes[&ROOT_INO];
    let mut d = new_dir(ino, 0o700, now);
    d.uid = root.uid;
    d.gid = root.gid;
    inodes.insert(ino, d);
    dirs.insert(ino, BTreeMap::new());
    let root_entries = dirs.get_mut(&ROOT_INO).expect("root");
    let mut name = LOST_AND_FOUND.to_vec();
    while root_entries.contains_key(&name) {
        name.push(b'_');
    }
    changes.push(format!("made /{}", String::from_utf8_lossy(&name)));
    root_entries.insert(name, ino);
    ino
}
