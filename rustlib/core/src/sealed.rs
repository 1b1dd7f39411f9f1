//! The sealed payload: one encoding byte and a body, sealed with the AEAD,
//! the tag appended. The part that stream frames and pack frames share.
//!
//! ```text
//! payload  = AEAD(key, nonce, AAD, encoding ‖ body) ‖ tag (16)
//! encoding 0 (ENCODING_RAW):  the body is the plaintext
//!          1 (ENCODING_ZSTD): the body is one zstd frame of the plaintext,
//!                             written only where it is strictly smaller
//! ```
//!
//! Who uses it, each with its own nonce, key, AAD and place for the nonce:
//!
//! * stream v2 frames (FORMAT.md §4.1, §4.2): 41-byte stream frame header
//!   (the nonce is its last 12 bytes) ‖ payload; data frames and the trailer
//!   ([`crate::framing`], [`crate::workers`]);
//! * pack frames (FORMAT.md §8.2): nonce ‖ payload ([`crate::packs`]).
//!
//! Log records (§7.2) and stream v1 chunks (§3) are sealed without an
//! encoding byte and do not use it.
//!
//! Everything happens in the caller's buffer: sealing compresses and
//! encrypts in place and writes the tag after the body; opening decrypts in
//! place and says where the body lies, so a raw plaintext is never moved.

use std::ops::Range;

use crate::compression::{compress_segment, decompress_segment};
use crate::constants::{NONCE_LEN, TAG_LEN};
use crate::crypto::aead::AeadKey;
use crate::error::{Error, Result};

/// Encoding byte: the body is the plaintext.
pub const ENCODING_RAW: u8 = 0;
/// Encoding byte: the body is one zstd frame of the plaintext.
pub const ENCODING_ZSTD: u8 = 1;
/// Where the body starts in a payload: after the encoding byte.
pub const BODY_OFFSET: usize = 1;
/// Bytes a payload adds to its body: the encoding byte and the tag.
pub const PAYLOAD_OVERHEAD: usize = BODY_OFFSET + TAG_LEN;

/// A body in place in a payload buffer, ready to be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub encoding: u8,
    pub body_len: usize,
}

impl Encoded {
    /// A body stored as it is.
    pub fn raw(body_len: usize) -> Self {
        Encoded {
            encoding: ENCODING_RAW,
            body_len,
        }
    }

    /// Length of the sealed payload: encoding byte, body, tag.
    pub fn sealed_len(&self) -> usize {
        PAYLOAD_OVERHEAD + self.body_len
    }
}

/// Compress the body of the payload at `buf[at..]` (its `len` plaintext
/// bytes at `at + BODY_OFFSET`) in place, through `scratch`, where zstd at
/// `level` makes it strictly smaller; otherwise it stays raw.
pub fn encode_in_place(
    buf: &mut [u8],
    at: usize,
    len: usize,
    level: i32,
    scratch: &mut Vec<u8>,
) -> Result<Encoded> {
    let body = at + BODY_OFFSET;
    match compress_segment(&buf[body..body + len], level, scratch)? {
        Some(n) => {
            buf[body..body + n].copy_from_slice(&scratch[..n]);
            Ok(Encoded {
                encoding: ENCODING_ZSTD,
                body_len: n,
            })
        }
        None => Ok(Encoded::raw(len)),
    }
}

/// zstd of a plaintext held elsewhere, for a caller that places bodies only
/// once their lengths are known: `Some` only where strictly smaller.
pub fn compress_body(plain: &[u8], level: i32) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    Ok(compress_segment(plain, level, &mut out)?.map(|n| {
        out.truncate(n);
        out
    }))
}

/// Seal the payload at `buf[at..at + body.sealed_len()]` in place: its
/// encoding byte is set, the encoding byte and the body (already at
/// `at + BODY_OFFSET`) are encrypted, and the tag is written after them.
#[inline]
pub fn seal_in_place(
    key: &AeadKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    body: Encoded,
    buf: &mut [u8],
    at: usize,
) {
    let end = at + BODY_OFFSET + body.body_len;
    buf[at] = body.encoding;
    let tag = key.seal(nonce, aad, &mut buf[at..end]);
    buf[end..end + TAG_LEN].copy_from_slice(&tag);
}

/// Why a payload did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The AEAD refused it: damaged, or sealed under another key, nonce or AAD.
    Auth,
    /// It opened to nothing: not even an encoding byte.
    Empty,
}

/// An opened payload: its encoding byte and where its body lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    pub encoding: u8,
    /// The body's place in the buffer that was opened.
    pub body: Range<usize>,
}

/// Authenticate and decrypt the payload `buf[payload]` (ciphertext ‖ tag)
/// in place.
#[inline]
pub fn open_in_place(
    key: &AeadKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    payload: Range<usize>,
) -> std::result::Result<Opened, OpenError> {
    let start = payload.start;
    let n = key
        .open(nonce, aad, &mut buf[payload])
        .map_err(|_| OpenError::Auth)?;
    if n == 0 {
        return Err(OpenError::Empty);
    }
    Ok(Opened {
        encoding: buf[start],
        body: start + BODY_OFFSET..start + n,
    })
}

/// The plaintext of an opened payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Plaintext {
    /// Raw: the body, where it lies in the opened buffer.
    InPlace(Range<usize>),
    /// zstd: the decompressed body.
    Decoded(Vec<u8>),
}

