//! The one error type of the core. Every variant reads as a sentence a user can act on.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {}", describe_io(source))]
    Io {
        context: String,
        path: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error("truncated header: {0} of 108 bytes")]
    TruncatedHeader(usize),
    #[error("not a fusefs stream (all zero)")]
    AllZero,
    #[error("not a fusefs stream (bad magic)")]
    BadMagic,
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    #[error("wrong kind of key: {0}")]
    WrongKeyKind(&'static str),
    #[error("wrong password or key")]
    WrongKey,
    #[error("header tampered (MAC mismatch)")]
    HeaderTampered,
    #[error("truncated stream{0}")]
    Truncated(String),
    #[error("invalid frame at segment {index}: {reason}")]
    InvalidFrame { index: u64, reason: String },
    #[error("segment {index} comes from another stream")]
    ForeignSegment { index: u64 },
    #[error("duplicated segment {index}")]
    DuplicateSegment { index: u64 },
    #[error("segment out of order: expected {expected}, found {found}")]
    OutOfOrder { expected: u64, found: u64 },
    #[error("segment {index} failed authentication")]
    SegmentAuthFailed { index: u64 },
    #[error("digest mismatch: {0}")]
    DigestMismatch(String),
    #[error("trailing data after the end of the stream")]
    TrailingData,
    #[error("compression error: {0}")]
    Compression(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// Costs read from an unauthenticated header or config beyond
    /// [`crate::crypto::kdf_policy::current_limit`]: refused before deriving.
    #[error("Argon2id costs m={m_kib} KiB t={t} p={p} exceed the limit ({limit})")]
    KdfTooExpensive {
        m_kib: u32,
        t: u32,
        p: u32,
        limit: String,
    },
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("wrong password for this vault")]
    WrongPassword,
    #[error("wrong master key for this vault")]
    WrongMasterKey,
    #[error("fusefs.conf was modified or damaged: {0}")]
    ConfigTampered(String),
    #[error("invalid fusefs.conf: {0}")]
    ConfigInvalid(String),
    #[error("fusefs.conf has format version {0}; this fusefs reads versions 1 and 2 only")]
    UnsupportedConfigVersion(u64),
    #[error("fusefs.conf needs features this fusefs does not have: {}", .0.join(", "))]
    UnknownFeatures(Vec<String>),
    #[error("{} already exists: refusing to create a vault over it", .0.display())]
    VaultExists(PathBuf),
    #[error("log damaged: {0}")]
    LogCorrupt(String),
    #[error("snapshot damaged: {0}")]
    SnapshotCorrupt(String),
    /// A file-system operation refused, with the errno the FUSE layer returns.
    #[error("{what}")]
    Fs { errno: i32, what: String },
    #[error("the log stopped after an earlier write error ({0}); reopen the vault")]
    LogFailed(String),
    #[error("pack {pack:016x}.pack is missing: the file contents stored in it are lost")]
    PackMissing { pack: u64 },
    #[error("pack {pack:016x}.pack is damaged at offset {offset}: {reason}")]
    PackCorrupt {
        pack: u64,
        offset: u64,
        reason: String,
    },
    #[error("pack writes stopped after an earlier write error ({0}); reopen the vault")]
    PacksFailed(String),
    /// The vault is behind what this machine's local state saw of it
    /// (`vault::local_state`): the message names what is missing.
    #[error("the vault is behind what this machine saw: {0}; --accept-rollback opens it anyway")]
    RolledBack(String),
}

/// `map_err` adapter for an I/O error on `path`: reported as
/// "{what} {path}: {reason}", keeping the path and the errno.
pub fn io_at<'a>(what: &'a str, path: &'a std::path::Path) -> impl Fn(io::Error) -> Error + 'a {
    move |e| Error::io_path(format!("{what} {}", path.display()), path, e)
}

/// The errno values the vault engine refuses operations with (Linux).
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const E2BIG: i32 = 7;
    pub const EBADF: i32 = 9;
    pub const EEXIST: i32 = 17;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const EFBIG: i32 = 27;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOTEMPTY: i32 = 39;
    pub const ENODATA: i32 = 61;
}

/// A refused file-system operation with its errno.
pub fn fs_err(errno: i32, what: impl Into<String>) -> Error {
    Error::Fs {
        errno,
        what: what.into(),
    }
}

