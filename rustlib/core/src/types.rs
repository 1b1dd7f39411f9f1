//! Plain value types shared by the whole crate: ciphers, formats, parameters.

use crate::constants::*;
use crate::error::{Error, Result};

/// AEAD cipher of a stream (header byte 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cipher {
    #[default]
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Cipher {
    pub fn id(self) -> u8 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        }
    }
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "aes-256-gcm" => Some(Cipher::Aes256Gcm),
            "chacha20-poly1305" => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }
}

/// Stream format version (header byte 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    V1,
    #[default]
    V2,
}

impl Format {
    pub fn version(self) -> u8 {
        match self {
            Format::V1 => 1,
            Format::V2 => 2,
        }
    }
}

/// Where the master key comes from (header byte 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Password,
    RawKey,
}

impl KeySource {
    pub fn id(self) -> u8 {
        match self {
            KeySource::Password => 1,
            KeySource::RawKey => 2,
        }
    }
    pub fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(KeySource::Password),
            2 => Some(KeySource::RawKey),
            _ => None,
        }
    }
}

/// Argon2id cost parameters, stored in the header of the data they protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params {
            m_kib: DEFAULT_ARGON2_M_KIB,
            t: DEFAULT_ARGON2_T,
            p: DEFAULT_ARGON2_P,
        }
    }
}

impl Argon2Params {
    pub fn validate(&self) -> Result<()> {
        let ok = (1..=MAX_ARGON2_P).contains(&self.p)
            && (1..=MAX_ARGON2_T).contains(&self.t)
            && self.m_kib >= 8 * self.p
            && self.m_kib <= MAX_ARGON2_M_KIB;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidParams(format!(
                "Argon2id parameters out of range (m={} KiB, t={}, p={})",
                self.m_kib, self.t, self.p
            )))
        }
    }
}

/// How many OS threads seal or open segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParallelismProfile {
    /// One worker per available core.
    #[default]
    Auto,
    /// Exactly one worker.
    Single,
    /// A fixed number of workers (at least one).
    Fixed(usize),
}

impl ParallelismProfile {
    pub fn threads(self) -> usize {
        match self {
            ParallelismProfile::Auto => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            ParallelismProfile::Single => 1,
            ParallelismProfile::Fixed(n) => n.max(1),
        }
    }
}

/// Everything that shapes an encrypted stream except the key.
#[derive(Debug, Clone, PartialEq)]
pub struct EncryptParams {
    pub format: Format,
    pub cipher: Cipher,
    /// Plaintext bytes per v2 segment or v1 chunk.
    pub segment_size: u32,
    /// zstd level per segment, or `None` for no compression (v2 only).
    pub compression: Option<i32>,
    /// Argon2id costs used when the key is a password.
    pub argon2: Argon2Params,
    /// Write a resume checkpoint after about this many input bytes (file
    /// outputs only; 0 disables checkpoints).
    pub checkpoint_bytes: u64,
}

impl Default for EncryptParams {
    fn default() -> Self {
        EncryptParams {
            format: Format::V2,
            cipher: Cipher::Aes256Gcm,
            segment_size: DEFAULT_SEGMENT_SIZE_V2,
            compression: None,
            argon2: Argon2Params::default(),
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
        }
    }
}

impl EncryptParams {
    /// Defaults for a format: v1 uses 64 KiB chunks, v2 1 MiB segments.
    pub fn for_format(format: Format) -> Self {
        let segment_size = match format {
            Format::V1 => DEFAULT_CHUNK_SIZE_V1,
            Format::V2 => DEFAULT_SEGMENT_SIZE_V2,
        };
        EncryptParams {
            format,
            segment_size,
            ..Default::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::InvalidParams(format!(
                "segment size {} out of range {}..={}",
                self.segment_size, MIN_SEGMENT_SIZE, MAX_SEGMENT_SIZE
            )));
        }
        if let Some(level) = self.compression {
            if self.format == Format::V1 {
                return Err(Error::InvalidParams(
                    "compression needs format v2 (v1 chunks are never compressed)".into(),
                ));
            }
            if !(1..=22).contains(&level) {
                return Err(Error::InvalidParams(format!(
                    "zstd level {level} out of range 1..=22"
                )));
            }
        }
        self.argon2.validate()
    }
}
