//! A directory's entries, indexed by name and by readdir cookie.

use std::sync::Arc;

use imbl::OrdMap;

/// A directory's entries as stored: (name, inode) pairs. The snapshot's
/// decoder gives the names as `Arc<[u8]>`, the form a [`Dir`] keeps them in.
pub type NamedEntries<N = Vec<u8>> = Vec<(N, u64)>;

/// One entry of a [`Dir`].
#[derive(Clone, Copy, Debug)]
struct Slot {
    ino: u64,
    cookie: u64,
    is_dir: bool,
}

/// A directory's entries: by name (lookups, snapshots, equality) and by
/// readdir cookie.
///
/// Every entry gets a cookie from the directory's own counter when its name
/// is inserted; it keeps it until the name is removed (replacing the inode
/// behind a name, as rename over it or exchange do, keeps the cookie), and a
/// cookie is never given out twice in one directory. Listing "entries with
/// a cookie above the last one returned" therefore never skips or repeats an
/// entry that exists throughout the listing, whatever is added or removed
/// meanwhile (positions in the name order would shift on every removal).
/// Cookies start at 1 (readdir offset 0 is the start) and live in memory
/// only: a snapshot or replay assigns them afresh.
#[derive(Clone, Debug, Default)]
pub struct Dir {
    /// The names are shared by both maps (one allocation per entry).
    by_name: OrdMap<Arc<[u8]>, Slot>,
    /// cookie → (name, inode).
    by_cookie: OrdMap<u64, (Arc<[u8]>, u64)>,
    last_cookie: u64,
    subdirs: u32,
}

impl PartialEq for Dir {
    /// The same names pointing at the same inodes (cookies are not compared).
    fn eq(&self, other: &Dir) -> bool {
        self.by_name.len() == other.by_name.len()
            && self
                .by_name
                .iter()
                .zip(&other.by_name)
                .all(|((a, x), (b, y))| a == b && x.ino == y.ino)
    }
}

impl Eq for Dir {}

impl Dir {
    /// A directory from entries in strictly increasing name order (as a
    /// snapshot stores them), given cookies 1, 2, … in that order; built in
    /// bulk (no search per entry). `is_dir` says which inodes are
    /// directories; `None` if the names are not strictly increasing.
    pub(super) fn from_sorted<N: Into<Arc<[u8]>>>(
        entries: NamedEntries<N>,
        mut is_dir: impl FnMut(u64) -> std::result::Result<bool, String>,
    ) -> std::result::Result<Dir, String> {
        let mut subdirs = 0u32;
        let mut by_cookie = Vec::with_capacity(entries.len());
        let mut by_name = Vec::with_capacity(entries.len());
        for (k, (name, ino)) in entries.into_iter().enumerate() {
            let name: Arc<[u8]> = name.into();
            if by_name
                .last()
                .is_some_and(|(prev, _): &(Arc<[u8]>, Slot)| **prev >= *name)
            {
                return Err("directory entries out of name order".into());
            }
            let dir = is_dir(ino)?;
            subdirs += dir as u32;
            let cookie = k as u64 + 1;
            by_cookie.push((cookie, (Arc::clone(&name), ino)));
            by_name.push((
                name,
                Slot {
                    ino,
                    cookie,
                    is_dir: dir,
                },
            ));
        }
        Ok(Dir {
            last_cookie: by_cookie.len() as u64,
            by_name: by_name.into_iter().collect(),
            by_cookie: by_cookie.into_iter().collect(),
            subdirs,
        })
    }

    pub fn get(&self, name: &[u8]) -> Option<u64> {
        self.by_name.get(name).map(|s| s.ino)
    }

    pub fn contains_key(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// (name, inode) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.by_name.iter().map(|(n, s)| (&n[..], s.ino))
    }

    /// Inodes named here, in name order.
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_name.values().map(|s| s.ino)
    }

    /// Entries that are directories.
    pub fn subdirs(&self) -> u32 {
        self.subdirs
    }

    /// (cookie, name, inode) of the entries whose cookie is above `cookie`,
    /// in cookie order: readdir from offset `cookie`.
    pub fn after(&self, cookie: u64) -> impl Iterator<Item = (u64, &[u8], u64)> + '_ {
        self.by_cookie
            .range(cookie.saturating_add(1)..)
            .map(|(c, (name, ino))| (*c, &name[..], *ino))
    }

    /// Name `ino` as `name`, replacing what the name pointed at (the entry
    /// keeps its cookie then). Returns the inode replaced.
    pub(super) fn insert(&mut self, name: &[u8], ino: u64, is_dir: bool) -> Option<u64> {
        self.subdirs += is_dir as u32;
        if let Some(slot) = self.by_name.get_mut(name) {
            let old = slot.ino;
            self.subdirs -= slot.is_dir as u32;
            slot.ino = ino;
            slot.is_dir = is_dir;
            self.by_cookie.get_mut(&slot.cookie).expect("indexed").1 = ino;
            return Some(old);
        }
        self.last_cookie += 1;
        let cookie = self.last_cookie;
        let name: Arc<[u8]> = name.into();
        self.by_cookie.insert(cookie, (Arc::clone(&name), ino));
        self.by_name.insert(
            name,
            Slot {
                ino,
                cookie,
                is_dir,
            },
        );
        None
    }

    pub(super) fn remove(&mut self, name: &[u8]) -> Option<u64> {
        let slot = self.by_name.remove(name)?;
        self.by_cookie.remove(&slot.cookie);
        self.subdirs -= slot.is_dir as u32;
        Some(slot.ino)
    }
}
