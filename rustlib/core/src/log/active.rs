//! The log file being appended to: its handle, key and counters, its
//! second copy ([`crate::mirror`]) and the space kept allocated past its
//! end; creating one, and closing one's copy.

use std::path::Path;

use super::format::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::crypto::random;
use crate::error::{io_at, Error, Result};
use crate::storage::{FileSystem, StorageFile};
use crate::types::Cipher;

/// Zero bytes kept written past the last record of the active log file,
/// renewed once half of them are used. Two reasons:
/// * a sync of new records then changes neither the file's size nor its
///   allocation, so `fdatasync` writes the records and flushes, without a
///   journal commit of the file's metadata (on ext4 about half the time of
///   a small fsync, measured by scripts/bench_sync.py);
/// * when the disk fills up, pack writes fail first and the log can still
///   record deletes, whose frames are then punched (`vault::reclaim`).
///   Without it a full vault could not record the very deletes that would
///   free it. A delete costs tens of bytes of log, so 1 MiB covers
///   thousands of them.
///
/// A reader takes the zeros for a torn tail that holds nothing (FORMAT.md
/// §7.3). A file no longer appended to is cut to its last record, durably,
/// before the next file is made (rotation) and at close
/// ([`ActiveFile::cut_reserve`]): only the last file ever ends in zeros.
pub const LOG_RESERVE_BYTES: u64 = 1 << 20;

pub(super) struct ActiveFile {
    pub(super) file: Box<dyn StorageFile>,
    pub(super) header: LogFileHeader,
    pub(super) key: AeadKey,
    /// Records written to this file so far (the next record's nonce).
    pub(super) records: u64,
    /// The tag of the last record written (the header's chain in before
    /// the first): what the next record's AAD commits to (version 2).
    pub(super) chain: [u8; CHAIN_LEN],
    /// Bytes written to this file so far.
    pub(super) len: u64,
    /// Its second copy, written the same bytes at the same offsets after
    /// the file itself, synced when the file is closed: the copy may lag
    /// a crash behind (replay rewrites it from the file), never lead.
    /// `None` once a write to it failed, until the next file.
    pub(super) copy: Option<Box<dyn StorageFile>>,
    /// End of the zeros written past `len` ([`LOG_RESERVE_BYTES`]): the
    /// file's length.
    pub(super) reserved_to: u64,
    /// A write to this file failed (and was cut off again): the next batch
    /// goes to a new file, under a new key, so no nonce is ever used twice.
    pub(super) broken: bool,
}

impl ActiveFile {
    /// Extend the reserve once less than half of it is left. Best effort: on
    /// a full disk the file goes on with what it has (and is cut back to
    /// it, so no half-written zeros hang past the reserve).
    pub(super) fn renew_reserve(&mut self) {
        if self.len + LOG_RESERVE_BYTES / 2 <= self.reserved_to {
            return;
        }
        let from = self.reserved_to.max(self.len);
        let to = self.len + LOG_RESERVE_BYTES;
        let zeros = vec![0u8; (to - from) as usize];
        match self.file.write_all_at(&zeros, from) {
            Ok(()) => self.reserved_to = to,
            Err(_) => {
                let _ = self.file.set_len(from);
            }
        }
    }

    /// Cut the file to its last record and make that durable: the file is
    /// not appended to any more (the next one is about to be made, or the
    /// log is closing), and only the last file may end in zeros.
    pub(super) fn cut_reserve(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.len)?;
        self.reserved_to = self.len;
        self.file.sync_data()
    }
}

/// Create log file `start.number` holding no record, durably, with its
/// copy, and close it (an upgrade's first file of format 2, §11).
pub fn create_empty_file(
    fs: &dyn FileSystem,
    dir: &Path,
    copies: Option<&Path>,
    vault_id: &[u8; 16],
    master: &SecretKey,
    cipher: Cipher,
    start: FileStart,
) -> Result<()> {
    let mut file = create_file(fs, dir, copies, vault_id, master, cipher, start)?;
    file.cut_reserve().map_err(io_at(
        "cannot write",
        &dir.join(LOG_FILE.file_name(file.header.number)),
    ))?;
    close_copy(fs, &mut file, copies);
    Ok(())
}

/// Make a closed file's copy durable (best effort: a copy that cannot be
/// written is rewritten from its file at the next open).
pub(super) fn close_copy(fs: &dyn FileSystem, active: &mut ActiveFile, copies: Option<&Path>) {
    if let (Some(copy), Some(dir)) = (active.copy.take(), copies) {
        let _ = copy.sync_data();
        let _ = fs.sync_dir(dir);
    }
}

/// Where a new log file starts: its number, first sequence number, the
/// chain value before its first record, and its layout.
pub struct FileStart {
    pub number: u64,
    pub first_seq: u64,
    pub chain_in: [u8; CHAIN_LEN],
    pub format: LogFormat,
}

/// Create log file `start.number`, write its header, and make it and its
/// name durable; start its copy in `copies`.
pub(super) fn create_file(
    fs: &dyn FileSystem,
    dir: &Path,
    copies: Option<&Path>,
    vault_id: &[u8; 16],
    master: &SecretKey,
    cipher: Cipher,
    start: FileStart,
) -> Result<ActiveFile> {
    let number = start.number;
    let path = dir.join(LOG_FILE.file_name(number));
    let header = LogFileHeader {
        format: start.format,
        vault_id: *vault_id,
        number,
        file_id: random::bytes()?,
        first_seq: start.first_seq,
        chain_in: start.chain_in,
    };
    let file = fs
        .create_new(&path)
        .map_err(io_at("cannot create", &path))?;
    file.write_all_at(&header.encode(), 0)
        .map_err(io_at("cannot write", &path))?;
    file.sync_data().map_err(io_at("cannot sync", &path))?;
    fs.sync_dir(dir).map_err(io_at("cannot sync", dir))?;
    let key = file_key(master, cipher, &header.file_id);
    let copy = copies.and_then(|c| {
        let p = c.join(LOG_FILE.file_name(number));
        let _ = fs.remove(&p);
        let f = fs.create_new(&p).ok()?;
        f.write_all_at(&header.encode(), 0).ok()?;
        Some(f)
    });
    let mut active = ActiveFile {
        file,
        header,
        key,
        records: 0,
        chain: header.chain_in,
        len: header.encoded_len() as u64,
        reserved_to: 0,
        broken: false,
        copy,
    };
    active.renew_reserve();
    Ok(active)
}

/// What appending to a log opened read-only gets.
pub(super) fn read_only() -> Error {
    crate::error::fs_err(
        crate::storage::readonly::EROFS,
        "the vault is open read-only",
    )
}
