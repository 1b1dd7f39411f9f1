//! The local state of one vault on this machine: how far its log was
//! durable here, the tag of that record (the chain head), and the newest
//! snapshot, kept *outside* the vault (in the user's state directory) so
//! that whoever can write the vault directory cannot quietly undo recent
//! changes by cutting, deleting or putting back older copies of its files.
//! An open compares what it finds with this ([`judgement`]).
//!
//! The file is `<vault id, 32 lowercase hex>.state` in a directory the
//! caller names (mode 0600, the directory 0700, created when missing). It
//! holds two 128-byte slots so that a write torn by a crash leaves the other
//! one whole; the newer valid slot wins:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic, ASCII `fusefsls` |
//! | 8 | 1 | version `1` |
//! | 9 | 7 | reserved, 0 |
//! | 16 | 8 | slot counter, u64 (the larger wins) |
//! | 24 | 16 | vault id |
//! | 40 | 8 | last durable sequence number, u64 (0: none) |
//! | 48 | 16 | chain head: the AEAD tag of that record |
//! | 64 | 8 | newest snapshot number, u64 (0: none) |
//! | 72 | 8 | that snapshot's `covers_seq`, u64 |
//! | 80 | 1 | flags: bit 0 = the vault was closed cleanly after that record |
//! | 81 | 15 | reserved, 0 |
//! | 96 | 32 | HMAC-SHA256 of bytes 0‥95 under `HKDF(master, salt = vault id, info = "fusefs/vault/local-state")` |
//!
//! Slot `counter % 2` is written, so a write never touches the slot that
//! holds the newest valid state. A slot whose magic, version, reserved
//! bytes, vault id or MAC is wrong is ignored.
//!
//! **Writes are cheap and not synced.** [`LocalState::note_durable`] runs
//! after every log sync, on the path of every `fsync` a user waits for: it
//! is one `pwrite` of one slot from the stack. Being behind is always safe
//! (a vault ahead of what was seen opens), so a crash that loses the last
//! notes costs protection of those records only; [`LocalState::close`] and
//! [`LocalState::adopt`] sync.
//!
//! **The local state never stops a vault.** Someone who can write the
//! user's state directory can do anything to that user anyway, so a
//! damaged or unreadable file is reported and protection starts again; a
//! write error (a read-only or full home) is remembered, reported once
//! ([`LocalState::take_write_problem`]), and turns writing off for the rest
//! of this open, leaving the file as it was: behind, hence still valid.

pub mod judgement;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::constants::{MAC_LEN, TAG_LEN};
use crate::crypto::keys::SecretKey;
use crate::crypto::{ct_eq, hmac_sha256, vault_keys};
use crate::error::describe_io;

/// The purpose of the MAC key ([`vault_keys::subkey`]: info
/// `fusefs/vault/local-state`, salt the vault id).
pub const PURPOSE: &str = "local-state";
/// Bytes of one slot; the file holds two.
pub const SLOT_LEN: usize = 128;
/// Length of the whole file.
pub const FILE_LEN: usize = 2 * SLOT_LEN;
const MAGIC: &[u8; 8] = b"fusefsls";
const VERSION: u8 = 1;
const MAC_OFFSET: usize = SLOT_LEN - MAC_LEN;
const FLAG_CLEAN: u8 = 1;

/// What this machine saw of a vault: the state one slot records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The last log record known durable here (0: none).
    pub seq: u64,
    /// The AEAD tag of record `seq` (the chain head).
    pub chain: [u8; TAG_LEN],
    /// The newest snapshot seen (0: none).
    pub snapshot: u64,
    /// What that snapshot covers.
    pub covers_seq: u64,
    /// The vault was closed cleanly after record `seq`.
    pub clean: bool,
}

/// What [`LocalState::open`] found in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A valid slot.
    Seen(Seen),
    /// No file, or one no slot of which was ever written whole (empty or
    /// all zero: created, then a crash before its first write was synced).
    Nothing,
    /// A file whose slots are both invalid.
    Damaged,
    /// A file that could not be read (the message says why).
    Unreadable(String),
}

/// The local state of one vault, opened for one session of it.
pub struct LocalState {
    path: PathBuf,
    dir: PathBuf,
    vault_id: [u8; 16],
    key: SecretKey,
    found: Found,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Open for writing from the first write on.
    file: Option<File>,
    /// What the file holds now (the last slot written, or what was found).
    current: Option<Seen>,
    /// Counter of the newest slot written or found.
    counter: u64,
    /// The first write error; no write is tried after one.
    failed: Option<String>,
    /// `failed` has not been handed out by `take_write_problem` yet.
    unreported: bool,
    /// The file was created this session: its directory entry needs a sync.
    created: bool,
}