/// An I/O error as a user reads it: "No such file or directory", without
/// Rust's " (os error 2)" suffix.
pub fn describe_io(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            path: None,
            source,
        }
    }

    pub fn io_path(context: impl Into<String>, path: &std::path::Path, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            path: Some(path.to_path_buf()),
            source,
        }
    }

    /// A short stable name for each kind, for bindings and machine output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::TruncatedHeader(_) => "truncated_header",
            Error::AllZero => "all_zero",
            Error::BadMagic => "bad_magic",
            Error::UnsupportedVersion(_) => "unsupported_version",
            Error::InvalidHeader(_) => "invalid_header",
            Error::WrongKeyKind(_) => "wrong_key_kind",
            Error::WrongKey => "wrong_key",
            Error::HeaderTampered => "header_tampered",
            Error::Truncated(_) => "truncated",
            Error::InvalidFrame { .. } => "invalid_frame",
            Error::ForeignSegment { .. } => "foreign_segment",
            Error::DuplicateSegment { .. } => "duplicate_segment",
            Error::OutOfOrder { .. } => "out_of_order",
            Error::SegmentAuthFailed { .. } => "segment_auth_failed",
            Error::DigestMismatch(_) => "digest_mismatch",
            Error::TrailingData => "trailing_data",
            Error::Compression(_) => "compression",
            Error::Kdf(_) => "kdf",
            Error::InvalidParams(_) => "invalid_params",
            Error::KdfTooExpensive { .. } => "kdf_too_expensive",
            Error::Resume(_) => "resume",
            Error::Cancelled => "cancelled",
            Error::Internal(_) => "internal",
            Error::WrongPassword => "wrong_password",
            Error::WrongMasterKey => "wrong_master_key",
            Error::ConfigTampered(_) => "config_tampered",
            Error::ConfigInvalid(_) => "config_invalid",
            Error::UnsupportedConfigVersion(_) => "unsupported_config_version",
            Error::UnknownFeatures(_) => "unknown_features",
            Error::VaultExists(_) => "vault_exists",
            Error::LogCorrupt(_) => "log_corrupt",
            Error::Fs { .. } => "fs",
            Error::SnapshotCorrupt(_) => "snapshot_corrupt",
            Error::LogFailed(_) => "log_failed",
            Error::PackMissing { .. } => "pack_missing",
            Error::PackCorrupt { .. } => "pack_corrupt",
            Error::PacksFailed(_) => "packs_failed",
            Error::RolledBack(_) => "rolled_back",
        }
    }

    /// The errno a file-system operation on an open vault answers with when
    /// it fails this way (what the FUSE layer tells the kernel): a refusal's
    /// own errno; an I/O error's (`EIO` when it has none); `EIO` once the log
    /// or the packs stopped after an earlier write error; `EIO` for damaged
    /// or tampered data (authentication failures included). `None`: not a
    /// file-system outcome (a wrong password, a bad config, bad parameters,
    /// a cancelled run), reported as itself.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Fs { errno, .. } => Some(*errno),
            Error::Io { source, .. } => Some(source.raw_os_error().unwrap_or(errno::EIO)),
            Error::LogFailed(_) | Error::PacksFailed(_) => Some(errno::EIO),
            _ if self.class() == ErrorClass::Integrity => Some(errno::EIO),
            _ => None,
        }
    }

    /// As [`Error::errno`], for opening or creating a vault: a damaged,
    /// tampered or unreadable vault (integrity and format errors) has no
    /// errno, so that a caller such as `fusefs mount` can tell it from an
    /// I/O error; refusals (a vault in use: `EBUSY`) and I/O errors keep theirs.
    pub fn errno_at_open(&self) -> Option<i32> {
        match self.class() {
            ErrorClass::Integrity | ErrorClass::Format => None,
            _ => self.errno(),
        }
    }

    /// Broad class of the error, which bindings map to exception types.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Io { .. } => ErrorClass::Io,
            Error::WrongKey | Error::WrongKeyKind(_) => ErrorClass::WrongKey,
            Error::AllZero
            | Error::BadMagic
            | Error::UnsupportedVersion(_)
            | Error::TruncatedHeader(_) => ErrorClass::Format,
            Error::InvalidParams(_) | Error::Kdf(_) | Error::KdfTooExpensive { .. } => {
                ErrorClass::Params
            }
            Error::Resume(_) => ErrorClass::Resume,
            Error::Cancelled => ErrorClass::Cancelled,
            Error::Internal(_) => ErrorClass::Internal,
            Error::WrongPassword | Error::WrongMasterKey => ErrorClass::WrongKey,
            Error::ConfigInvalid(_)
            | Error::UnsupportedConfigVersion(_)
            | Error::UnknownFeatures(_) => ErrorClass::Format,
            Error::ConfigTampered(_) => ErrorClass::Integrity,
            Error::VaultExists(_) => ErrorClass::Params,
            Error::LogFailed(_) | Error::Fs { .. } => ErrorClass::Io,
            Error::PacksFailed(_) => ErrorClass::Io,
            Error::PackMissing { .. } | Error::PackCorrupt { .. } => ErrorClass::Integrity,
            Error::RolledBack(_) => ErrorClass::Integrity,
            _ => ErrorClass::Integrity,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Io,
    WrongKey,
    Format,
    Integrity,
    Params,
    Resume,
    Cancelled,
    Internal,
}

