//! The master key sealed under the password (FORMAT.md §6.2-§6.4): the
//! keys derived from the password, the binding of the vault's parameters
//! (B), the seal and the config MAC, unlocking, and the printed form of the
//! master key.

use super::file::*;
use std::path::Path;
use std::time::SystemTime;

use zeroize::{Zeroize, Zeroizing};

use crate::constants::{KEY_CHECK_LEN, KEY_LEN, MAC_LEN, NONCE_LEN, SALT_LEN};
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::crypto::vault_keys::{purpose, subkey};
use crate::crypto::{ct_eq, kdf, random};
use crate::error::{Error, Result};
use crate::storage::durable::write_durably;
use crate::storage::FileSystem;
use crate::types::{Argon2Params, Cipher};

use super::text::{hex, put_str, rfc3339_utc};

/// The keys derived from the password: the check value and the sealing key.
pub(super) struct PasswordKeys {
    check: [u8; KEY_CHECK_LEN],
    seal: AeadKey,
}

pub(super) fn password_keys(
    password: &[u8],
    salt: &[u8; SALT_LEN],
    kdf_params: Argon2Params,
    cipher: Cipher,
) -> Result<PasswordKeys> {
    let p = kdf::argon2id(password, salt, kdf_params)?;
    let mut check = [0u8; KEY_CHECK_LEN];
    kdf::hkdf_into(&p, salt, info::PASSWORD_CHECK, &mut check);
    let seal_key = kdf::subkey(&p, salt, info::MASTER_KEY_SEAL);
    Ok(PasswordKeys {
        check,
        seal: AeadKey::new(cipher, &seal_key),
    })
}

pub(super) fn master_key_check(master: &SecretKey) -> [u8; KEY_CHECK_LEN] {
    let mut check = [0u8; KEY_CHECK_LEN];
    kdf::hkdf_into(master, &[], info::MASTER_KEY_CHECK, &mut check);
    check
}

impl VaultConfig {
    /// A new config in memory: random vault id, master key, salt and nonce.
    /// Returns it with the master key. [`VaultConfig::create`] also writes it.
    pub fn generate(password: &[u8], options: &VaultOptions) -> Result<(VaultConfig, SecretKey)> {
        options.validate()?;
        let master = SecretKey::from_bytes(random::bytes()?);
        let mut config = VaultConfig {
            version: super::file::CONFIG_VERSION,
            vault_id: random::bytes()?,
            created: rfc3339_utc(SystemTime::now()),
            cipher: options.cipher,
            segment_size: options.segment_size,
            compression: options.compression,
            features: Vec::new(),
            kdf: options.argon2,
            salt: [0; SALT_LEN],
            password_check: [0; KEY_CHECK_LEN],
            nonce: [0; NONCE_LEN],
            sealed_master_key: [0; SEALED_LEN],
            master_key_check: master_key_check(&master),
            config_mac: [0; MAC_LEN],
        };
        config.config_mac = config.mac(&master);
        config.seal(&master, password, options.argon2)?;
        Ok((config, master))
    }

