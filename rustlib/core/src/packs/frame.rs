//! Pack frames (FORMAT.md §8.2): seal a batch of one file's segments, open
//! one frame. The sealed payload inside is [`crate::sealed`]'s.
//!
//! ```text
//! pack frame (stored_len = body + 29 bytes):
//!   0 12 nonce (random, OS CSPRNG)
//!  12  1+B sealed (encoding ‖ body): encoding 0 = raw, 1 = zstd
//!  13+B 16 tag
//! key  = subkey(master, "file", file id)         (the file's content key)
//! AAD  = vault id (16) ‖ file id (16) ‖ segment index (u64) ‖
//!        generation (u64) ‖ plaintext length (u32)      = 52 bytes
//! ```

use crate::constants::{MAX_VAULT_SEGMENT_SIZE, NONCE_LEN};
use crate::crypto::aead::AeadKey;
use crate::crypto::random;
use crate::error::{Error, Result};
use crate::metadata::SegmentRef;
use crate::pipeline::for_each_split;
use crate::sealed::{
    self, DecodeError, Encoded, OpenError, Plaintext, BODY_OFFSET, ENCODING_RAW, ENCODING_ZSTD,
    PAYLOAD_OVERHEAD,
};

/// Bytes a pack frame adds to its body: nonce, encoding byte, tag.
pub const PACK_FRAME_OVERHEAD: usize = NONCE_LEN + PAYLOAD_OVERHEAD;
/// Length of a pack frame's AAD.
pub const PACK_FRAME_AAD_LEN: usize = 16 + 16 + 8 + 8 + 4;
/// Largest plaintext of one segment (the largest vault segment size).
pub const MAX_PLAIN_LEN: usize = MAX_VAULT_SEGMENT_SIZE as usize;

/// Below this many plaintext bytes in one call, sealing stays on the calling
/// thread. Measured with `examples/pack_bench.rs` on /dev/shm (2 cores):
/// 1 MiB calls write at 1.52 GB/s on one thread but 0.96-1.23 GB/s split over
/// two (spawning costs more than it saves); 4 MiB calls read at 4.3 GB/s in
/// parallel against 3.1 GB/s on one thread. Concurrent callers seal in
/// parallel anyway: sealing happens outside the store's lock.
const PARALLEL_MIN_BYTES: usize = 2 << 20;
/// At most this many threads ([`for_each_split`]'s) seal or open one call's
/// segments.
const MAX_THREADS: usize = 8;

/// One segment being sealed by `write_segments`.
struct SealJob<'a> {
    frame: &'a mut [u8],
    nonce: [u8; NONCE_LEN],
    aad: [u8; PACK_FRAME_AAD_LEN],
    encoding: u8,
    body: &'a [u8],
}

/// Seal `segments` (index, generation, plaintext) of one file as pack frames,
/// one after the other in one buffer, over `threads` threads: zstd at
/// `compression` where it is strictly smaller, then each frame sealed in
/// place. Returns the buffer and each frame's length.
pub(super) fn seal_pack_frames(
    key: &AeadKey,
    vault_id: &[u8; 16],
    file_id: &[u8; 16],
    segments: &[(u64, u64, &[u8])],
    compression: Option<i32>,
    threads: usize,
) -> Result<(Vec<u8>, Vec<usize>)> {
    let n = segments.len();

    // 1. Compress (when enabled; kept only when strictly smaller).
    let mut compressed: Vec<(&[u8], Option<Vec<u8>>)> =
        segments.iter().map(|s| (s.2, None)).collect();
    if let Some(level) = compression {
        for_each_split(threads, &mut compressed, |(plain, out)| {
            *out = sealed::compress_body(plain, level)?;
            Ok(())
        })?;
    }

    // 2. Seal every frame in place in one contiguous buffer.
    let sizes: Vec<usize> = compressed
        .iter()
        .map(|(p, c)| c.as_ref().map_or(p.len(), Vec::len) + PACK_FRAME_OVERHEAD)
        .collect();
    let mut out = vec![0u8; sizes.iter().sum()];
    let mut nonces = vec![0u8; NONCE_LEN * n];
    random::fill(&mut nonces)?;
    let mut jobs = Vec::with_capacity(n);
    let mut rest: &mut [u8] = &mut out;
    for (i, ((index, generation, plain), (_, c))) in segments.iter().zip(&compressed).enumerate() {
        let (frame, tail) = std::mem::take(&mut rest).split_at_mut(sizes[i]);
        rest = tail;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&nonces[i * NONCE_LEN..(i + 1) * NONCE_LEN]);
        let (encoding, body) = match c {
            Some(c) => (ENCODING_ZSTD, c.as_slice()),
            None => (ENCODING_RAW, *plain),
        };
        jobs.push(SealJob {
            frame,
            nonce,
            aad: pack_frame_aad(vault_id, file_id, *index, *generation, plain.len() as u32),
            encoding,
            body,
        });
    }
    for_each_split(threads, &mut jobs, |j| {
        seal_pack_frame(key, &j.nonce, &j.aad, j.encoding, j.body, j.frame);
        Ok(())
    })?;
    drop(jobs);
    Ok((out, sizes))
}

