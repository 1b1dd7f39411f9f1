//! Optional zstd compression of one segment; stored raw when it does not shrink.

use crate::error::{Error, Result};

/// Compress `data` into `scratch` (resized as needed). Returns the compressed
/// length if it is strictly smaller than the input, else `None` (store raw).
pub fn compress_segment(data: &[u8], level: i32, scratch: &mut Vec<u8>) -> Result<Option<usize>> {
    if data.is_empty() {
        return Ok(None);
    }
    // Only a strictly smaller result is kept, so the output buffer never needs
    // to exceed the input; zstd reports "dst too small" when it would.
    scratch.clear();
    scratch.reserve(data.len());
    match zstd::bulk::compress_to_buffer(data, scratch, level) {
        Ok(n) if n < data.len() => Ok(Some(n)),
        Ok(_) => Ok(None),
        Err(_) => Ok(None),
    }
}

/// Decompress one segment, refusing output longer than `max_len`.
pub fn decompress_segment(data: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.reserve(max_len);
    zstd::bulk::decompress_to_buffer(data, out)
        .map(|_| ())
        .map_err(|e| Error::Compression(format!("undecodable zstd segment: {e}")))
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
        let random: Vec<u8> = (0..10000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let _ = compress_segment(&random, 3, &mut s).unwrap();
        assert!(decompress_segment(&[1, 2, 3], 100, &mut out).is_err());
        // output larger than allowed is refused
        assert!(decompress_segment(&s[..n], 100, &mut out).is_err());
    }
}