    /// B: the security-relevant parameters, byte by byte (see the struct docs).
    pub(super) fn binding(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(BINDING_DOMAIN);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.vault_id);
        b.push(self.cipher.id());
        b.extend_from_slice(&self.segment_size.to_le_bytes());
        match self.compression {
            None => b.extend_from_slice(&[0, 0]),
            // The level is 1..=22 (checked on parse and create).
            Some(level) => b.extend_from_slice(&[1, level as u8]),
        }
        put_str(&mut b, &self.created);
        b.extend_from_slice(&(self.features.len() as u32).to_le_bytes());
        for f in &self.features {
            put_str(&mut b, f);
        }
        b
    }

    /// B ‖ K: the AAD of the sealed master key.
    pub(super) fn seal_aad(&self) -> Vec<u8> {
        let mut aad = self.binding();
        aad.extend_from_slice(&self.kdf.m_kib.to_le_bytes());
        aad.extend_from_slice(&self.kdf.t.to_le_bytes());
        aad.extend_from_slice(&self.kdf.p.to_le_bytes());
        aad.extend_from_slice(&self.salt);
        aad
    }

    pub(super) fn mac(&self, master: &SecretKey) -> [u8; MAC_LEN] {
        let key = subkey(master, purpose::CONFIG_MAC, &self.vault_id);
        crate::crypto::hmac_sha256(&key, &self.binding())
    }

    /// This config at the current format version ([`CONFIG_VERSION`]),
    /// unlocked by `password` to `master`: the version is bound into the
    /// MAC and into the sealed master key's AAD, so both are made anew (a
    /// fresh salt and nonce, the same costs: one more key derivation).
    pub fn upgraded(&self, master: &SecretKey, password: &[u8]) -> Result<VaultConfig> {
        let mut c = self.clone();
        c.version = super::file::CONFIG_VERSION;
        c.config_mac = c.mac(master);
        c.seal(master, password, self.kdf)?;
        Ok(c)
    }

    /// Write [`VaultConfig::upgraded`] to the vault in `dir`, its copy
    /// first (as a password change does: a crash between leaves the old
    /// version in `fusefs.conf` and the upgrade not done; the next open
    /// rewrites the copy from it). Returns the new config.
    pub fn write_upgraded(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        master: &SecretKey,
        password: &[u8],
    ) -> Result<VaultConfig> {
        self.verify_master_key(master)?;
        let next = self.upgraded(master, password)?;
        let bytes = next.encode();
        crate::mirror::write_copy(fs, dir, super::file::CONFIG_FILE, bytes.as_bytes())?;
        write_durably(fs, &Self::path(dir), bytes.as_bytes())?;
        Ok(next)
    }

    /// Seal `master` under `password` with a fresh salt and nonce.
    pub(super) fn seal(
        &mut self,
        master: &SecretKey,
        password: &[u8],
        kdf_params: Argon2Params,
    ) -> Result<()> {
        kdf_params.validate()?;
        self.kdf = kdf_params;
        self.salt = random::bytes()?;
        self.nonce = random::bytes()?;
        let keys = password_keys(password, &self.salt, self.kdf, self.cipher)?;
        self.password_check = keys.check;
        let mut buf = Zeroizing::new([0u8; SEALED_LEN]);
        buf[..KEY_LEN].copy_from_slice(master.as_bytes());
        let tag = keys
            .seal
            .seal(&self.nonce, &self.seal_aad(), &mut buf[..KEY_LEN]);
        buf[KEY_LEN..].copy_from_slice(&tag);
        self.sealed_master_key = *buf;
        Ok(())
    }

    /// Unlock with the password: derive the password key, compare the
    /// password check (mismatch: [`Error::WrongPassword`]), open the sealed
    /// master key (fails: [`Error::ConfigTampered`]), then verify the master
    /// key check and the config MAC.
    pub fn unlock(&self, password: &[u8]) -> Result<SecretKey> {
        let keys = password_keys(password, &self.salt, self.kdf, self.cipher)?;
        if !ct_eq(&keys.check, &self.password_check) {
            return Err(Error::WrongPassword);
        }
        let mut buf = Zeroizing::new(self.sealed_master_key);
        keys.seal
            .open(&self.nonce, &self.seal_aad(), &mut buf[..])
            .map_err(|_| {
                Error::ConfigTampered(
                    "the sealed master key does not open with these fields".into(),
                )
            })?;
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&buf[..KEY_LEN]);
        let master = SecretKey::from_bytes(bytes);
        bytes.zeroize();
        self.verify_master_key(&master).map_err(|e| match e {
            Error::WrongMasterKey => {
                Error::ConfigTampered("master_key_check does not match the master key".into())
            }
            e => e,
        })?;
        Ok(master)
    }

    /// Unlock with the master key as [`print_master_key`] prints it (dashes,
    /// whitespace and case do not matter).
    pub fn unlock_with_master_key(&self, printed: &str) -> Result<SecretKey> {
        let master = parse_master_key(printed)?;
        self.verify_master_key(&master)?;
        Ok(master)
    }

    /// Check that `master` is this vault's master key
    /// ([`Error::WrongMasterKey`]) and that the config binding is intact
    /// ([`Error::ConfigTampered`]).
    pub fn verify_master_key(&self, master: &SecretKey) -> Result<()> {
        if !ct_eq(&master_key_check(master), &self.master_key_check) {
            return Err(Error::WrongMasterKey);
        }
        if !ct_eq(&self.mac(master), &self.config_mac) {
            return Err(Error::ConfigTampered(
                "config_mac does not match the vault's parameters".into(),
            ));
        }
        Ok(())
    }

    /// Re-seal the master key under `new_password` (fresh salt and nonce,
    /// Argon2id costs `kdf_params`) and replace `dir/fusefs.conf` atomically:
    /// temporary file, fsync, rename, fsync the directory. Nothing else in
    /// the config changes. `master` must be this vault's master key (e.g.
    /// from [`VaultConfig::unlock_with_master_key`] when the password is lost).
    pub fn set_password(
        &mut self,
        fs: &dyn FileSystem,
        dir: &Path,
        master: &SecretKey,
        new_password: &[u8],
        kdf_params: Argon2Params,
    ) -> Result<()> {
        self.verify_master_key(master)?;
        let mut next = self.clone();
        next.seal(master, new_password, kdf_params)?;
        // The copy first: a crash between leaves the old password in
        // `fusefs.conf` and the change unacknowledged; whichever the next
        // open unlocks, it rewrites the other from.
        let bytes = next.encode();
        crate::mirror::write_copy(fs, dir, super::file::CONFIG_FILE, bytes.as_bytes())?;
        write_durably(fs, &Self::path(dir), bytes.as_bytes())?;
        *self = next;
        Ok(())
    }
}