/// AAD of a frame: vault id ‖ file id ‖ index ‖ generation ‖ plaintext length.
pub fn pack_frame_aad(
    vault_id: &[u8; 16],
    file_id: &[u8; 16],
    index: u64,
    generation: u64,
    plain_len: u32,
) -> [u8; PACK_FRAME_AAD_LEN] {
    let mut a = [0u8; PACK_FRAME_AAD_LEN];
    a[0..16].copy_from_slice(vault_id);
    a[16..32].copy_from_slice(file_id);
    a[32..40].copy_from_slice(&index.to_le_bytes());
    a[40..48].copy_from_slice(&generation.to_le_bytes());
    a[48..52].copy_from_slice(&plain_len.to_le_bytes());
    a
}

/// Seal one frame into `frame` (exactly `body.len() + PACK_FRAME_OVERHEAD` bytes).
fn seal_pack_frame(
    key: &AeadKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    encoding: u8,
    body: &[u8],
    frame: &mut [u8],
) {
    debug_assert_eq!(frame.len(), body.len() + PACK_FRAME_OVERHEAD);
    frame[..NONCE_LEN].copy_from_slice(nonce);
    let at = NONCE_LEN + BODY_OFFSET;
    frame[at..at + body.len()].copy_from_slice(body);
    let body = Encoded {
        encoding,
        body_len: body.len(),
    };
    sealed::seal_in_place(key, nonce, aad, body, frame, NONCE_LEN);
}

/// Open a frame read from `r.pack` at `r.offset`; returns the plaintext.
pub(super) fn open_pack_frame(
    key: &AeadKey,
    vault_id: &[u8; 16],
    file_id: &[u8; 16],
    index: u64,
    r: &SegmentRef,
    mut frame: Vec<u8>,
) -> Result<Vec<u8>> {
    let corrupt = |reason: &str| Error::PackCorrupt {
        pack: r.pack,
        offset: r.offset,
        reason: reason.to_string(),
    };
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&frame[..NONCE_LEN]);
    let aad = pack_frame_aad(vault_id, file_id, index, r.generation, r.plain_len);
    let end = frame.len();
    let opened = sealed::open_in_place(key, &nonce, &aad, &mut frame, NONCE_LEN..end).map_err(
        |e| match e {
            OpenError::Auth => corrupt(
                "frame failed authentication (damaged, or not this version of this file's segment)",
            ),
            OpenError::Empty => corrupt("frame has no encoding byte"),
        },
    )?;
    let plain = r.plain_len as usize;
    match sealed::decode(&frame, &opened, plain, true) {
        Ok(Plaintext::InPlace(body)) => {
            if body.len() != plain {
                return Err(corrupt("raw frame of the wrong length"));
            }
            // The one copy: callers own their segment, at offset 0.
            frame.copy_within(body, 0);
            frame.truncate(plain);
            Ok(frame)
        }
        Ok(Plaintext::Decoded(out)) => {
            if out.len() != plain {
                return Err(corrupt("compressed frame of the wrong length"));
            }
            Ok(out)
        }
        Err(DecodeError::Zstd(e)) => Err(corrupt(&e.to_string())),
        // (Packs allow zstd: it is never refused as such.)
        Err(DecodeError::Unknown(_) | DecodeError::ZstdNotAllowed) => Err(corrupt(&format!(
            "unknown frame encoding {}",
            opened.encoding
        ))),
    }
}

/// How many threads to seal `n` segments of `bytes` plaintext bytes with.
pub(super) fn threads_for(n: usize, bytes: usize) -> usize {
    if n < 2 || bytes < PARALLEL_MIN_BYTES {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n)
        .min(MAX_THREADS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_layout() {
        let a = pack_frame_aad(&[1; 16], &[2; 16], 3, 4, 5);
        assert_eq!(a.len(), 52);
        assert_eq!(&a[..16], &[1; 16]);
        assert_eq!(&a[16..32], &[2; 16]);
        assert_eq!(&a[32..40], &3u64.to_le_bytes());
        assert_eq!(&a[40..48], &4u64.to_le_bytes());
        assert_eq!(&a[48..52], &5u32.to_le_bytes());
    }
}
