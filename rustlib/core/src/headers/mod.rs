//! The 108-byte stream header shared by v1 and v2, and unlocking it.
//!
//! ```text
//! off len field
//!   0   6 magic "fusefs"
//!   6   1 format version (1 | 2)
//!   7   1 cipher (1 AES-256-GCM, 2 ChaCha20-Poly1305)
//!   8   1 key source (1 password/Argon2id, 2 raw key)
//!   9   1 flags (bit 0: segments may be zstd-compressed, v2 only)
//!  10   2 header length = 108 (u16 LE)
//!  12   4 segment size S (u32 LE), 4096..=16 MiB
//!  16  16 stream id
//!  32  16 Argon2id salt
//!  48   4 Argon2id m (KiB)   52 4 t   56 4 p   (all 0 for a raw key)
//!  60  16 key check = HKDF(master, stream id, "fusefs/stream/key-check")
//!  76  32 HMAC-SHA256(header MAC key, bytes 0..76)
//! ```

use crate::constants::*;
use crate::crypto::aead::AeadKey;
use crate::crypto::keys::{KeyMaterial, SecretKey};
use crate::crypto::{ct_eq, hmac_sha256, kdf, random};
use crate::error::{Error, Result};
use crate::types::{Argon2Params, Cipher, EncryptParams, Format, KeySource};

pub const FLAG_COMPRESSED: u8 = 0x01;

/// A parsed (structurally valid, not yet authenticated) header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    pub format: Format,
    pub cipher: Cipher,
    pub key_source: KeySource,
    pub flags: u8,
    pub segment_size: u32,
    pub stream_id: [u8; STREAM_ID_LEN],
    pub salt: [u8; SALT_LEN],
    pub argon2: Option<Argon2Params>,
    pub key_check: [u8; KEY_CHECK_LEN],
    pub mac: [u8; MAC_LEN],
}

/// The keys of one stream, derived from the master key and the stream id.
pub struct StreamKeys {
    pub payload: AeadKey,
    pub header_mac: [u8; MAC_LEN],
    pub checkpoint_mac: SecretKey,
}

fn payload_info(format: Format, cipher: Cipher) -> Vec<u8> {
    format!(
        "fusefs/stream/v{}/payload/{}",
        format.version(),
        cipher.name()
    )
    .into_bytes()
}

fn derive_keys(
    header: &StreamHeader,
    master: &SecretKey,
) -> (StreamKeys, [u8; KEY_CHECK_LEN], SecretKey) {
    let id = &header.stream_id;
    let payload = kdf::subkey(master, id, &payload_info(header.format, header.cipher));
    let mac_key = kdf::subkey(master, id, info::HEADER_MAC);
    let checkpoint_mac = kdf::subkey(master, id, info::CHECKPOINT_MAC);
    let mut check = [0u8; KEY_CHECK_LEN];
    kdf::hkdf_into(master, id, info::KEY_CHECK, &mut check);
    let keys = StreamKeys {
        payload: AeadKey::new(header.cipher, &payload),
        header_mac: header.mac,
        checkpoint_mac,
    };
    (keys, check, mac_key)
}

