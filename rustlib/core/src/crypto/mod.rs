//! Cryptographic primitives: AEAD sealing, key derivation, random nonces, digest.
//!
//! Everything secret lives in [`keys`] types that are zeroized on drop.

pub mod aead;
pub mod digest;
pub mod kdf;
pub mod keys;
pub mod random;

/// Compare two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