/// The master key for a user to write down: 64 lowercase hex digits in 8
/// dash-separated groups of 8 (`a1b2c3d4-…`).
pub fn print_master_key(master: &SecretKey) -> Zeroizing<String> {
    let digits = Zeroizing::new(hex(master.as_bytes()));
    let mut s = Zeroizing::new(String::with_capacity(71));
    for (i, group) in digits.as_bytes().chunks(8).enumerate() {
        if i > 0 {
            s.push('-');
        }
        s.push_str(std::str::from_utf8(group).expect("hex is ASCII"));
    }
    s
}

/// Read a printed master key: 64 hex digits in any case; dashes and
/// whitespace anywhere are ignored.
pub fn parse_master_key(printed: &str) -> Result<SecretKey> {
    let mut digits = Zeroizing::new(Vec::with_capacity(64));
    for c in printed.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let Some(d) = c.to_digit(16) else {
            return Err(Error::InvalidParams(format!(
                "a master key is 64 hex digits; {c:?} is not one"
            )));
        };
        digits.push(d as u8);
    }
    if digits.len() != 2 * KEY_LEN {
        return Err(Error::InvalidParams(format!(
            "a master key is 64 hex digits, got {}",
            digits.len()
        )));
    }
    let mut bytes = [0u8; KEY_LEN];
    for (b, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        *b = pair[0] << 4 | pair[1];
    }
    let key = SecretKey::from_bytes(bytes);
    bytes.zeroize();
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_layout() {
        let (mut c, _) = VaultConfig::generate(b"pw", &options()).unwrap();
        c.compression = Some(3);
        c.created = "2024-02-29T23:59:59Z".into();
        let b = c.binding();
        assert_eq!(&b[0..19], b"fusefs/vault/config");
        assert_eq!(&b[19..23], &[2, 0, 0, 0], "the format version");
        assert_eq!(&b[23..39], &c.vault_id);
        assert_eq!(b[39], 1);
        assert_eq!(&b[40..44], &(64u32 << 10).to_le_bytes());
        assert_eq!(&b[44..46], &[1, 3]);
        assert_eq!(&b[46..50], &[20, 0, 0, 0]);
        assert_eq!(&b[50..70], b"2024-02-29T23:59:59Z");
        assert_eq!(&b[70..74], &[0, 0, 0, 0]);
        assert_eq!(b.len(), 74);
        let aad = c.seal_aad();
        assert_eq!(&aad[..74], &b[..]);
        assert_eq!(&aad[74..86], &[64, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&aad[86..], &c.salt);
    }

    #[test]
    fn printed_master_key_forms() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0xa5;
        }
        let k = SecretKey::from_bytes(bytes);
        let printed = print_master_key(&k);
        assert_eq!(printed.len(), 71);
        assert_eq!(printed.split('-').count(), 8);
        assert!(printed.split('-').all(|g| g.len() == 8));
        assert_eq!(&printed[..8], &hex(&bytes[..4]));
        for form in [
            printed.to_string(),
            printed.replace('-', ""),
            printed.to_uppercase(),
            format!("  {}\n", printed.replace('-', " ")),
        ] {
            assert_eq!(
                parse_master_key(&form).unwrap().as_bytes(),
                &bytes,
                "{form}"
            );
        }
        for bad in ["", "xyz", &printed[..70], &format!("{}0", &*printed)] {
            assert!(matches!(
                parse_master_key(bad),
                Err(Error::InvalidParams(_))
            ));
        }
    }
}