impl StreamHeader {
    /// A fresh header for `params` (random stream id and salt), sealed under
    /// the key derived from `material`; returns it with the stream's keys.
    pub fn create(
        params: &EncryptParams,
        material: &KeyMaterial,
    ) -> Result<(StreamHeader, StreamKeys)> {
        params.validate()?;
        let mut header = StreamHeader {
            format: params.format,
            cipher: params.cipher,
            key_source: material.source(),
            flags: if params.compression.is_some() {
                FLAG_COMPRESSED
            } else {
                0
            },
            segment_size: params.segment_size,
            stream_id: random::bytes()?,
            salt: random::bytes()?,
            argon2: match material {
                KeyMaterial::Password(_) => Some(params.argon2),
                KeyMaterial::Raw(_) => None,
            },
            key_check: [0; KEY_CHECK_LEN],
            mac: [0; MAC_LEN],
        };
        let master = kdf::master_key(material, &header.salt, params.argon2)?;
        let (_, check, mac_key) = derive_keys(&header, &master);
        header.key_check = check;
        header.mac = hmac_sha256(&mac_key, &header.encode()[..HEADER_MAC_OFFSET]);
        let (keys, _, _) = derive_keys(&header, &master);
        Ok((header, keys))
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..6].copy_from_slice(STREAM_MAGIC);
        b[6] = self.format.version();
        b[7] = self.cipher.id();
        b[8] = self.key_source.id();
        b[9] = self.flags;
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12..16].copy_from_slice(&self.segment_size.to_le_bytes());
        b[16..32].copy_from_slice(&self.stream_id);
        b[32..48].copy_from_slice(&self.salt);
        let a = self.argon2.unwrap_or(Argon2Params {
            m_kib: 0,
            t: 0,
            p: 0,
        });
        b[48..52].copy_from_slice(&a.m_kib.to_le_bytes());
        b[52..56].copy_from_slice(&a.t.to_le_bytes());
        b[56..60].copy_from_slice(&a.p.to_le_bytes());
        b[60..76].copy_from_slice(&self.key_check);
        b[76..108].copy_from_slice(&self.mac);
        b
    }

    /// Parse and check structure only; never panics on any input.
    pub fn parse(b: &[u8]) -> Result<StreamHeader> {
        if b.len() < HEADER_LEN {
            if !b.is_empty() && b.iter().all(|&x| x == 0) {
                return Err(Error::AllZero);
            }
            if b.len() >= 6 && &b[0..6] != STREAM_MAGIC {
                return Err(Error::BadMagic);
            }
            return Err(Error::TruncatedHeader(b.len()));
        }
        let b = &b[..HEADER_LEN];
        if b.iter().all(|&x| x == 0) {
            return Err(Error::AllZero);
        }
        if &b[0..6] != STREAM_MAGIC {
            return Err(Error::BadMagic);
        }
        let format = match b[6] {
            1 => Format::V1,
            2 => Format::V2,
            v => return Err(Error::UnsupportedVersion(v)),
        };
        let bad = |m: String| Err(Error::InvalidHeader(m));
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let Some(cipher) = Cipher::from_id(b[7]) else {
            return bad(format!("unknown cipher {}", b[7]));
        };
        let Some(key_source) = KeySource::from_id(b[8]) else {
            return bad(format!("unknown key source {}", b[8]));
        };
        let flags = b[9];
        let allowed = if format == Format::V2 {
            FLAG_COMPRESSED
        } else {
            0
        };
        if flags & !allowed != 0 {
            return bad(format!("unknown flags {flags:#04x}"));
        }
        let hlen = u16::from_le_bytes([b[10], b[11]]);
        if hlen as usize != HEADER_LEN {
            return bad(format!("header length {hlen}, expected {HEADER_LEN}"));
        }
        let segment_size = u32_at(12);
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return bad(format!("segment size {segment_size} out of range"));
        }
        let a = Argon2Params {
            m_kib: u32_at(48),
            t: u32_at(52),
            p: u32_at(56),
        };
        let argon2 = match key_source {
            KeySource::Password => {
                if a.validate().is_err() {
                    return bad(format!(
                        "Argon2id parameters out of range (m={}, t={}, p={})",
                        a.m_kib, a.t, a.p
                    ));
                }
                Some(a)
            }
            KeySource::RawKey => {
                if (a.m_kib, a.t, a.p) != (0, 0, 0) {
                    return bad("Argon2id parameters set for a raw-key stream".into());
                }
                None
            }
        };
        let mut h = StreamHeader {
            format,
            cipher,
            key_source,
            flags,
            segment_size,
            stream_id: [0; STREAM_ID_LEN],
            salt: [0; SALT_LEN],
            argon2,
            key_check: [0; KEY_CHECK_LEN],
            mac: [0; MAC_LEN],
        };
        h.stream_id.copy_from_slice(&b[16..32]);
        h.salt.copy_from_slice(&b[32..48]);
        h.key_check.copy_from_slice(&b[60..76]);
        h.mac.copy_from_slice(&b[76..108]);
        Ok(h)
    }

    /// Derive the keys from `material`, check the key check, then the MAC.
    pub fn unlock(&self, material: &KeyMaterial) -> Result<StreamKeys> {
        match (self.key_source, material) {
            (KeySource::Password, KeyMaterial::Raw(_)) => {
                return Err(Error::WrongKeyKind(
                    "this stream was encrypted with a password, not a key file",
                ))
            }
            (KeySource::RawKey, KeyMaterial::Password(_)) => {
                return Err(Error::WrongKeyKind(
                    "this stream was encrypted with a key file, not a password",
                ))
            }
            _ => {}
        }
        let master = kdf::master_key(material, &self.salt, self.argon2.unwrap_or_default())?;
        let (keys, check, mac_key) = derive_keys(self, &master);
        if !ct_eq(&check, &self.key_check) {
            return Err(Error::WrongKey);
        }
        let expect = hmac_sha256(&mac_key, &self.encode()[..HEADER_MAC_OFFSET]);
        if !ct_eq(&expect, &self.mac) {
            return Err(Error::HeaderTampered);
        }
        Ok(keys)
    }

    pub fn compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> EncryptParams {
        EncryptParams {
            argon2: Argon2Params {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_and_unlock() {
        let m = KeyMaterial::password(b"pw");
        let (h, _) = StreamHeader::create(&params(), &m).unwrap();
        let bytes = h.encode();
        let p = StreamHeader::parse(&bytes).unwrap();
        assert_eq!(p, h);
        assert!(p.unlock(&m).is_ok());
        assert!(matches!(
            p.unlock(&KeyMaterial::password(b"px")),
            Err(Error::WrongKey)
        ));
        assert!(matches!(
            p.unlock(&KeyMaterial::raw(&[0; 32]).unwrap()),
            Err(Error::WrongKeyKind(_))
        ));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let m = KeyMaterial::raw(&[4; 32]).unwrap();
        let (h, _) = StreamHeader::create(&params(), &m).unwrap();
        let bytes = h.encode();
        for i in 0..HEADER_LEN {
            for bit in 0..8 {
                let mut b = bytes;
                b[i] ^= 1 << bit;
                let r = StreamHeader::parse(&b).and_then(|h| h.unlock(&m).map(|_| ()));
                assert!(r.is_err(), "byte {i} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn malformed_inputs_give_typed_errors() {
        assert!(matches!(
            StreamHeader::parse(&[]),
            Err(Error::TruncatedHeader(0))
        ));
        assert!(matches!(StreamHeader::parse(&[0; 50]), Err(Error::AllZero)));
        assert!(matches!(
            StreamHeader::parse(&[0; 200]),
            Err(Error::AllZero)
        ));
        assert!(matches!(
            StreamHeader::parse(&[1; 200]),
            Err(Error::BadMagic)
        ));
        let m = KeyMaterial::raw(&[4; 32]).unwrap();
        let (h, _) = StreamHeader::create(&params(), &m).unwrap();
        let mut b = h.encode();
        b[6] = 7;
        assert!(matches!(
            StreamHeader::parse(&b),
            Err(Error::UnsupportedVersion(7))
        ));
        let b = h.encode();
        assert!(matches!(
            StreamHeader::parse(&b[..60]),
            Err(Error::TruncatedHeader(60))
        ));
        let mut b = h.encode();
        b[10] = 200;
        assert!(matches!(
            StreamHeader::parse(&b),
            Err(Error::InvalidHeader(_))
        ));
        let mut b = h.encode();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            StreamHeader::parse(&b),
            Err(Error::InvalidHeader(_))
        ));
    }
}
