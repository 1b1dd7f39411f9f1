//! Pack frames (FORMAT.md §8.2): seal a batch of one file's segments, open
//! one frame. The sealed payload inside is [`crate::sealed`]'s.
//!
//! ```text
//! pack frame, format 1 (generation ≤ the state's legacy generation high;
//! stored_len = body + 29 bytes):
//!   0 12 nonce (random, OS CSPRNG)
//!  12  1+B sealed (encoding ‖ body): encoding 0 = raw, 1 = zstd
//!  13+B 16 tag
//! pack frame, format 2 (generation above it; stored_len = T + 16):
//!   0  T sealed (encoding ‖ body length B (u32) ‖ body ‖ zeros to T bytes)
//!   T 16 tag
//!   nonce = generation (u64 LE) ‖ 0u32: generations are unique in the
//!   vault and never reused, even across crashes (ReserveGenerations), so
//!   no nonce repeats under a file's key, and there is no bound on frames
//!   per key; T = `padded_frame_len` (B, segment size): a bucket, not B.
//! key  = subkey(master, "file", file id)         (the file's content key)
//! AAD  = vault id (16) ‖ file id (16) ‖ segment index (u64) ‖
//!        generation (u64) ‖ plaintext length (u32)      = 52 bytes
//! ```

use crate::constants::{MAX_VAULT_SEGMENT_SIZE, NONCE_LEN, TAG_LEN};
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
    v2: bool,
}

/// How frames are laid out: by generation (format 1 up to `legacy_high`,
/// format 2 above), and format 2's padding bound (the segment size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    pub legacy_high: u64,
    pub segment_size: u32,
}

impl FrameLayout {
    /// Every frame in format 1 (a vault of format 1).
    pub const V1: FrameLayout = FrameLayout {
        legacy_high: u64::MAX,
        segment_size: MAX_VAULT_SEGMENT_SIZE,
    };

    pub fn is_v2(&self, generation: u64) -> bool {
        generation > self.legacy_high
    }
}

/// The sealed length (before the tag) of a format 2 frame with a body of
/// `body_len` bytes in a vault of `segment_size`: 5 + `body_len` rounded up
/// to a multiple of max(256, 2^(⌊log2(5 + body_len)⌋ − 4)), at most
/// 5 + `segment_size` (a full raw segment is never padded). The overhead
/// is at most 1/16 (beyond a 256-byte floor), and a frame's length tells
/// one of about 16 lengths per doubling, not the write's size.
pub fn padded_frame_len(body_len: usize, segment_size: u32) -> usize {
    let n = 5 + body_len;
    let grain = (1usize << (usize::BITS - 1 - n.leading_zeros()).saturating_sub(4)).max(256);
    (n.div_ceil(grain) * grain)
        .min(5 + segment_size as usize)
        .max(n)
}

