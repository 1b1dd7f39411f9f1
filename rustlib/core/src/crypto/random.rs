//! Randomness from the OS CSPRNG (getrandom). Nonces, stream ids and salts come only from here.

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// Fill `buf` from the OS CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| Error::Internal("the OS random number generator failed".into()))
}

/// `N` fresh random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Ok(b)
}
