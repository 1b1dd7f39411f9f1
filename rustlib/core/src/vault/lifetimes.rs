//! Inode lifetimes: an inode lives while it has a name, an open handle or a
//! lookup the kernel still holds ([`super::references`]), and is reclaimed
//! (its `Forget` committed: metadata dropped, frames dead) when the last of
//! them goes, whichever that is: unlink or rename over it, the last
//! release, or the kernel's FORGET.
//!
//! A caller that serves no kernel (fsck, tools, the binding's tests) never
//! calls [`Vault::remember`], so its inodes go with their last name or
//! handle as they always did. The FUSE layer remembers every entry it hands
//! the kernel, so an unlinked file opened with `O_PATH`, an `rmdir`ed
//! current directory, or the old file a rename replaced while a reader was
//! between lookup and open, stays there for the kernel as on ext4.
//!
//! Nothing of this is on disk: a session's counts end with it. Closing the
//! vault reclaims every inode left without a name (the kernel's FORGETs do
//! not all come before an unmount ends), and after a crash bootstrap does
//! (`recovery::bootstrap`).

use super::engine::{lock, Attr, Vault};
use crate::error::Result;
use crate::metadata::{MetadataState, UnifiedEntry, ROOT_INO};

impl Vault {
    /// Count an open handle (an unlinked file stays readable until the last release).
    pub fn open(&self, ino: u64) -> Result<Attr> {
        let s = self.lock_state();
        let attr = Self::attr_of(&s, ino, s.inode(ino)?);
        lock(&self.references).open(ino);
        Ok(attr)
    }

    pub fn release(&self, ino: u64) -> Result<()> {
        let mut s = self.lock_state();
        if !lock(&self.references).release(ino) {
            return Ok(());
        }
        self.reclaim_if_unused(&mut s, ino)
    }

    /// The kernel was handed the entries of `inos` (one lookup each; an
    /// inode listed twice counts twice). Call it right after the call that
    /// produced them (lookup, create, mknod, mkdir, symlink, link, the
    /// readdirplus entries the kernel accepted): ENOENT, counting none, if
    /// one of them was reclaimed in between. The root is never counted: it
    /// is never reclaimed.
    pub fn remember(&self, inos: &[u64]) -> Result<()> {
        let s = self.lock_state();
        for &ino in inos {
            s.inode(ino)?;
        }
        let mut refs = lock(&self.references);
        for &ino in inos.iter().filter(|&&ino| ino != ROOT_INO) {
            refs.remember(ino, 1);
        }
        Ok(())
    }

    /// The kernel forgot `n` lookups of each `(ino, n)` (FORGET,
    /// BATCH_FORGET). An inode left without name, handle or lookup is
    /// reclaimed. Inodes not counted are passed over: a FORGET has no reply
    /// to refuse it with. One visit to the state lock for the whole batch.
    pub fn forget(&self, forgotten: &[(u64, u64)]) -> Result<()> {
        let mut s = self.lock_state();
        let mut result = Ok(());
        for &(ino, n) in forgotten {
            if lock(&self.references).forget(ino, n) {
                // Reclaim the others even if one fails (the log refused the
                // record: that one stays an orphan until close or bootstrap).
                result = result.and(self.reclaim_if_unused(&mut s, ino));
            }
        }
        result
    }

    /// Lookups of `ino` the kernel holds (as [`Vault::remember`] and
    /// [`Vault::forget`] counted them).
    pub fn kernel_lookups(&self, ino: u64) -> u64 {
        lock(&self.references).lookups(ino)
    }

    /// Reclaim `ino` if nothing refers to it any more: no name, no open
    /// handle, no kernel lookup.
    pub(super) fn reclaim_if_unused(&self, s: &mut MetadataState, ino: u64) -> Result<()> {
        let unused = ino != ROOT_INO
            && s.inodes.get(&ino).is_some_and(|i| i.links == 0)
            && !lock(&self.references).in_use(ino);
        if unused {
            self.reclaim(s, ino)?;
        }
        Ok(())
    }

    /// Reclaim every inode without a name, whoever still counted it: at
    /// close, when no kernel and no handle outlives the session.
    pub(super) fn reclaim_orphans(&self) -> Result<()> {
        let mut s = self.lock_state();
        for ino in s.orphans() {
            self.reclaim(&mut s, ino)?;
        }
        Ok(())
    }

    /// Commit the `Forget` of `ino` and drop what this session kept for it.
    fn reclaim(&self, s: &mut MetadataState, ino: u64) -> Result<()> {
        if self.log.read_only() {
            return Ok(()); // kept, as bootstrap kept it: nothing is written
        }
        let file_id = s.inode(ino)?.file_id;
        self.commit(s, UnifiedEntry::Forget { ino })?;
        lock(&self.file_locks).remove(&ino);
        self.cache.invalidate(&file_id, 0);
        Ok(())
    }
}