/// The nonce of a format 2 frame: its generation, little-endian, then zeros.
pub fn frame_nonce(generation: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&generation.to_le_bytes());
    n
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
    layout: FrameLayout,
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
        .zip(segments)
        .map(|((p, c), (_, generation, _))| {
            let body = c.as_ref().map_or(p.len(), Vec::len);
            match layout.is_v2(*generation) {
                true => padded_frame_len(body, layout.segment_size) + TAG_LEN,
                false => body + PACK_FRAME_OVERHEAD,
            }
        })
        .collect();
    let mut out = vec![0u8; sizes.iter().sum()];
    // Random nonces for format-1 frames only (format 2's is the generation).
    let mut nonces = vec![0u8; NONCE_LEN * n];
    if segments.iter().any(|s| !layout.is_v2(s.1)) {
        random::fill(&mut nonces)?;
    }
    let mut jobs = Vec::with_capacity(n);
    let mut rest: &mut [u8] = &mut out;
    for (i, ((index, generation, plain), (_, c))) in segments.iter().zip(&compressed).enumerate() {
        let (frame, tail) = std::mem::take(&mut rest).split_at_mut(sizes[i]);
        rest = tail;
        let v2 = layout.is_v2(*generation);
        let mut nonce = frame_nonce(*generation);
        if !v2 {
            nonce.copy_from_slice(&nonces[i * NONCE_LEN..(i + 1) * NONCE_LEN]);
        }
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
            v2,
        });
    }
    for_each_split(threads, &mut jobs, |j| {
        match j.v2 {
            true => seal_frame_v2(key, &j.nonce, &j.aad, j.encoding, j.body, j.frame),
            false => seal_pack_frame(key, &j.nonce, &j.aad, j.encoding, j.body, j.frame),
        }
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

/// Seal one format 2 frame into `frame` (exactly T + 16 bytes): encoding
/// ‖ body length ‖ body ‖ zeros, sealed in place, then the tag.
fn seal_frame_v2(
    key: &AeadKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    encoding: u8,
    body: &[u8],
    frame: &mut [u8],
) {
    let t = frame.len() - TAG_LEN;
    frame[0] = encoding;
    frame[1..5].copy_from_slice(&(body.len() as u32).to_le_bytes());
    frame[5..5 + body.len()].copy_from_slice(body);
    frame[5 + body.len()..t].fill(0);
    let tag = key.seal(nonce, aad, &mut frame[..t]);
    frame[t..].copy_from_slice(&tag);
}

/// Open a frame read from `r.pack` at `r.offset` (laid out as `layout`
/// says for its generation); returns the plaintext.
pub(super) fn open_pack_frame(
    key: &AeadKey,
    vault_id: &[u8; 16],
    file_id: &[u8; 16],
    index: u64,
    r: &SegmentRef,
    layout: FrameLayout,
    mut frame: Vec<u8>,
) -> Result<Vec<u8>> {
    match open_frame_in_place(key, vault_id, file_id, index, r, layout, &mut frame)? {
        FrameBody::InPlace(body) => {
            // The one copy: callers own their segment, at offset 0.
            frame.copy_within(body, 0);
            frame.truncate(r.plain_len as usize);
            Ok(frame)
        }
        FrameBody::Decoded(out) => Ok(out),
    }
}

/// Where an opened frame's plaintext is (see [`open_frame_in_place`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FrameBody {
    /// Raw: the plaintext lies in the frame's buffer, here (always
    /// [`body_lead`] bytes from the frame's start, `r.plain_len` long).
    InPlace(std::ops::Range<usize>),
    /// zstd: the decompressed plaintext.
    Decoded(Vec<u8>),
}

/// Bytes before the body of a raw frame of `generation`: the nonce and the
/// encoding byte (format 1), or the encoding byte and the body length
/// (format 2). A reader that wants a raw body at some place in its buffer
/// reads the frame this many bytes before it (`PackStore::read_segments_into`).
pub(super) fn body_lead(layout: FrameLayout, generation: u64) -> usize {
    match layout.is_v2(generation) {
        true => V2_HEADER_LEN,
        false => NONCE_LEN + BODY_OFFSET,
    }
}

/// The most [`body_lead`] can be.
pub(super) const MAX_BODY_LEAD: usize = NONCE_LEN + BODY_OFFSET;

/// A format 2 frame's sealed header: encoding byte and body length (u32).
const V2_HEADER_LEN: usize = 5;

/// Authenticate and decrypt the frame `r` in `frame` (exactly its stored
/// bytes) in place, and check its plaintext is `r.plain_len` bytes. Nothing
/// of it is to be used if this fails.
pub(super) fn open_frame_in_place(
    key: &AeadKey,
    vault_id: &[u8; 16],
    file_id: &[u8; 16],
    index: u64,
    r: &SegmentRef,
    layout: FrameLayout,
    frame: &mut [u8],
) -> Result<FrameBody> {
    let corrupt = |reason: &str| Error::PackCorrupt {
        pack: r.pack,
        offset: r.offset,
        reason: reason.to_string(),
    };
    let aad = pack_frame_aad(vault_id, file_id, index, r.generation, r.plain_len);
    let opened = if layout.is_v2(r.generation) {
        open_frame_v2(key, &aad, r.generation, frame).map_err(corrupt)?
    } else {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&frame[..NONCE_LEN]);
        let end = frame.len();
        sealed::open_in_place(key, &nonce, &aad, frame, NONCE_LEN..end).map_err(|e| {
            corrupt(match e {
                OpenError::Auth => AUTH_FAILED,
                OpenError::Empty => "frame has no encoding byte",
            })
        })?
    };
    let plain = r.plain_len as usize;
    match sealed::decode(frame, &opened, plain, true) {
        Ok(Plaintext::InPlace(body)) => {
            if body.len() != plain {
                return Err(corrupt("raw frame of the wrong length"));
            }
            Ok(FrameBody::InPlace(body))
        }
        Ok(Plaintext::Decoded(out)) => {
            if out.len() != plain {
                return Err(corrupt("compressed frame of the wrong length"));
            }
            Ok(FrameBody::Decoded(out))
        }
        Err(DecodeError::Zstd(e)) => Err(corrupt(&e.to_string())),
        // (Packs allow zstd: it is never refused as such.)
        Err(DecodeError::Unknown(_) | DecodeError::ZstdNotAllowed) => Err(corrupt(&format!(
            "unknown frame encoding {}",
            opened.encoding
        ))),
    }
}

