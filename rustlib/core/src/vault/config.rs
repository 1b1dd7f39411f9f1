//! `fusefs.conf`: the vault's parameters and its master key sealed under the password.
//!
//! The layout is in the doc comment of [`VaultConfig`] and FORMAT.md §6.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::constants::{
    DEFAULT_VAULT_SEGMENT_SIZE, KEY_CHECK_LEN, KEY_LEN, MAC_LEN, MAX_VAULT_SEGMENT_SIZE,
    MIN_VAULT_SEGMENT_SIZE, NONCE_LEN, SALT_LEN, TAG_LEN,
};
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::crypto::vault_keys::{purpose, subkey};
use crate::crypto::{ct_eq, kdf, random};
use crate::error::{Error, Result};
use crate::storage::durable::{read_small, write_durably};
use crate::storage::FileSystem;
use crate::types::{Argon2Params, Cipher};

/// Name of the config file inside the vault directory.
pub const CONFIG_FILE: &str = "fusefs.conf";
/// The config format version this code writes and reads.
pub const CONFIG_VERSION: u32 = 1;
/// Feature flags this code understands (none yet).
pub const KNOWN_FEATURES: &[&str] = &[];
/// Length of the vault id.
pub const VAULT_ID_LEN: usize = 16;
/// Argon2id defaults for a vault: 64 MiB, 3 passes, 1 lane.
pub const DEFAULT_VAULT_ARGON2: Argon2Params = Argon2Params {
    m_kib: 64 * 1024,
    t: 3,
    p: 1,
};
/// A config is a few hundred bytes; anything far bigger is not one.
const MAX_CONFIG_LEN: u64 = 64 << 10;

const SEALED_LEN: usize = KEY_LEN + TAG_LEN;
const BINDING_DOMAIN: &[u8] = b"fusefs/vault/config";

/// HKDF info strings of the vault (FORMAT.md §6). `subkey` purposes are
/// prefixed with `fusefs/vault/`.
mod info {
    pub const PASSWORD_CHECK: &[u8] = b"fusefs/vault/password-check";
    pub const MASTER_KEY_SEAL: &[u8] = b"fusefs/vault/master-key-seal";
    pub const MASTER_KEY_CHECK: &[u8] = b"fusefs/vault/master-key-check";
}

/// What a new vault is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultOptions {
    pub cipher: Cipher,
    /// Plaintext bytes per segment: a power of two in 16 KiB..=1 MiB.
    pub segment_size: u32,
    /// zstd level 1..=22, or `None` for no compression.
    pub compression: Option<i32>,
    pub argon2: Argon2Params,
}

impl Default for VaultOptions {
    fn default() -> Self {
        VaultOptions {
            cipher: Cipher::Aes256Gcm,
            segment_size: DEFAULT_VAULT_SEGMENT_SIZE,
            compression: None,
            argon2: DEFAULT_VAULT_ARGON2,
        }
    }
}

impl VaultOptions {
    pub fn validate(&self) -> Result<()> {
        check_segment_size(self.segment_size.into()).map_err(Error::InvalidParams)?;
        if let Some(level) = self.compression {
            check_zstd_level(level.into()).map_err(Error::InvalidParams)?;
        }
        self.argon2.validate()
    }
}

fn check_segment_size(s: u64) -> std::result::Result<u32, String> {
    let ok = s.is_power_of_two()
        && (MIN_VAULT_SEGMENT_SIZE as u64..=MAX_VAULT_SEGMENT_SIZE as u64).contains(&s);
    if ok {
        Ok(s as u32)
    } else {
        Err(format!(
            "segment size {s} is not a power of two in {MIN_VAULT_SEGMENT_SIZE}..={MAX_VAULT_SEGMENT_SIZE}"
        ))
    }
}

fn check_zstd_level(level: i64) -> std::result::Result<i32, String> {
    if (1..=22).contains(&level) {
        Ok(level as i32)
    } else {
        Err(format!("zstd level {level} out of range 1..=22"))
    }
}

