//! Key material: what the user supplies and the master key derived from it.

use zeroize::{Zeroize, Zeroizing};

use super::secret_memory::SecretPage;
use crate::constants::KEY_LEN;
use crate::error::{Error, Result};
use crate::types::KeySource;

/// What the user supplies: a password (stretched with Argon2id) or a raw
/// 32-byte key. Zeroized on drop.
#[derive(Clone)]
pub enum KeyMaterial {
    Password(Zeroizing<Vec<u8>>),
    Raw(Zeroizing<[u8; KEY_LEN]>),
}

impl KeyMaterial {
    pub fn password(bytes: &[u8]) -> Self {
        KeyMaterial::Password(Zeroizing::new(bytes.to_vec()))
    }

    pub fn raw(bytes: &[u8]) -> Result<Self> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::InvalidParams(format!(
                "a raw key is exactly {KEY_LEN} bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(KeyMaterial::Raw(Zeroizing::new(key)))
    }

    pub fn source(&self) -> KeySource {
        match self {
            KeyMaterial::Password(_) => KeySource::Password,
            KeyMaterial::Raw(_) => KeySource::RawKey,
        }
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Password(_) => f.write_str("KeyMaterial::Password(..)"),
            KeyMaterial::Raw(_) => f.write_str("KeyMaterial::Raw(..)"),
        }
    }
}

/// A 32-byte secret key (master key or HKDF subkey), never printed. It
/// lives in a [`SecretPage`] of its own: out of core dumps, locked in RAM
/// where permitted, zeroed when dropped. A clone is another page.
pub struct SecretKey(SecretPage);

impl SecretKey {
    /// Copies `bytes` into a secret page and wipes this function's copy;
    /// callers wipe theirs.
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let mut page = SecretPage::new();
        page.as_mut_slice()[..KEY_LEN].copy_from_slice(&bytes);
        bytes.zeroize();
        SecretKey(page)
    }
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        self.0.as_slice()[..KEY_LEN]
            .try_into()
            .expect("a page holds a key")
    }
    /// Whether the key's page is locked in RAM (`mlock` permitted).
    pub fn is_locked(&self) -> bool {
        self.0.is_locked()
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        let mut page = SecretPage::new();
        page.as_mut_slice()[..KEY_LEN].copy_from_slice(self.as_bytes());
        SecretKey(page)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}
