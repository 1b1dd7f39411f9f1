//! The config file: its fields, the vault's options, and reading, writing
//! and checking `fusefs.conf` (the layout is in the doc comment of
//! [`VaultConfig`] and FORMAT.md §6).

use super::text::{check_created, hex, hex_array};

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::constants::{
    DEFAULT_VAULT_SEGMENT_SIZE, KEY_CHECK_LEN, KEY_LEN, MAC_LEN, MAX_VAULT_SEGMENT_SIZE,
    MIN_VAULT_SEGMENT_SIZE, NONCE_LEN, SALT_LEN, TAG_LEN,
};
use crate::crypto::keys::SecretKey;
use crate::error::{Error, Result};
use crate::storage::durable::{read_small, write_durably};
use crate::storage::FileSystem;
use crate::types::{Argon2Params, Cipher};

/// Name of the config file inside the vault directory.
pub const CONFIG_FILE: &str = "fusefs.conf";
/// The config format version this code writes: the vault's format (1: the
/// first; 2: chained and padded log records, padded frames with nonces
/// from their generation, crash-safe generations). It reads both; a
/// version 1 vault is upgraded at its first read-write open with its
/// password (`vault::upgrade`).
pub const CONFIG_VERSION: u32 = 2;
/// The versions this code reads.
pub const CONFIG_VERSIONS: [u32; 2] = [1, 2];
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
pub(super) const MAX_CONFIG_LEN: u64 = 64 << 10;

pub(super) const SEALED_LEN: usize = KEY_LEN + TAG_LEN;
pub(super) const BINDING_DOMAIN: &[u8] = b"fusefs/vault/config";

/// HKDF info strings of the vault (FORMAT.md §6). `subkey` purposes are
/// prefixed with `fusefs/vault/`.
pub(super) mod info {
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
    pub(super) vault_id: [u8; VAULT_ID_LEN],
    pub(super) created: String,
    pub(super) cipher: Cipher,
    pub(super) segment_size: u32,
    pub(super) compression: Option<i32>,
    pub(super) features: Vec<String>,
    /// The format version (1 or 2).
    pub(super) version: u32,
    pub(super) kdf: Argon2Params,
    pub(super) salt: [u8; SALT_LEN],
    pub(super) password_check: [u8; KEY_CHECK_LEN],
    pub(super) nonce: [u8; NONCE_LEN],
    pub(super) sealed_master_key: [u8; SEALED_LEN],
    pub(super) master_key_check: [u8; KEY_CHECK_LEN],
    pub(super) config_mac: [u8; MAC_LEN],
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

impl VaultConfig {
    /// `dir/fusefs.conf`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CONFIG_FILE)
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
        // The copy after the file: a crash between leaves it missing, and
        // the first open writes it.
        crate::mirror::write_copy(fs, dir, CONFIG_FILE, config.encode().as_bytes())?;
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
                Some(v) if CONFIG_VERSIONS.iter().any(|&k| u64::from(k) == v) => {}
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
            version: j.version as u32,
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
            version: self.version.into(),
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

    /// The vault's format version (see [`CONFIG_VERSION`]).
    pub fn version(&self) -> u32 {
        self.version
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

/// The cheapest Argon2id costs, and a vault's options with them (the
/// config's unit tests).
#[cfg(test)]
pub(crate) const FAST: Argon2Params = Argon2Params {
    m_kib: 64,
    t: 1,
    p: 1,
};

#[cfg(test)]
pub(crate) fn options() -> VaultOptions {
    VaultOptions {
        argon2: FAST,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_parse_unlock() {
        let (c, master) = VaultConfig::generate(b"pw", &options()).unwrap();
        let parsed = VaultConfig::parse(c.encode().as_bytes()).unwrap();
        assert_eq!(parsed, c);
        assert_eq!(parsed.unlock(b"pw").unwrap().as_bytes(), master.as_bytes());
        assert!(matches!(parsed.unlock(b"px"), Err(Error::WrongPassword)));
    }

    /// Config rewrites go through the storage trait, so a crash can be put
    /// at every write of a password change: the config left behind always
    /// parses and unlocks with the old or the new password.
    #[test]
    fn a_password_change_crashed_at_any_write_leaves_a_config_that_unlocks() {
        use crate::storage::memfs::{Fault, MemFs};
        let opts = options();
        let dir = Path::new("/v");
        let make = || {
            let fs = MemFs::new();
            fs.create_dir_all(dir).unwrap();
            let (c, m) = VaultConfig::create(&fs, dir, b"old", &opts).unwrap();
            (fs, c, m)
        };
        let (probe, mut c, m) = make();
        let first = probe.writes();
        c.set_password(&probe, dir, &m, b"new", FAST).unwrap();
        assert!(probe.writes() > first);
        for nth in first + 1..=probe.writes() {
            for torn in [0, 10, 1000] {
                let (fs, mut c, m) = make();
                fs.set_fault(Some(Fault::Crash { nth }));
                assert!(c.set_password(&fs, dir, &m, b"new", FAST).is_err());
                let loaded = VaultConfig::load(&fs.after_crash(torn), dir).unwrap();
                assert!(loaded.unlock(b"old").is_ok(), "write {nth}, torn {torn}");
            }
        }
        let after = VaultConfig::load(&probe, dir).unwrap();
        assert!(after.unlock(b"new").is_ok());
        assert!(after.unlock(b"old").is_err());
    }
}