/// A parsed `fusefs.conf`. Parsing checks structure only;
/// [`VaultConfig::unlock`] and [`VaultConfig::unlock_with_master_key`]
/// authenticate it.
///
/// The file is pretty-printed JSON (2-space indent, fields in this order,
/// a final newline); FORMAT.md §6 is the reference. Byte strings are
/// lowercase hex.
///
/// ```text
/// field               JSON type  meaning
/// version             integer    config format version, 1
/// vault_id            string     16 random bytes (32 hex digits)
/// created             string     creation time, RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ"
/// cipher              string     "aes-256-gcm" | "chacha20-poly1305"
/// segment_size        integer    plaintext bytes per segment: a power of two, 16 KiB..=1 MiB
/// compression         object     {"algorithm": "none"} | {"algorithm": "zstd", "level": 1..=22}
/// features            [string]   feature flags; none are defined, any entry refuses to open
/// kdf                 object     {"algorithm": "argon2id", "m_kib", "t", "p": integers,
///                                 "salt": 16 bytes}   (Argon2 version 0x13, 32-byte output)
/// password_check      string     16 bytes = HKDF(P, salt, "fusefs/vault/password-check")
/// sealed_master_key   object     {"nonce": 12 bytes, "ciphertext": 48 bytes = 32 ‖ tag}
/// master_key_check    string     16 bytes = HKDF(M, no salt, "fusefs/vault/master-key-check")
/// config_mac          string     32 bytes = HMAC-SHA256(subkey(M, "config-mac", vault id), B)
/// ```
///
/// `P` = Argon2id(password, kdf.salt, m, t, p); `M` = the master key. The
/// master key is sealed with the vault's cipher under
/// `HKDF(P, kdf.salt, "fusefs/vault/master-key-seal")`, with AAD = `B ‖ K`:
///
/// ```text
/// B (config binding)                     K (KDF block, 28 bytes)
/// off  len  field                        off len field
///   0   19  ASCII "fusefs/vault/config"    0   4  m_kib, u32 LE
///  19    4  version, u32 LE                4   4  t, u32 LE
///  23   16  vault id                       8   4  p, u32 LE
///  39    1  cipher (1 AES-256-GCM,        12  16  salt
///             2 ChaCha20-Poly1305)
///  40    4  segment size, u32 LE
///  44    1  compression (0 none, 1 zstd)
///  45    1  zstd level (0 for none)
///  46    4  byte length L of created, u32 LE
///  50    L  created, ASCII
///  50+L  4  feature count N, u32 LE; then N × (u32 LE length ‖ UTF-8 bytes)
/// ```
///
/// Unlocking with a password checks, in order: the password check (mismatch:
/// wrong password), the seal (fails: the config was edited), the master key
/// check and the config MAC (mismatch: edited). Unlocking with the printed
/// master key checks the master key check (wrong master key), then the config
/// MAC (edited); it does not need the password fields, so it still works when
/// those are damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    vault_id: [u8; VAULT_ID_LEN],
    created: String,
    cipher: Cipher,
    segment_size: u32,
    compression: Option<i32>,
    features: Vec<String>,
    kdf: Argon2Params,
    salt: [u8; SALT_LEN],
    password_check: [u8; KEY_CHECK_LEN],
    nonce: [u8; NONCE_LEN],
    sealed_master_key: [u8; SEALED_LEN],
    master_key_check: [u8; KEY_CHECK_LEN],
    config_mac: [u8; MAC_LEN],
}

