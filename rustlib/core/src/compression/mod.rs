//! Optional zstd compression of one segment; stored raw when it does not shrink.

use crate::error::{Error, Result};

/// Compress `data` into `scratch` (resized as needed). Returns the compressed
/// length if it is strictly smaller than the input, else `None` (store raw).
pub fn compress_segment(data: &[u8], level: i32, scratch: &mut Vec<u8>) -> Result<Option<usize>> {
    if data.is_empty() {
        return Ok(None);
    }
    // Only a strictly smaller result is kept, so the output never needs more
    // room than the input; zstd reports "destination too small" when it would.
    if scratch.len() < data.len() {
        scratch.resize(data.len(), 0);
    }
    match zstd::bulk::compress_to_buffer(data, &mut scratch[..data.len()], level) {
        Ok(n) if n < data.len() => Ok(Some(n)),
        _ => Ok(None),
    }
}

/// Decompress one segment, refusing output longer than `max_len`.
pub fn decompress_segment(data: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<()> {
    out.resize(max_len, 0);
    match zstd::bulk::decompress_to_buffer(data, &mut out[..]) {
        Ok(n) => {
            out.truncate(n);
            Ok(())
        }
        Err(e) => Err(Error::Compression(format!("undecodable zstd segment: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_and_incompressible() {
        let mut s = Vec::new();
        let text = vec![b'a'; 10000];
        let n = compress_segment(&text, 3, &mut s).unwrap().unwrap();
        assert!(n < 100);
        let mut out = Vec::new();
        decompress_segment(&s[..n], 10000, &mut out).unwrap();
        assert_eq!(out, text);
        let random: Vec<u8> = (0..10000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let _ = compress_segment(&random, 3, &mut s).unwrap();
        assert!(decompress_segment(&[1, 2, 3], 100, &mut out).is_err());
        // output larger than allowed is refused
        assert!(decompress_segment(&s[..n], 100, &mut out).is_err());
    }
}
