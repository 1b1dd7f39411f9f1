//! Names and attributes: lookup, create, link, unlink, rename, readdir,
//! xattrs. Each call is one visit to the state lock. What happens to an
//! inode that loses its last name is [`super::lifetimes`]'s.

use super::engine::{now, Attr, DirEntry, RenameFlags, Vault};
use crate::crypto::random;
use crate::error::errno::*;
use crate::error::{fs_err, Result};
use crate::metadata::{InodeKind, UnifiedEntry};

impl Vault {
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        let s = self.lock_state();
        let i = s.inode(ino)?;
        Ok(Self::attr_of(&s, ino, i))
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        let s = self.lock_state();
        let ino = s.lookup(parent, name)?;
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    /// Create an inode of any kind and link it at `parent/name`.
    #[allow(clippy::too_many_arguments)]
    pub fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        kind: InodeKind,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        target: &[u8],
    ) -> Result<Attr> {
        let file_id = random::bytes()?;
        let time = now();
        let mut s = self.lock_state();
        // Check the name before creating anything, so a refused link leaves
        // no orphan inode behind.
        s.check_new_name(parent, name)?;
        let ino = s.next_ino;
        let create = UnifiedEntry::CreateInode {
            ino,
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            rdev,
            time,
            file_id,
            target: target.to_vec(),
        };
        let link = UnifiedEntry::Link {
            parent,
            name: name.to_vec(),
            ino,
            time,
        };
        self.commit(&mut s, create)?;
        self.commit(&mut s, link)?;
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    pub fn create(&self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.mknod(parent, name, InodeKind::File, mode, uid, gid, 0, b"")
    }

    pub fn mkdir(&self, parent: u64, name: &[u8], mode: u32, uid: u32, gid: u32) -> Result<Attr> {
        self.mknod(parent, name, InodeKind::Dir, mode, uid, gid, 0, b"")
    }

    pub fn symlink(
        &self,
        parent: u64,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Attr> {
        if target.is_empty() || target.len() > 4095 {
            return Err(fs_err(EINVAL, "symlink target length"));
        }
        self.mknod(parent, name, InodeKind::Symlink, 0o777, uid, gid, 0, target)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let s = self.lock_state();
        let i = s.inode(ino)?;
        if i.kind != InodeKind::Symlink {
            return Err(fs_err(EINVAL, "not a symlink"));
        }
        Ok(i.target.clone())
    }

    pub fn link(&self, ino: u64, new_parent: u64, new_name: &[u8]) -> Result<Attr> {
        let mut s = self.lock_state();
        if s.inode(ino)?.kind == InodeKind::Dir {
            return Err(fs_err(EPERM, "hard links to directories are not allowed"));
        }
        self.commit(
            &mut s,
            UnifiedEntry::Link {
                parent: new_parent,
                name: new_name.to_vec(),
                ino,
                time: now(),
            },
        )?;
        Ok(Self::attr_of(&s, ino, s.inode(ino)?))
    }

    pub(super) fn remove(&self, parent: u64, name: &[u8], dir: bool) -> Result<()> {
        let mut s = self.lock_state();
        let ino = s.lookup(parent, name)?;
        let is_dir = s.dirs.contains_key(&ino);
        if dir && !is_dir {
            return Err(fs_err(ENOTDIR, "not a directory"));
        }
        if !dir && is_dir {
            return Err(fs_err(EISDIR, "is a directory"));
        }
        self.commit(
            &mut s,
            UnifiedEntry::Unlink {
                parent,
                name: name.to_vec(),
                time: now(),
            },
        )?;
        self.reclaim_if_unused(&mut s, ino)
    }

    pub fn unlink(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove(parent, name, false)
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove(parent, name, true)
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        let mut s = self.lock_state();
        let replaced = s.lookup(new_parent, new_name).ok();
        if flags.noreplace && replaced.is_some() {
            return Err(fs_err(EEXIST, "target exists"));
        }
        let entry = UnifiedEntry::Rename {
            parent,
            name: name.to_vec(),
            new_parent,
            new_name: new_name.to_vec(),
            exchange: flags.exchange,
            time: now(),
        };
        self.commit(&mut s, entry)?;
        match replaced {
            Some(old) if !flags.exchange => self.reclaim_if_unused(&mut s, old),
            _ => Ok(()),
        }
    }

    /// The directory `ino`'s parent, for its ".." entry: the root is its
    /// own, and a removed directory whose parent is gone too is its own
    /// (nothing can be looked up through it any more).
    pub fn parent(&self, ino: u64) -> Result<u64> {
        let s = self.lock_state();
        s.dir(ino)?;
        let parent = s.inodes[&ino].parent;
        Ok(if s.inodes.contains_key(&parent) {
            parent
        } else {
            ino
        })
    }

    /// Entries of directory `ino` after `offset` (0 = from the first), at
    /// most `limit`. Offsets are per-directory cookies (see
    /// [`Dir`](crate::metadata::Dir)): listing in chunks while entries
    /// are added or removed never skips or repeats an entry that exists
    /// throughout. Entries come in the order they were created (after a
    /// remount: name order, then creation order).
    pub fn readdir(&self, ino: u64, offset: u64, limit: usize) -> Result<Vec<DirEntry>> {
        let s = self.lock_state();
        Ok(s.dir(ino)?
            .after(offset)
            .take(limit)
            .map(|(cookie, name, child)| DirEntry {
                name: name.to_vec(),
                ino: child,
                kind: s.inodes[&child].kind,
                next_offset: cookie,
            })
            .collect())
    }

    /// `readdir` with each entry's attributes, all read under one lock.
    pub fn readdirplus(
        &self,
        ino: u64,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<(DirEntry, Attr)>> {
        let s = self.lock_state();
        Ok(s.dir(ino)?
            .after(offset)
            .take(limit)
            .map(|(cookie, name, child)| {
                let i = &s.inodes[&child];
                let entry = DirEntry {
                    name: name.to_vec(),
                    ino: child,
                    kind: i.kind,
                    next_offset: cookie,
                };
                (entry, Self::attr_of(&s, child, i))
            })
            .collect())
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        let s = self.lock_state();
        s.inode(ino)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or_else(|| fs_err(ENODATA, "no such attribute"))
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<Vec<u8>>> {
        let s = self.lock_state();
        Ok(s.inode(ino)?.xattrs.keys().cloned().collect())
    }

    /// Set an attribute; `create` fails if it exists, `replace` if it does not.
    pub fn setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        create: bool,
        replace: bool,
    ) -> Result<()> {
        if name.is_empty() || name.len() > 255 || value.len() > 65536 {
            return Err(fs_err(
                if value.len() > 65536 { E2BIG } else { EINVAL },
                "attribute name or value too long",
            ));
        }
        let mut s = self.lock_state();
        let exists = s.inode(ino)?.xattrs.contains_key(name);
        if create && exists {
            return Err(fs_err(EEXIST, "attribute exists"));
        }
        if replace && !exists {
            return Err(fs_err(ENODATA, "no such attribute"));
        }
        self.commit(
            &mut s,
            UnifiedEntry::SetXattr {
                ino,
                name: name.to_vec(),
                value: value.to_vec(),
            },
        )
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        let mut s = self.lock_state();
        self.commit(
            &mut s,
            UnifiedEntry::RemoveXattr {
                ino,
                name: name.to_vec(),
            },
        )
    }
}