const AUTH_FAILED: &str =
    "frame failed authentication (damaged, or not this version of this file's segment)";

/// Open a format 2 frame in place (nonce = its generation): its encoding
/// and where its body lies, once the length and the zero padding check.
fn open_frame_v2(
    key: &AeadKey,
    aad: &[u8],
    generation: u64,
    frame: &mut [u8],
) -> std::result::Result<sealed::Opened, &'static str> {
    let n = key
        .open(&frame_nonce(generation), aad, frame)
        .map_err(|_| AUTH_FAILED)?;
    let h = V2_HEADER_LEN;
    if n < h {
        return Err("frame cut short");
    }
    let body_len = u32::from_le_bytes(frame[1..h].try_into().expect("4")) as usize;
    if body_len > n - h || frame[h + body_len..n].iter().any(|&b| b != 0) {
        return Err("frame with a bad body length or padding");
    }
    Ok(sealed::Opened {
        encoding: frame[0],
        body: h..h + body_len,
    })
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
    fn padded_lengths_are_buckets_and_a_full_segment_is_not_padded() {
        let s = 65536;
        assert_eq!(padded_frame_len(1, s), 256);
        assert_eq!(padded_frame_len(251, s), 256);
        assert_eq!(padded_frame_len(252, s), 512);
        assert_eq!(padded_frame_len(4096, s), 4096 + 256);
        assert_eq!(padded_frame_len(40_000, s), 40_960);
        assert_eq!(padded_frame_len(65_536, s), 65_541);
        assert_eq!(padded_frame_len(65_000, s), 65_536);
        for b in [1usize, 300, 5000, 33_333, 65_536, 1 << 20] {
            let t = padded_frame_len(b, 1 << 20);
            assert!(
                t >= 5 + b && t - (5 + b) < ((5 + b) / 16).max(256),
                "{b} → {t}"
            );
        }
    }

    #[test]
    fn v2_frames_round_trip_and_bind_their_generation() {
        use crate::crypto::keys::SecretKey;
        let key = AeadKey::new(
            crate::types::Cipher::Aes256Gcm,
            &SecretKey::from_bytes([3; 32]),
        );
        let layout = FrameLayout {
            legacy_high: 10,
            segment_size: 65536,
        };
        let plain = vec![7u8; 1000];
        let segs: [(u64, u64, &[u8]); 1] = [(4, 11, &plain)];
        let (out, sizes) =
            seal_pack_frames(&key, &[1; 16], &[2; 16], &segs, None, layout, 1).unwrap();
        assert_eq!(sizes, vec![1024 + 16]);
        let r = |generation| SegmentRef {
            pack: 1,
            offset: 64,
            stored_len: sizes[0] as u32,
            plain_len: 1000,
            generation,
        };
        let open = |g, f: Vec<u8>| open_pack_frame(&key, &[1; 16], &[2; 16], 4, &r(g), layout, f);
        assert_eq!(open(11, out.clone()).unwrap(), plain);
        assert!(
            open(12, out.clone()).is_err(),
            "another generation: another nonce and AAD"
        );
        let mut bad = out.clone();
        bad[1000] ^= 1;
        assert!(open(11, bad).is_err());
    }

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
