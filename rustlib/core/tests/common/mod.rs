//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod memvault;
pub mod oracle;

use crypto_core::prelude::*;

pub const S: u32 = 4096;

pub fn raw_key() -> KeyMaterial {
    KeyMaterial::raw(&[0x42; 32]).unwrap()
}

pub fn fast_params(format: Format, cipher: Cipher, compression: Option<i32>) -> EncryptParams {
    EncryptParams {
        format,
        cipher,
        segment_size: S,
        compression,
        argon2: Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        checkpoint_bytes: 0,
    }
}

/// Deterministic, partly compressible test data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|i| {
            if (i / 1000) % 3 == 0 {
                b'a' + (i % 7) as u8
            } else {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }
        })
        .collect()
}

pub fn encrypt(plain: &[u8], key: &KeyMaterial, params: &EncryptParams) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt_stream(
        &mut &plain[..],
        &mut out,
        key,
        params,
        ParallelismProfile::Fixed(3),
        &Control::new(),
    )
    .unwrap();
    out
}

pub fn decrypt(stream: &[u8], key: &KeyMaterial) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decrypt_stream(
        &mut &stream[..],
        &mut out,
        key,
        ParallelismProfile::Fixed(3),
        &Control::new(),
    )?;
    Ok(out)
}

/// Split a v2 stream into (header, frames including the trailer).
pub fn v2_frames(stream: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let mut at = 108;
    while at < stream.len() {
        let p = u32::from_le_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        frames.push(stream[at..at + 41 + p].to_vec());
        at += 41 + p;
    }
    (stream[..108].to_vec(), frames)
}

pub fn join(header: &[u8], frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = header.to_vec();
    for f in frames {
        v.extend_from_slice(f);
    }
    v
}
