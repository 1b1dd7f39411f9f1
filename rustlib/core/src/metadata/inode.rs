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

    /// The file-type bits of `st_mode` (`S_IFREG`, `S_IFDIR`, ...) for this
    /// kind: what stat and readdir report beside the permission bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            InodeKind::File => S_IFREG,
            InodeKind::Dir => S_IFDIR,
            InodeKind::Symlink => S_IFLNK,
            InodeKind::CharDev => S_IFCHR,
            InodeKind::BlockDev => S_IFBLK,
            InodeKind::Fifo => S_IFIFO,
            InodeKind::Socket => S_IFSOCK,
        }
    }

    /// The kind that the file-type bits of `mode` name. No type bits at all
    /// is a regular file, as mknod(2) reads them; `None` for bits that name
    /// no file type.
    pub fn from_mode(mode: u32) -> Option<Self> {
        Some(match mode & S_IFMT {
            S_IFREG | 0 => InodeKind::File,
            S_IFDIR => InodeKind::Dir,
            S_IFLNK => InodeKind::Symlink,
            S_IFCHR => InodeKind::CharDev,
            S_IFBLK => InodeKind::BlockDev,
            S_IFIFO => InodeKind::Fifo,
            S_IFSOCK => InodeKind::Socket,
            _ => return None,
        })
    }
}

/// The file-type mask of `st_mode` and its values (Linux, as `<sys/stat.h>`).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

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

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [InodeKind; 7] = [
        InodeKind::File,
        InodeKind::Dir,
        InodeKind::Symlink,
        InodeKind::CharDev,
        InodeKind::BlockDev,
        InodeKind::Fifo,
        InodeKind::Socket,
    ];

    #[test]
    fn mode_bits_are_linux_st_mode_types() {
        let bits: Vec<u32> = KINDS.iter().map(|k| k.mode_bits()).collect();
        assert_eq!(
            bits,
            [0o100000, 0o040000, 0o120000, 0o020000, 0o060000, 0o010000, 0o140000]
        );
    }

    #[test]
    fn from_mode_reads_the_type_bits_only() {
        for kind in KINDS {
            assert_eq!(InodeKind::from_mode(kind.mode_bits()), Some(kind));
            assert_eq!(InodeKind::from_mode(kind.mode_bits() | 0o7777), Some(kind));
        }
        // No type bits: a regular file (mknod(2)).
        assert_eq!(InodeKind::from_mode(0o644), Some(InodeKind::File));
        // 0o030000, 0o050000, 0o070000... name no file type.
        for bits in [0o030000, 0o050000, 0o070000, 0o110000, 0o170000] {
            assert_eq!(InodeKind::from_mode(bits | 0o600), None, "{bits:#o}");
        }
    }
}
