//! Any bytes as a checkpoint file: refused unless the MAC holds.
#![no_main]
use crypto_core::crypto::keys::SecretKey;
use crypto_core::recovery::checkpoint::ResumeCheckpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_bytes([7; 32]);
    if let Ok(c) = ResumeCheckpoint::decode(data, &key) {
        assert_eq!(&c.encode(&key)[..], data);
    }
});
