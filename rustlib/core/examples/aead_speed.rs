//! Raw AEAD speed of the backend on this machine, one core:
//! `cargo run -p crypto-core --release --example aead_speed`
use crypto_core::crypto::aead::AeadKey;
use crypto_core::crypto::keys::SecretKey;
use crypto_core::types::Cipher;
use std::time::Instant;

fn main() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let k = AeadKey::new(cipher, &SecretKey::from_bytes([1; 32]));
        for seg in [64 << 10, 1 << 20] {
            let mut buf = vec![7u8; seg];
            let total = 1usize << 30;
            let t = Instant::now();
            for i in 0..total / seg {
                let mut n = [0u8; 12];
                n[..8].copy_from_slice(&(i as u64).to_le_bytes());
                std::hint::black_box(k.seal(&n, b"aad", &mut buf));
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "{:>18} seg {:>8}: {:.0} MB/s",
                cipher.name(),
                seg,
                total as f64 / s / 1e6
            );
        }
    }
}
