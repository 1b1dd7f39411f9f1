//! The cache of per-file content keys, bounded.
//!
//! Deriving a file's key (HKDF, then the AEAD's key schedule) is cheap but
//! not free, so every file read or written keeps its key ready. Unbounded,
//! a long mount that touched a million files would keep a million keys in
//! memory; at [`MAX_FILE_KEYS`] the cache is emptied and fills again with
//! what is in use (clear-on-overflow: no bookkeeping on the hot path, and a
//! key dropped by mistake costs one derivation). A key in use elsewhere
//! (an `Arc` held by a read or write) lives until that ends.
//!
//! The raw subkey is zeroized as soon as the key schedule is made (see
//! [`crate::crypto::keys::SecretKey`]); ring's key schedule itself offers no
//! way to be wiped when dropped (see [`crate::crypto::aead`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::aead::AeadKey;
use crate::crypto::keys::SecretKey;
use crate::crypto::vault_keys::{purpose, subkey};
use crate::types::Cipher;

/// The content key of file `id`: `subkey(master, "file", id)` under the
/// vault's cipher (FORMAT.md §6.5).
pub fn derive(master: &SecretKey, cipher: Cipher, id: &[u8; 16]) -> AeadKey {
    AeadKey::new(cipher, &subkey(master, purpose::FILE, id))
}

/// At most this many file keys are cached: far more files than a workload
/// touches at once, a few MiB of key schedules at most.
pub const MAX_FILE_KEYS: usize = 4096;

/// The key of file `id` from `cache`, made with `derive` if not there.
pub fn get_or_derive(
    cache: &mut HashMap<[u8; 16], Arc<AeadKey>>,
    id: &[u8; 16],
    derive: impl FnOnce() -> AeadKey,
) -> Arc<AeadKey> {
    if let Some(key) = cache.get(id) {
        return Arc::clone(key);
    }
    if cache.len() >= MAX_FILE_KEYS {
        cache.clear();
        cache.shrink_to(MAX_FILE_KEYS);
    }
    Arc::clone(cache.entry(*id).or_insert_with(|| Arc::new(derive())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::SecretKey;
    use crate::types::Cipher;

    fn id(n: usize) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(n as u64).to_le_bytes());
        id
    }

    #[test]
    fn the_cache_never_holds_more_than_the_bound_and_reuses_keys() {
        let mut cache = HashMap::new();
        let mut derived = 0;
        let mut derive = || {
            derived += 1;
            AeadKey::new(Cipher::Aes256Gcm, &SecretKey::from_bytes([1; 32]))
        };
        let first = get_or_derive(&mut cache, &id(0), &mut derive);
        let again = get_or_derive(&mut cache, &id(0), &mut derive);
        assert!(Arc::ptr_eq(&first, &again));
        for n in 1..MAX_FILE_KEYS + 10 {
            get_or_derive(&mut cache, &id(n), &mut derive);
            assert!(cache.len() <= MAX_FILE_KEYS);
        }
        assert_eq!(derived, MAX_FILE_KEYS + 10);
        assert_eq!(cache.len(), 10, "emptied at the bound, then refilled");
        // A key still held by a caller outlives its eviction.
        assert!(!cache.contains_key(&id(0)));
        let mut buf = b"still works".to_vec();
        first.seal_append(&[0; 12], b"", &mut buf, 0);
    }
}
