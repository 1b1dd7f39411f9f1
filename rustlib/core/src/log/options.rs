//! `LogOptions`: how a log is opened and written.

use std::path::PathBuf;

use super::format::{LogFormat, CHAIN_LEN, CHAIN_START};
use crate::types::Cipher;

#[derive(Clone, Debug)]
pub struct LogOptions {
    /// Start a new file once the active one reaches this size.
    pub rotate_bytes: u64,
    pub cipher: Cipher,
    /// The lowest sequence number new records may get (a snapshot covers
    /// everything before it, even if no log file is left).
    pub min_next_seq: u64,
    /// Where each log file's second copy is kept ([`crate::mirror`]); none
    /// if `None`.
    pub copies: Option<PathBuf>,
    /// Read past damage that neither copy mends (fsck's repair): the
    /// records lost are reported instead of failing the open.
    pub salvage: bool,
    /// Write nothing: replay cuts, removes, mends and refreshes nothing on
    /// disk (what it would change is used in memory only), no file is
    /// started, and appends are refused with `EROFS`.
    pub read_only: bool,
    /// The layout of the files read and written (the vault's format).
    pub format: LogFormat,
    /// Records up to this one were acknowledged durable on this machine
    /// (its local state, `vault::local_state`): damage there is never taken
    /// for a torn tail. 0: nothing known.
    pub acknowledged_seq: u64,
    /// The chain value of the state the log continues (a snapshot's, see
    /// [`super::cut::LogCut::chain`]; [`CHAIN_START`] for the empty vault; `None`
    /// where it is not known: a snapshot of format 1).
    pub chain_base: Option<[u8; CHAIN_LEN]>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            rotate_bytes: 64 << 20,
            cipher: Cipher::Aes256Gcm,
            min_next_seq: 1,
            copies: None,
            salvage: false,
            read_only: false,
            format: LogFormat::V2,
            chain_base: Some(CHAIN_START),
            acknowledged_seq: 0,
        }
    }
}