/// Why an opened body does not decode.
#[derive(Debug)]
pub enum DecodeError {
    /// zstd where the caller does not allow it.
    ZstdNotAllowed,
    /// An encoding byte that is neither raw nor zstd.
    Unknown(u8),
    /// The zstd body does not decompress to at most `max_len` bytes.
    Zstd(Error),
}

/// Decode the opened body of `buf`: a raw body stays in place; a zstd body
/// (only if `zstd_allowed`) is decompressed to at most `max_len` bytes.
pub fn decode(
    buf: &[u8],
    opened: &Opened,
    max_len: usize,
    zstd_allowed: bool,
) -> std::result::Result<Plaintext, DecodeError> {
    match opened.encoding {
        ENCODING_RAW => Ok(Plaintext::InPlace(opened.body.clone())),
        ENCODING_ZSTD if zstd_allowed => {
            let mut out = Vec::new();
            decompress_segment(&buf[opened.body.clone()], max_len, &mut out)
                .map_err(DecodeError::Zstd)?;
            Ok(Plaintext::Decoded(out))
        }
        ENCODING_ZSTD => Err(DecodeError::ZstdNotAllowed),
        e => Err(DecodeError::Unknown(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::SecretKey;
    use crate::types::Cipher;

    fn key() -> AeadKey {
        AeadKey::new(Cipher::Aes256Gcm, &SecretKey::from_bytes([7; 32]))
    }

    /// A buffer with 5 bytes before the payload and `plain` as its body.
    fn buffer(plain: &[u8]) -> Vec<u8> {
        let mut b = vec![0xee; 5 + PAYLOAD_OVERHEAD + plain.len()];
        b[5 + BODY_OFFSET..5 + BODY_OFFSET + plain.len()].copy_from_slice(plain);
        b
    }

    #[test]
    fn raw_layout_and_round_trip_in_place() {
        let mut b = buffer(b"hello");
        seal_in_place(&key(), &[1; 12], b"aad", Encoded::raw(5), &mut b, 5);
        assert_eq!(&b[..5], &[0xee; 5], "nothing before the payload is touched");
        // Independently: AEAD(encoding 0 ‖ body) ‖ tag.
        let mut alone = b[5..].to_vec();
        let n = key().open(&[1; 12], b"aad", &mut alone).unwrap();
        assert_eq!(&alone[..n], b"\0hello");
        let end = b.len();
        let opened = open_in_place(&key(), &[1; 12], b"aad", &mut b, 5..end).unwrap();
        assert_eq!(
            opened,
            Opened {
                encoding: ENCODING_RAW,
                body: 6..11
            }
        );
        assert!(matches!(
            decode(&b, &opened, 5, false),
            Ok(Plaintext::InPlace(r)) if r == (6..11)
        ));
        assert_eq!(&b[6..11], b"hello");
    }

    #[test]
    fn zstd_only_where_smaller() {
        let text = vec![b'a'; 4000];
        let mut b = buffer(&text);
        let mut scratch = Vec::new();
        let e = encode_in_place(&mut b, 5, text.len(), 3, &mut scratch).unwrap();
        assert_eq!(e.encoding, ENCODING_ZSTD);
        assert!(e.body_len < 100);
        assert_eq!(compress_body(&text, 3).unwrap().unwrap().len(), e.body_len);
        seal_in_place(&key(), &[2; 12], b"", e, &mut b, 5);
        let end = 5 + e.sealed_len();
        let opened = open_in_place(&key(), &[2; 12], b"", &mut b, 5..end).unwrap();
        assert!(matches!(
            decode(&b, &opened, 4000, false),
            Err(DecodeError::ZstdNotAllowed)
        ));
        assert!(matches!(
            decode(&b, &opened, 3999, true),
            Err(DecodeError::Zstd(_))
        ));
        assert_eq!(
            decode(&b, &opened, 4000, true).unwrap(),
            Plaintext::Decoded(text)
        );
        let noise: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut b = buffer(&noise);
        let e = encode_in_place(&mut b, 5, noise.len(), 3, &mut scratch).unwrap();
        assert_eq!(e, Encoded::raw(64));
        assert_eq!(&b[6..70], &noise[..]);
        assert_eq!(compress_body(&noise, 3).unwrap(), None);
    }

    #[test]
    fn refusals() {
        let mut b = buffer(b"x");
        seal_in_place(
            &key(),
            &[3; 12],
            b"",
            Encoded {
                encoding: 9,
                body_len: 1,
            },
            &mut b,
            5,
        );
        let mut bad = b.clone();
        bad[7] ^= 1;
        let end = b.len();
        assert_eq!(
            open_in_place(&key(), &[3; 12], b"", &mut bad, 5..end),
            Err(OpenError::Auth)
        );
        let opened = open_in_place(&key(), &[3; 12], b"", &mut b, 5..end).unwrap();
        assert!(matches!(
            decode(&b, &opened, 1, true),
            Err(DecodeError::Unknown(9))
        ));
        let mut empty = [0u8; TAG_LEN];
        let tag = key().seal(&[4; 12], b"", &mut []);
        empty.copy_from_slice(&tag);
        assert_eq!(
            open_in_place(&key(), &[4; 12], b"", &mut empty, 0..TAG_LEN),
            Err(OpenError::Empty)
        );
    }
}
