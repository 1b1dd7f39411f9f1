//! Cryptographic primitives: AEAD sealing, key derivation (and the vault's
//! key hierarchy, [`vault_keys`]), random nonces, digest.
//!
//! Everything secret lives in [`keys`] types that are zeroized on drop;
//! keys in pages of their own ([`secret_memory`]), out of core dumps.

pub mod aead;
pub mod digest;
pub mod kdf;
pub mod kdf_memory;
pub mod kdf_policy;
pub mod keys;
pub mod random;
pub mod secret_memory;
pub mod vault_keys;

/// HMAC-SHA256 of `data` under `key`: header, checkpoint and config MACs.
pub fn hmac_sha256(key: &keys::SecretKey, data: &[u8]) -> [u8; crate::constants::MAC_LEN] {
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes()),
        data,
    );
    let mut out = [0u8; crate::constants::MAC_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Compare two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
