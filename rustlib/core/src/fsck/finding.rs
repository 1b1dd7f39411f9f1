//! What the checker reports: the invariant broken ([`Check`]) and where
//! ([`Finding`]: inode, path, detail).

/// The invariant a finding breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    Tree,
    DanglingEntry,
    Disconnected,
    LinkCount,
    Orphan,
    SubdirCount,
    SegmentMap,
    SharedFrame,
    Record,
    PackAccounting,
    MissingPack,
    TruncatedPack,
    UnreferencedPack,
    Frame,
    /// A metadata file whose second copy (`mirror/`) is missing or differs.
    Copy,
    /// Log records that could not be read or applied (salvage).
    LostRecords,
}

impl Check {
    /// Its name in reports (`--json` too).
    pub fn name(self) -> &'static str {
        match self {
            Check::Tree => "tree",
            Check::DanglingEntry => "dangling-entry",
            Check::Disconnected => "disconnected",
            Check::LinkCount => "link-count",
            Check::Orphan => "orphan",
            Check::SubdirCount => "subdir-count",
            Check::SegmentMap => "segment-map",
            Check::SharedFrame => "shared-frame",
            Check::Record => "record",
            Check::PackAccounting => "pack-accounting",
            Check::MissingPack => "missing-pack",
            Check::TruncatedPack => "truncated-pack",
            Check::UnreferencedPack => "unreferenced-pack",
            Check::Frame => "frame",
            Check::Copy => "copy",
            Check::LostRecords => "lost-records",
        }
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub check: Check,
    /// The inode concerned, if one is.
    pub ino: Option<u64>,
    /// A path of that inode from the root, where it has one.
    pub path: Option<String>,
    pub detail: String,
    /// The pack concerned, for the pack checks.
    pub pack: Option<u64>,
}

impl Finding {
    pub fn new(check: Check, ino: Option<u64>, detail: impl Into<String>) -> Self {
        Finding {
            check,
            ino,
            path: None,
            detail: detail.into(),
            pack: None,
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.check.name())?;
        match (&self.path, self.ino) {
            (Some(p), Some(i)) => write!(f, "{p} (inode {i}): ")?,
            (None, Some(i)) => write!(f, "inode {i}: ")?,
            _ => {}
        }
        f.write_str(&self.detail)
    }
}
