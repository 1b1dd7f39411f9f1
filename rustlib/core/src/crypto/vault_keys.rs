//! The vault's key hierarchy: every object of a vault (a log file, a
//! snapshot, a file's contents, the config MAC) has its own key, derived
//! from the master key and the object's random id (FORMAT.md §6.5).

use super::kdf;
use super::keys::SecretKey;

/// Purposes for [`subkey`]: the info string is `fusefs/vault/<purpose>`.
pub mod purpose {
    /// The config MAC key (salt: the vault id).
    pub const CONFIG_MAC: &str = "config-mac";
    /// One log file's records (salt: the log file's random id).
    pub const LOG: &str = "log";
    /// One metadata snapshot (salt: the snapshot's random id).
    pub const SNAPSHOT: &str = "snapshot";
    /// One file's contents (salt: the file's random id).
    pub const FILE: &str = "file";
}

/// A per-purpose 32-byte key: HKDF-SHA256(ikm = master, salt = `id`,
/// info = `fusefs/vault/<purpose>`). `id` is the random id of the object the
/// key protects, so every log file, snapshot and file has its own key.
pub fn subkey(master: &SecretKey, purpose: &str, id: &[u8; 16]) -> SecretKey {
    kdf::subkey(master, id, format!("fusefs/vault/{purpose}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_are_separated() {
        let m = SecretKey::from_bytes([1; 32]);
        let a = subkey(&m, purpose::LOG, &[2; 16]);
        assert_ne!(a.as_bytes(), subkey(&m, purpose::FILE, &[2; 16]).as_bytes());
        assert_ne!(a.as_bytes(), subkey(&m, purpose::LOG, &[3; 16]).as_bytes());
        let direct = kdf::subkey(&m, &[2; 16], b"fusefs/vault/log");
        assert_eq!(a.as_bytes(), direct.as_bytes());
    }
}
