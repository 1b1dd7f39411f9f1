//! The values an inode is described by: its kind, times, and the attribute
//! changes a `SetAttr` entry carries (FORMAT.md §9.1-9.2).

/// Seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InodeKind {
    File,
    Dir,
    Symlink,
    CharDev,
    BlockDev,
    Fifo,
    Socket,
}

impl InodeKind {
    pub(crate) fn id(self) -> u8 {
        match self {
            InodeKind::File => 1,
            InodeKind::Dir => 2,
            InodeKind::Symlink => 3,
            InodeKind::CharDev => 4,
            InodeKind::BlockDev => 5,
            InodeKind::Fifo => 6,
            InodeKind::Socket => 7,
        }
    }
    pub(crate) fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            1 => InodeKind::File,
            2 => InodeKind::Dir,
            3 => InodeKind::Symlink,
            4 => InodeKind::CharDev,
            5 => InodeKind::BlockDev,
            6 => InodeKind::Fifo,
            7 => InodeKind::Socket,
            _ => return None,
        })
    }
}

/// Attribute changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// New size: truncating drops segments past it, growing leaves a hole.
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
    pub ctime: Option<Timespec>,
}