// The JSON as written: field order here is the order in the file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    version: u64,
    vault_id: String,
    created: String,
    cipher: String,
    segment_size: u64,
    compression: CompressionJson,
    features: Vec<String>,
    kdf: KdfJson,
    password_check: String,
    sealed_master_key: SealedJson,
    master_key_check: String,
    config_mac: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompressionJson {
    algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    algorithm: String,
    m_kib: u64,
    t: u64,
    p: u64,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedJson {
    nonce: String,
    ciphertext: String,
}

/// The keys derived from the password: the check value and the sealing key.
struct PasswordKeys {
    check: [u8; KEY_CHECK_LEN],
    seal: AeadKey,
}

fn password_keys(
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

fn master_key_check(master: &SecretKey) -> [u8; KEY_CHECK_LEN] {
    let mut check = [0u8; KEY_CHECK_LEN];
    kdf::hkdf_into(master, &[], info::MASTER_KEY_CHECK, &mut check);
    check
}

impl VaultConfig {
    /// `dir/fusefs.conf`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CONFIG_FILE)
    }

    /// A new config in memory: random vault id, master key, salt and nonce.
    /// Returns it with the master key. [`VaultConfig::create`] also writes it.
    pub fn generate(password: &[u8], options: &VaultOptions) -> Result<(VaultConfig, SecretKey)> {
        options.validate()?;
        let master = SecretKey::from_bytes(random::bytes()?);
        let mut config = VaultConfig {
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

    /// Create `dir/fusefs.conf` for a new vault and return the config and the
    /// master key. Refuses if the file already exists. The name is claimed
    /// with an exclusive create, then the content replaces it durably (a crash
    /// in between leaves an empty `fusefs.conf`, which [`VaultConfig::load`]
    /// reports as empty: delete it and create again).
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        password: &[u8],
        options: &VaultOptions,
    ) -> Result<(VaultConfig, SecretKey)> {
        let path = Self::path(dir);
        // Fail before the slow key derivation when we can.
        if fs.exists(&path) {
            return Err(Error::VaultExists(path));
        }
        let (config, master) = Self::generate(password, options)?;
        fs.create_new(&path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::VaultExists(path.clone()),
            _ => Error::io_path(format!("cannot create {}", path.display()), &path, e),
        })?;
        if let Err(e) = write_durably(fs, &path, config.encode().as_bytes()) {
            let _ = fs.remove(&path);
            return Err(e);
        }
        Ok((config, master))
    }

    /// Read and parse `dir/fusefs.conf` without a password: enough to show
    /// the vault's parameters. Nothing is authenticated yet.
    pub fn load(fs: &dyn FileSystem, dir: &Path) -> Result<VaultConfig> {
        let path = Self::path(dir);
        let io_err = |e| Error::io_path(format!("cannot read {}", path.display()), &path, e);
        match read_small(fs, &path, MAX_CONFIG_LEN).map_err(io_err)? {
            Some(bytes) => Self::parse(&bytes),
            None => Err(Error::ConfigInvalid(format!(
                "larger than {MAX_CONFIG_LEN} bytes"
            ))),
        }
    }

    /// Parse the bytes of a `fusefs.conf`. Checks, in order: JSON syntax, the
    /// version, the feature flags, then every field's type and range. Never
    /// panics on any input.
    pub fn parse(bytes: &[u8]) -> Result<VaultConfig> {
        let invalid = |m: String| Error::ConfigInvalid(m);
        if bytes.len() as u64 > MAX_CONFIG_LEN {
            return Err(invalid(format!("larger than {MAX_CONFIG_LEN} bytes")));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(invalid("the file is empty".into()));
        }
        // Version and features first, loosely, so that a newer config is
        // reported as such rather than as an unknown field.
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(invalid("not a JSON object".into()));
        };
        match object.get("version") {
            None => return Err(invalid("missing field `version`".into())),
            Some(v) => match v.as_u64() {
                Some(v) if v == u64::from(CONFIG_VERSION) => {}
                Some(v) => return Err(Error::UnsupportedConfigVersion(v)),
                None => return Err(invalid(format!("version {v} is not an integer"))),
            },
        }
        if let Some(serde_json::Value::Array(list)) = object.get("features") {
            let unknown: Vec<String> = list
                .iter()
                .filter_map(|f| f.as_str())
                .filter(|f| !KNOWN_FEATURES.contains(f))
                .map(str::to_owned)
                .collect();
            if !unknown.is_empty() {
                return Err(Error::UnknownFeatures(unknown));
            }
        }
        // Strict: every field present, no unknown or duplicate field.
        let j: ConfigJson = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        Self::from_json(j).map_err(invalid)
    }

    fn from_json(j: ConfigJson) -> std::result::Result<VaultConfig, String> {
        let cipher =
            Cipher::from_name(&j.cipher).ok_or_else(|| format!("unknown cipher {:?}", j.cipher))?;
        let segment_size = check_segment_size(j.segment_size)?;
        let compression = match (j.compression.algorithm.as_str(), j.compression.level) {
            ("none", None) => None,
            ("none", Some(_)) => return Err("compression \"none\" takes no level".into()),
            ("zstd", Some(level)) => Some(check_zstd_level(level)?),
            ("zstd", None) => return Err("compression \"zstd\" needs a level".into()),
            (other, _) => return Err(format!("unknown compression {other:?}")),
        };
        if j.kdf.algorithm != "argon2id" {
            return Err(format!("unknown key derivation {:?}", j.kdf.algorithm));
        }
        let u32_field = |name: &str, v: u64| {
            u32::try_from(v).map_err(|_| format!("kdf.{name} {v} out of range"))
        };
        let kdf = Argon2Params {
            m_kib: u32_field("m_kib", j.kdf.m_kib)?,
            t: u32_field("t", j.kdf.t)?,
            p: u32_field("p", j.kdf.p)?,
        };
        kdf.validate().map_err(|e| e.to_string())?;
        check_created(&j.created)?;
        Ok(VaultConfig {
            vault_id: hex_array("vault_id", &j.vault_id)?,
            created: j.created,
            cipher,
            segment_size,
            compression,
            features: j.features,
            kdf,
            salt: hex_array("kdf.salt", &j.kdf.salt)?,
            password_check: hex_array("password_check", &j.password_check)?,
            nonce: hex_array("sealed_master_key.nonce", &j.sealed_master_key.nonce)?,
            sealed_master_key: hex_array(
                "sealed_master_key.ciphertext",
                &j.sealed_master_key.ciphertext,
            )?,
            master_key_check: hex_array("master_key_check", &j.master_key_check)?,
            config_mac: hex_array("config_mac", &j.config_mac)?,
        })
    }

    /// The file's text: pretty-printed JSON and a final newline.
    pub fn encode(&self) -> String {
        let j = ConfigJson {
            version: CONFIG_VERSION.into(),
            vault_id: hex(&self.vault_id),
            created: self.created.clone(),
            cipher: self.cipher.name().into(),
            segment_size: self.segment_size.into(),
            compression: CompressionJson {
                algorithm: if self.compression.is_some() {
                    "zstd"
                } else {
                    "none"
                }
                .into(),
                level: self.compression.map(i64::from),
            },
            features: self.features.clone(),
            kdf: KdfJson {
                algorithm: "argon2id".into(),
                m_kib: self.kdf.m_kib.into(),
                t: self.kdf.t.into(),
                p: self.kdf.p.into(),
                salt: hex(&self.salt),
            },
            password_check: hex(&self.password_check),
            sealed_master_key: SealedJson {
                nonce: hex(&self.nonce),
                ciphertext: hex(&self.sealed_master_key),
            },
            master_key_check: hex(&self.master_key_check),
            config_mac: hex(&self.config_mac),
        };
        let mut s = serde_json::to_string_pretty(&j).expect("plain strings and integers");
        s.push('\n');
        s
    }

    /// B: the security-relevant parameters, byte by byte (see the struct docs).
    fn binding(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(BINDING_DOMAIN);
        b.extend_from_slice(&CONFIG_VERSION.to_le_bytes());
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
    fn seal_aad(&self) -> Vec<u8> {
        let mut aad = self.binding();
        aad.extend_from_slice(&self.kdf.m_kib.to_le_bytes());
        aad.extend_from_slice(&self.kdf.t.to_le_bytes());
        aad.extend_from_slice(&self.kdf.p.to_le_bytes());
        aad.extend_from_slice(&self.salt);
        aad
    }

    fn mac(&self, master: &SecretKey) -> [u8; MAC_LEN] {
        let key = subkey(master, purpose::CONFIG_MAC, &self.vault_id);
        crate::crypto::hmac_sha256(&key, &self.binding())
    }

    /// Seal `master` under `password` with a fresh salt and nonce.
    fn seal(
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
        write_durably(fs, &Self::path(dir), next.encode().as_bytes())?;
        *self = next;
        Ok(())
    }

    pub fn version(&self) -> u32 {
        CONFIG_VERSION
    }
    pub fn vault_id(&self) -> &[u8; VAULT_ID_LEN] {
        &self.vault_id
    }
    /// Creation time, RFC 3339 UTC (`2025-01-31T12:00:00Z`).
    pub fn created(&self) -> &str {
        &self.created
    }
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }
    /// The zstd level, or `None` when segments are not compressed.
    pub fn compression(&self) -> Option<i32> {
        self.compression
    }
    pub fn features(&self) -> &[String] {
        &self.features
    }
    pub fn kdf(&self) -> Argon2Params {
        self.kdf
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

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Exactly `2 N` lowercase hex digits.
fn hex_array<const N: usize>(field: &str, s: &str) -> std::result::Result<[u8; N], String> {
    let bad = || format!("{field} is not {} lowercase hex digits", 2 * N);
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    if s.len() != 2 * N {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        *o = digit(pair[0]).ok_or_else(bad)? << 4 | digit(pair[1]).ok_or_else(bad)?;
    }
    Ok(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time (the epoch for a time before it).
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The exact form [`rfc3339_utc`] writes, with fields in range.
fn check_created(s: &str) -> std::result::Result<(), String> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(u32::MAX);
    let ok = shape_ok
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "created {s:?} is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Argon2Params = Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn options() -> VaultOptions {
        VaultOptions {
            argon2: FAST,
            ..Default::default()
        }
    }

    #[test]
    fn generate_parse_unlock() {
        let (c, master) = VaultConfig::generate(b"pw", &options()).unwrap();
        let parsed = VaultConfig::parse(c.encode().as_bytes()).unwrap();
        assert_eq!(parsed, c);
        assert_eq!(parsed.unlock(b"pw").unwrap().as_bytes(), master.as_bytes());
        assert!(matches!(parsed.unlock(b"px"), Err(Error::WrongPassword)));
    }

    #[test]
    fn binding_layout() {
        let (mut c, _) = VaultConfig::generate(b"pw", &options()).unwrap();
        c.compression = Some(3);
        c.created = "2024-02-29T23:59:59Z".into();
        let b = c.binding();
        assert_eq!(&b[0..19], b"fusefs/vault/config");
        assert_eq!(&b[19..23], &[1, 0, 0, 0]);
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
    fn rfc3339_known_dates() {
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(at(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59Z");
        for s in [0, 951_782_400, 1_709_251_199, 253_402_300_799] {
            check_created(&at(s)).unwrap();
        }
        for bad in [
            "",
            "2024-02-29 23:59:59Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T00:00:00.5Z",
            "२०२४-01-01T00:00:00Z",
        ] {
            assert!(check_created(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hex_strict() {
        assert_eq!(hex(&[0x01, 0xab, 0xff]), "01abff");
        assert_eq!(hex_array::<3>("f", "01abff").unwrap(), [0x01, 0xab, 0xff]);
        for bad in ["01ABff", "01abf", "01abfff", "01abgf", "01ab é"] {
            assert!(hex_array::<3>("f", bad).is_err(), "{bad}");
        }
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

    /// Config rewrites go through the storage trait, so a crash can be put
    /// at every write of a password change: the config left behind always
    /// parses and unlocks with the old or the new password.
    #[test]
    fn a_password_change_crashed_at_any_write_leaves_a_config_that_unlocks() {
        use crate::storage::memfs::{Fault, MemFs};
        let fast = Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let opts = VaultOptions {
            argon2: fast,
            ..Default::default()
        };
        let dir = Path::new("/v");
        let make = || {
            let fs = MemFs::new();
            fs.create_dir_all(dir).unwrap();
            let (c, m) = VaultConfig::create(&fs, dir, b"old", &opts).unwrap();
            (fs, c, m)
        };
        let (probe, mut c, m) = make();
        let first = probe.writes();
        c.set_password(&probe, dir, &m, b"new", fast).unwrap();
        assert!(probe.writes() > first);
        for nth in first + 1..=probe.writes() {
            for torn in [0, 10, 1000] {
                let (fs, mut c, m) = make();
                fs.set_fault(Some(Fault::Crash { nth }));
                assert!(c.set_password(&fs, dir, &m, b"new", fast).is_err());
                let loaded = VaultConfig::load(&fs.after_crash(torn), dir).unwrap();
                assert!(loaded.unlock(b"old").is_ok(), "write {nth}, torn {torn}");
            }
        }
        let after = VaultConfig::load(&probe, dir).unwrap();
        assert!(after.unlock(b"new").is_ok());
        assert!(after.unlock(b"old").is_err());
    }
}
