//! Who keeps the modification and change times of regular files: the
//! engine, or the kernel above it.
//!
//! Used on its own (the Python `fusefs.Vault`, tests, tools), the engine
//! stamps times itself, as a file system does: a write sets mtime and ctime
//! to now, a truncate too, and any attribute change sets ctime to now.
//!
//! Under a FUSE mount with the writeback cache, the kernel keeps mtime and
//! ctime (and size) of regular files itself, and a stamp of ours would
//! only ever disagree with what `stat` showed. What the Linux kernel sends
//! (fs/fuse/dir.c, file.c; seen on 6.18 with pyfuse3 3.5):
//!
//! * writes and page faults update the times in the inode (coarse clock
//!   ticks, a few ms apart) and mark it dirty; the data reaches us as WRITE
//!   requests, the times later, as a SETATTR with FATTR_MTIME|FATTR_CTIME
//!   (`fuse_write_inode` → `fuse_flush_times`): at each close
//!   (`fuse_flush`), fsync, syncfs and background writeback. A write in the
//!   same clock tick as the last update changes no time, and then no SETATTR
//!   comes at all: a WRITE alone must leave the times as they are;
//! * chmod, chown, utimensat, truncate and O_TRUNC opens send the kernel's
//!   own ctime (FATTR_CTIME, pyfuse3's `update_ctime`) and, where they change
//!   it, mtime, never FATTR_MTIME_NOW; a truncate to the same size sends its
//!   times too, an O_TRUNC open (atomic_o_trunc) sends none with the OPEN
//!   and its times come with the next SETATTR;
//! * rename, link and unlink of a file set its ctime in the kernel and send
//!   it the same way;
//! * the times and size in our replies to GETATTR, SETATTR and lookups are
//!   ignored for an inode the kernel already has (`fuse_get_cache_mask`);
//!   only a new inode takes ours.
//!
//! Directories, symlinks and special files are not in the writeback cache:
//! their times stay the engine's in both modes.

use std::sync::atomic::Ordering::Relaxed;

use super::engine::{now, Vault};
use crate::metadata::{AttrChange, InodeKind, Timespec};

/// Who keeps mtime and ctime of regular files (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileTimes {
    /// The engine stamps them: now, at every change.
    #[default]
    Engine,
    /// The caller gives them (a kernel with the writeback cache): content
    /// changes keep them, attribute changes store only the times given.
    Kernel,
}

impl Vault {
    /// Hand mtime and ctime of regular files to the caller, or back to the
    /// engine. Takes effect for the next call.
    pub fn set_file_times(&self, owner: FileTimes) {
        self.kernel_file_times
            .store(owner == FileTimes::Kernel, Relaxed);
    }

    pub fn file_times(&self) -> FileTimes {
        if self.kernel_file_times.load(Relaxed) {
            FileTimes::Kernel
        } else {
            FileTimes::Engine
        }
    }

    /// Whether the engine stamps the times of an inode of `kind`.
    pub(super) fn stamps_times(&self, kind: InodeKind) -> bool {
        kind != InodeKind::File || self.file_times() == FileTimes::Engine
    }

    /// The new mtime a content change (write) of an inode of `kind` records:
    /// now, or `None` to keep the times it has.
    pub(super) fn content_mtime(&self, kind: InodeKind) -> Option<Timespec> {
        self.stamps_times(kind).then(now)
    }

    /// Fill in the times an attribute change of an inode of `kind` stamps:
    /// mtime and ctime for a new size, ctime for anything else, unless the
    /// change gives them (or they are not the engine's to stamp).
    pub(super) fn stamp_attr_change(&self, kind: InodeKind, change: &mut AttrChange) {
        if !self.stamps_times(kind) {
            return;
        }
        if change.size.is_some() && change.mtime.is_none() {
            let t = now();
            change.mtime = Some(t);
            change.ctime.get_or_insert(t);
        } else {
            change.ctime.get_or_insert_with(now);
        }
    }
}