impl LocalState {
    /// Read the local state of the vault `vault_id` from `dir`. Never fails:
    /// what was found (nothing, damage, an unreadable file) is in
    /// [`LocalState::found`], and nothing is written before the first note.
    pub fn open(dir: &Path, vault_id: &[u8; 16], master: &SecretKey) -> LocalState {
        let path = dir.join(file_name(vault_id));
        let key = vault_keys::subkey(master, PURPOSE, vault_id);
        let (found, counter) = match read_file(&path) {
            Ok(None) => (Found::Nothing, 0),
            Ok(Some(bytes)) => decode_file(&bytes, vault_id, &key),
            Err(e) => (
                Found::Unreadable(format!(
                    "cannot read {}: {}",
                    path.display(),
                    describe_io(&e)
                )),
                0,
            ),
        };
        let current = match &found {
            Found::Seen(seen) => Some(*seen),
            _ => None,
        };
        LocalState {
            path,
            dir: dir.to_path_buf(),
            vault_id: *vault_id,
            key,
            found,
            inner: Mutex::new(Inner {
                file: None,
                current,
                counter,
                failed: None,
                unreported: false,
                created: false,
            }),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the open found.
    pub fn found(&self) -> &Found {
        &self.found
    }

    /// What this machine saw of the vault before this open, if anything
    /// (what [`judgement::judge`] compares the vault with).
    pub fn seen(&self) -> Option<&Seen> {
        match &self.found {
            Found::Seen(seen) => Some(seen),
            _ => None,
        }
    }

    /// One line for the user when the file was there but is of no use
    /// (damaged or unreadable); `None` otherwise.
    pub fn problem_at_open(&self) -> Option<String> {
        match &self.found {
            Found::Damaged => Some(format!(
                "the local state of this vault ({}) is damaged; rollback protection starts again now",
                self.path.display()
            )),
            Found::Unreadable(why) => Some(format!(
                "the local state of this vault is unreadable ({why}); rollback protection starts again now"
            )),
            Found::Seen(_) | Found::Nothing => None,
        }
    }

    /// The sequence number up to which this machine knows the log was
    /// durable, hence acknowledged: a torn tail at or before it is not a
    /// crash's but damage (or a cut), and must not be cut off. 0 when
    /// nothing was seen. (A crash can lose the last notes, which are not
    /// synced: this errs low, never high.)
    pub fn acknowledged(&self) -> u64 {
        self.lock().current.map_or(0, |s| s.seq)
    }

    /// Log records up to `seq` are durable; `chain` is the tag of record
    /// `seq`. Called after every log sync: one `pwrite`, no sync.
    pub fn note_durable(&self, seq: u64, chain: [u8; TAG_LEN]) {
        let mut inner = self.lock();
        let mut seen = inner.current.unwrap_or_default();
        seen.seq = seq;
        seen.chain = chain;
        seen.clean = false;
        self.write(&mut inner, seen, false);
    }

    /// Snapshot `number`, covering the log up to `covers_seq`, is durable.
    pub fn note_snapshot(&self, number: u64, covers_seq: u64) {
        let mut inner = self.lock();
        let mut seen = inner.current.unwrap_or_default();
        seen.snapshot = number;
        seen.covers_seq = covers_seq;
        seen.clean = false;
        self.write(&mut inner, seen, false);
    }

    /// The vault as this open found it becomes what this machine saw, all
    /// fields at once, synced: after a verdict of [`judgement::Verdict::New`] or
    /// [`judgement::Verdict::Ok`] (a vault ahead moves the state forward), or a
    /// rollback the user accepted (which moves it back).
    pub fn adopt(&self, end: Seen) {
        let mut inner = self.lock();
        self.write(
            &mut inner,
            Seen {
                clean: false,
                ..end
            },
            true,
        );
    }

    /// The session ends: record whether the vault was closed cleanly after
    /// the last record noted, and sync the file (and its directory when it
    /// was created this session). Nothing is written when nothing was ever
    /// noted.
    pub fn close(&self, clean: bool) {
        let mut inner = self.lock();
        if let Some(seen) = inner.current {
            self.write(&mut inner, Seen { clean, ..seen }, true);
        }
        if inner.created && inner.failed.is_none() {
            inner.created = false;
            if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
                self.fail(&mut inner, &e);
            }
        }
    }

    /// The first write error of this session, once: one line saying that
    /// rollback protection is off until the next open.
    pub fn take_write_problem(&self) -> Option<String> {
        let mut inner = self.lock();
        if !inner.unreported {
            return None;
        }
        inner.unreported = false;
        inner.failed.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held cannot leave a slot half-made in
        // memory (the slot is built on the stack): the state is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write `seen` into the next slot (and sync it with `sync`).
    fn write(&self, inner: &mut Inner, seen: Seen, sync: bool) {
        if inner.failed.is_some() {
            return;
        }
        if inner.file.is_none() {
            match self.create() {
                Ok((file, created)) => {
                    inner.file = Some(file);
                    inner.created |= created;
                }
                Err(e) => return self.fail(inner, &e),
            }
        }
        let counter = inner.counter + 1;
        let slot = encode_slot(&self.vault_id, &self.key, counter, &seen);
        let offset = (counter % 2) * SLOT_LEN as u64;
        let file = inner.file.as_ref().expect("opened above");
        let outcome = file.write_all_at(&slot, offset).and_then(|()| match sync {
            true => file.sync_data(),
            false => Ok(()),
        });
        match outcome {
            Ok(()) => {
                inner.counter = counter;
                inner.current = Some(seen);
            }
            Err(e) => self.fail(inner, &e),
        }
    }

    /// Open the file for writing, creating it (and the directory) when
    /// missing; whether it was created.
    fn create(&self) -> io::Result<(File, bool)> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let open = |create: bool| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(create)
                .mode(0o600)
                .open(&self.path)
        };
        match open(true) {
            Ok(file) => Ok((file, true)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((open(false)?, false)),
            Err(e) => Err(e),
        }
    }

    fn fail(&self, inner: &mut Inner, e: &io::Error) {
        inner.file = None;
        inner.unreported = true;
        inner.failed = Some(format!(
            "cannot write the local state {}: {}; rollback protection is off until the vault is opened again",
            self.path.display(),
            describe_io(e)
        ));
    }
}

/// `<vault id as 32 lowercase hex digits>.state`.
pub fn file_name(vault_id: &[u8; 16]) -> String {
    let hex: String = vault_id.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.state")
}

/// The file's first [`FILE_LEN`] bytes; `None` when it does not exist.
fn read_file(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = vec![0u8; FILE_LEN];
    let mut len = 0;
    while len < FILE_LEN {
        match file.read_at(&mut bytes[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    Ok(Some(bytes))
}

/// What a file's bytes hold, and the counter of its newest valid slot.
fn decode_file(bytes: &[u8], vault_id: &[u8; 16], key: &SecretKey) -> (Found, u64) {
    let newest = bytes
        .chunks_exact(SLOT_LEN)
        .filter_map(|slot| decode_slot(slot, vault_id, key))
        .max_by_key(|(counter, _)| *counter);
    match newest {
        Some((counter, seen)) => (Found::Seen(seen), counter),
        None if bytes.iter().all(|&b| b == 0) => (Found::Nothing, 0),
        None => (Found::Damaged, 0),
    }
}

/// One slot's bytes (layout in the module doc).
pub fn encode_slot(
    vault_id: &[u8; 16],
    key: &SecretKey,
    counter: u64,
    seen: &Seen,
) -> [u8; SLOT_LEN] {
    let mut b = [0u8; SLOT_LEN];
    b[0..8].copy_from_slice(MAGIC);
    b[8] = VERSION;
    b[16..24].copy_from_slice(&counter.to_le_bytes());
    b[24..40].copy_from_slice(vault_id);
    b[40..48].copy_from_slice(&seen.seq.to_le_bytes());
    b[48..64].copy_from_slice(&seen.chain);
    b[64..72].copy_from_slice(&seen.snapshot.to_le_bytes());
    b[72..80].copy_from_slice(&seen.covers_seq.to_le_bytes());
    b[80] = if seen.clean { FLAG_CLEAN } else { 0 };
    let mac = hmac_sha256(key, &b[..MAC_OFFSET]);
    b[MAC_OFFSET..].copy_from_slice(&mac);
    b
}

/// A slot's counter and state; `None` for a slot to ignore.
fn decode_slot(b: &[u8], vault_id: &[u8; 16], key: &SecretKey) -> Option<(u64, Seen)> {
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let valid = b.len() == SLOT_LEN
        && &b[0..8] == MAGIC
        && b[8] == VERSION
        && b[9..16].iter().all(|&x| x == 0)
        && &b[24..40] == vault_id
        && b[80] & !FLAG_CLEAN == 0
        && b[81..MAC_OFFSET].iter().all(|&x| x == 0)
        && ct_eq(&hmac_sha256(key, &b[..MAC_OFFSET]), &b[MAC_OFFSET..]);
    valid.then(|| {
        let seen = Seen {
            seq: u64_at(40),
            chain: b[48..64].try_into().expect("16 bytes"),
            snapshot: u64_at(64),
            covers_seq: u64_at(72),
            clean: b[80] & FLAG_CLEAN != 0,
        };
        (u64_at(16), seen)
    })
}

#[cfg(test)]
mod tests;
