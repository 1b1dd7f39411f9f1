//! Paths of inodes, for messages (a damaged read, a checker's finding): a
//! name of the inode and of each directory up to the root. The state keeps
//! no reverse map, so these walk the directories; they are for errors and
//! reports, never for the data path.

use std::collections::HashMap;

use super::state::{MetadataState, ROOT_INO};

/// One path of `ino` from the root (`/` for the root), or `None` if no
/// directory names it or its names do not lead to the root. Of several
/// names, the one in the lowest-numbered directory, first by name.
pub fn path_of(s: &MetadataState, ino: u64) -> Option<String> {
    let mut dirs: Vec<u64> = s.dirs.keys().copied().collect();
    dirs.sort_unstable();
    let named_in = |target: u64| {
        dirs.iter().find_map(|d| {
            s.dirs[d]
                .iter()
                .find(|(_, i)| *i == target)
                .map(|(n, _)| (*d, n.to_vec()))
        })
    };
    walk(s, ino, named_in)
}

/// Paths of many inodes at once: one pass over the directories.
pub struct PathIndex {
    named: HashMap<u64, (u64, Vec<u8>)>,
}

impl PathIndex {
    pub fn new(s: &MetadataState) -> Self {
        let mut dirs: Vec<u64> = s.dirs.keys().copied().collect();
        dirs.sort_unstable();
        let mut named = HashMap::new();
        for d in dirs {
            for (name, ino) in s.dirs[&d].iter() {
                named.entry(ino).or_insert_with(|| (d, name.to_vec()));
            }
        }
        PathIndex { named }
    }

    /// As [`path_of`].
    pub fn path(&self, s: &MetadataState, ino: u64) -> Option<String> {
        walk(s, ino, |i| self.named.get(&i).cloned())
    }
}

fn walk(
    s: &MetadataState,
    ino: u64,
    named_in: impl Fn(u64) -> Option<(u64, Vec<u8>)>,
) -> Option<String> {
    if ino == ROOT_INO {
        return Some("/".into());
    }
    let mut parts = Vec::new();
    let mut at = ino;
    while at != ROOT_INO {
        let (d, name) = named_in(at)?;
        parts.push(String::from_utf8_lossy(&name).into_owned());
        if parts.len() > s.inodes.len() {
            return None; // a cycle
        }
        at = d;
    }
    parts.reverse();
    Some(format!("/{}", parts.join("/")))
}
