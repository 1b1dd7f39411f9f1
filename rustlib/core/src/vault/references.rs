//! Who still refers to an inode besides its names: this session's open
//! handles and the kernel's lookups.
//!
//! The kernel keeps a lookup count per inode (the FUSE protocol's
//! `nlookup`): every reply that hands it an entry (lookup, create, mkdir,
//! mknod, symlink, link, and each readdirplus entry it accepts, `.` and
//! `..` excepted) adds one, and FORGET / BATCH_FORGET take them back. While
//! the count is above zero the kernel may send any request for the inode
//! (open through `/proc/self/fd`, fstat of an `O_PATH` descriptor, a
//! current directory), even after its last name is gone; so an inode
//! without names is reclaimed only when neither a handle nor a lookup is
//! left (see `Vault::forget` in [`super::lifetimes`]).
//!
//! Neither count is metadata: both live only as long as the session
//! (a remount starts from zero, and bootstrap reclaims whatever a crash left
//! without names). Only inodes with a count are in the table, so its size is
//! what the kernel holds, not the vault's.

use std::collections::HashMap;

/// The counts of one inode (never both zero in the table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    handles: u32,
    lookups: u64,
}

/// Per-inode open handles and kernel lookups.
#[derive(Debug, Default)]
pub(super) struct References {
    counts: HashMap<u64, Count>,
}

impl References {
    /// One more open handle.
    pub(super) fn open(&mut self, ino: u64) {
        self.counts.entry(ino).or_default().handles += 1;
    }

    /// One handle fewer; false if none was open.
    pub(super) fn release(&mut self, ino: u64) -> bool {
        self.change(ino, |c| {
            let was = c.handles > 0;
            c.handles = c.handles.saturating_sub(1);
            was
        })
    }

    /// `n` more kernel lookups.
    pub(super) fn remember(&mut self, ino: u64, n: u64) {
        let c = self.counts.entry(ino).or_default();
        c.lookups = c.lookups.saturating_add(n);
    }

    /// `n` kernel lookups fewer (never below zero: the kernel forgetting
    /// more than it was given would be a miscount, and the inode is then
    /// unreferenced by it either way); false if none was counted.
    pub(super) fn forget(&mut self, ino: u64, n: u64) -> bool {
        self.change(ino, |c| {
            let was = c.lookups > 0;
            c.lookups = c.lookups.saturating_sub(n);
            was
        })
    }

    /// Something besides a name still refers to `ino`.
    pub(super) fn in_use(&self, ino: u64) -> bool {
        self.counts.contains_key(&ino)
    }

    /// The kernel's lookups of `ino`.
    pub(super) fn lookups(&self, ino: u64) -> u64 {
        self.counts.get(&ino).map_or(0, |c| c.lookups)
    }

    /// Apply `f` to the count of `ino`, dropping it once both parts are zero.
    fn change(&mut self, ino: u64, f: impl FnOnce(&mut Count) -> bool) -> bool {
        let Some(c) = self.counts.get_mut(&ino) else {
            return false;
        };
        let changed = f(c);
        if *c == Count::default() {
            self.counts.remove(&ino);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inode_is_in_use_while_either_count_is_above_zero() {
        let mut r = References::default();
        assert!(!r.in_use(5));
        r.open(5);
        r.remember(5, 2);
        assert!(r.release(5));
        assert!(r.in_use(5), "two lookups left");
        assert!(r.forget(5, 1));
        assert!(r.in_use(5));
        assert!(r.forget(5, 1));
        assert!(!r.in_use(5));
        assert!(r.counts.is_empty(), "no entry kept for an unused inode");
    }

    #[test]
    fn lookups_outlive_handles_and_handles_outlive_lookups() {
        let mut r = References::default();
        r.remember(7, 1);
        r.open(7);
        assert!(r.forget(7, 1));
        assert!(r.in_use(7), "still open");
        assert!(r.release(7));
        assert!(!r.in_use(7));
    }

    #[test]
    fn counts_never_go_below_zero() {
        let mut r = References::default();
        assert!(!r.release(3));
        assert!(!r.forget(3, 4));
        r.remember(3, 2);
        assert!(r.forget(3, 10));
        assert_eq!(r.lookups(3), 0);
        assert!(!r.in_use(3));
        r.open(3);
        assert!(!r.forget(3, 1), "no lookups were counted");
        assert!(r.in_use(3));
    }
}
