//! Changing a vault's password (`fusefs passwd`): proving access with the
//! current password or the printed master key, then re-sealing the master
//! key under the new password with [`VaultConfig::set_password`]. Only
//! `fusefs.conf` changes; the log, snapshots and packs are not touched.

use std::path::Path;

use super::config::VaultConfig;
use crate::error::Result;
use crate::storage::FileSystem;
use crate::types::Argon2Params;

/// What proves the right to change a vault's password.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// The current password.
    Password(&'a [u8]),
    /// The master key as [`print_master_key`](super::config::print_master_key)
    /// prints it (the password is lost).
    MasterKey(&'a str),
}

/// Argon2id costs for a new password; `None` keeps the current value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KdfCosts {
    pub m_kib: Option<u32>,
    pub t: Option<u32>,
}

impl VaultConfig {
    /// Change the password: unlock with `credential`, then
    /// [`VaultConfig::set_password`] with `new_password` and the Argon2id
    /// costs `costs` (those unset, and the lanes, as they are now). A wrong
    /// credential changes nothing: [`Error::WrongPassword`],
    /// [`Error::WrongMasterKey`], or [`Error::InvalidParams`] for a printed
    /// key that is not one.
    ///
    /// [`Error::WrongPassword`]: crate::Error::WrongPassword
    /// [`Error::WrongMasterKey`]: crate::Error::WrongMasterKey
    /// [`Error::InvalidParams`]: crate::Error::InvalidParams
    pub fn change_password(
        &mut self,
        fs: &dyn FileSystem,
        dir: &Path,
        credential: Credential<'_>,
        new_password: &[u8],
        costs: KdfCosts,
    ) -> Result<()> {
        let master = match credential {
            Credential::Password(password) => self.unlock(password)?,
            Credential::MasterKey(printed) => self.unlock_with_master_key(printed)?,
        };
        let current = self.kdf();
        let kdf = Argon2Params {
            m_kib: costs.m_kib.unwrap_or(current.m_kib),
            t: costs.t.unwrap_or(current.t),
            p: current.p,
        };
        self.set_password(fs, dir, &master, new_password, kdf)
    }
}