#[cfg(test)]
mod tests {
    use super::errno::*;
    use super::*;

    fn io(raw: Option<i32>) -> Error {
        let source = match raw {
            Some(n) => io::Error::from_raw_os_error(n),
            None => io::Error::other("no errno"),
        };
        Error::io("cannot read", source)
    }

    #[test]
    fn errno_of_file_system_outcomes() {
        assert_eq!(
            fs_err(ENOTEMPTY, "directory not empty").errno(),
            Some(ENOTEMPTY)
        );
        assert_eq!(io(Some(28)).errno(), Some(28)); // ENOSPC
        assert_eq!(io(None).errno(), Some(EIO));
        assert_eq!(Error::LogFailed("disk full".into()).errno(), Some(EIO));
        assert_eq!(Error::PacksFailed("disk full".into()).errno(), Some(EIO));
        // Damage of every kind reads as EIO.
        for damaged in [
            Error::SegmentAuthFailed { index: 3 },
            Error::PackMissing { pack: 1 },
            Error::PackCorrupt {
                pack: 1,
                offset: 0,
                reason: "bad tag".into(),
            },
            Error::LogCorrupt("cut".into()),
            Error::SnapshotCorrupt("cut".into()),
            Error::ConfigTampered("mac".into()),
            Error::HeaderTampered,
        ] {
            assert_eq!(damaged.class(), ErrorClass::Integrity, "{damaged}");
            assert_eq!(damaged.errno(), Some(EIO), "{damaged}");
        }
    }

    #[test]
    fn no_errno_for_what_is_not_a_file_system_outcome() {
        for e in [
            Error::WrongPassword,
            Error::WrongMasterKey,
            Error::WrongKey,
            Error::ConfigInvalid("json".into()),
            Error::UnsupportedConfigVersion(2),
            Error::InvalidParams("segment size".into()),
            Error::VaultExists(PathBuf::from("/v")),
            Error::Cancelled,
            Error::Internal("bug".into()),
            Error::BadMagic,
        ] {
            assert_eq!(e.errno(), None, "{e}");
            assert_eq!(e.errno_at_open(), None, "{e}");
        }
    }

    #[test]
    fn at_open_damage_has_no_errno_and_refusals_keep_theirs() {
        const EBUSY: i32 = 16;
        assert_eq!(fs_err(EBUSY, "in use").errno_at_open(), Some(EBUSY));
        assert_eq!(io(Some(13)).errno_at_open(), Some(13)); // EACCES
        assert_eq!(Error::LogFailed("x".into()).errno_at_open(), Some(EIO));
        for damaged in [
            Error::LogCorrupt("cut".into()),
            Error::ConfigTampered("mac".into()),
            Error::PackMissing { pack: 1 },
            Error::UnknownFeatures(vec!["x".into()]),
            Error::AllZero,
            Error::RolledBack("the vault ends at record 1".into()),
        ] {
            assert_eq!(damaged.errno_at_open(), None, "{damaged}");
        }
    }
}
