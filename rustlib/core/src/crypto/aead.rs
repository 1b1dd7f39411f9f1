//! AEAD sealing and opening with AES-256-GCM or ChaCha20-Poly1305 (ring).
//!
//! ring keeps its expanded key schedule inside `LessSafeKey` and does not
//! zeroize it on drop; the raw key bytes we derive it from are zeroized.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use super::keys::SecretKey;
use crate::constants::{NONCE_LEN, TAG_LEN};
use crate::types::Cipher;

/// A key ready to seal and open; cheap to share between worker threads.
pub struct AeadKey {
    key: LessSafeKey,
}

/// Opening failed: the ciphertext, tag, nonce or AAD is not what was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthError;

impl AeadKey {
    pub fn new(cipher: Cipher, key: &SecretKey) -> Self {
        let alg = match cipher {
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        let unbound = UnboundKey::new(alg, key.as_bytes()).expect("32-byte key for a 256-bit AEAD");
        AeadKey {
            key: LessSafeKey::new(unbound),
        }
    }

    /// Encrypt `in_out` in place and return the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            .expect("segment lengths are far below the AEAD limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Encrypt the first `len` bytes of `buf` in place and append the tag.
    /// `buf` should have capacity for `len + TAG_LEN` to avoid reallocating.
    pub fn seal_append(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) {
        let tag = self.seal(nonce, aad, &mut buf[start..]);
        buf.extend_from_slice(&tag);
    }

    /// Decrypt `ciphertext ‖ tag` in place; returns the plaintext length.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, AuthError> {
        self.key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map(|p| p.len())
            .map_err(|_| AuthError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_both_ciphers() {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let k = AeadKey::new(cipher, &SecretKey::from_bytes([9; 32]));
            let nonce = [3u8; 12];
            let mut buf = b"hello segment".to_vec();
            k.seal_append(&nonce, b"aad", &mut buf, 0);
            assert_eq!(buf.len(), 13 + 16);
            let mut good = buf.clone();
            assert_eq!(k.open(&nonce, b"aad", &mut good), Ok(13));
            assert_eq!(&good[..13], b"hello segment");
            let mut bad_aad = buf.clone();
            assert_eq!(k.open(&nonce, b"aaD", &mut bad_aad), Err(AuthError));
            for i in 0..buf.len() {
                let mut flipped = buf.clone();
                flipped[i] ^= 0x10;
                assert_eq!(
                    k.open(&nonce, b"aad", &mut flipped),
                    Err(AuthError),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn aes_gcm_known_answer() {
        // NIST GCM test case 16-style check via a property: AES-256-GCM with an
        // all-zero key, nonce and empty plaintext yields the well-known tag
        // 530f8afbc74536b9a963b4f1c4cb738b.
        let k = AeadKey::new(Cipher::Aes256Gcm, &SecretKey::from_bytes([0; 32]));
        let tag = k.seal(&[0; 12], b"", &mut []);
        assert_eq!(
            tag,
            [
                0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45, 0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb,
                0x73, 0x8b
            ]
        );
    }
}
