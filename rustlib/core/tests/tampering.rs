//! Every way of damaging a stream is detected with its own error, and no
//! damaged stream ever decrypts.

mod common;

use common::*;
use crypto_core::prelude::*;

fn v2_stream(len: usize) -> Vec<u8> {
    encrypt(
        &data(len, 7),
        &raw_key(),
        &fast_params(Format::V2, Cipher::Aes256Gcm, None),
    )
}

fn v1_stream(len: usize) -> Vec<u8> {
    encrypt(
        &data(len, 7),
        &raw_key(),
        &fast_params(Format::V1, Cipher::Aes256Gcm, None),
    )
}

#[test]
fn v2_truncation_anywhere() {
    let enc = v2_stream(5 * S as usize + 100);
    let (_, frames) = v2_frames(&enc);
    let mut boundaries = vec![108usize];
    for f in &frames {
        boundaries.push(boundaries.last().unwrap() + f.len());
    }
    for &b in &boundaries[..boundaries.len() - 1] {
        assert!(
            matches!(decrypt(&enc[..b], &raw_key()), Err(Error::Truncated(_))),
            "cut at {b}"
        );
        assert!(
            matches!(
                decrypt(&enc[..b + 20], &raw_key()),
                Err(Error::Truncated(_))
            ),
            "cut at {}",
            b + 20
        );
        assert!(
            matches!(
                decrypt(&enc[..b + 50], &raw_key()),
                Err(Error::Truncated(_))
            ),
            "cut at {}",
            b + 50
        );
    }
    assert!(matches!(
        decrypt(&enc[..60], &raw_key()),
        Err(Error::TruncatedHeader(60))
    ));
}

#[test]
fn v2_reorder_duplicate_drop_append() {
    let enc = v2_stream(5 * S as usize + 100);
    let (h, frames) = v2_frames(&enc);
    let mut swapped = frames.clone();
    swapped.swap(1, 3);
    assert!(matches!(
        decrypt(&join(&h, &swapped), &raw_key()),
        Err(Error::OutOfOrder {
            expected: 1,
            found: 3
        })
    ));
    let mut dup = frames.clone();
    dup.insert(3, frames[2].clone());
    assert!(matches!(
        decrypt(&join(&h, &dup), &raw_key()),
        Err(Error::DuplicateSegment { index: 2 })
    ));
    let mut dropped = frames.clone();
    dropped.remove(2);
    assert!(matches!(
        decrypt(&join(&h, &dropped), &raw_key()),
        Err(Error::OutOfOrder {
            expected: 2,
            found: 3
        })
    ));
    let mut no_final = frames.clone();
    no_final.remove(frames.len() - 2);
    assert!(matches!(
        decrypt(&join(&h, &no_final), &raw_key()),
        Err(Error::OutOfOrder {
            expected: 5,
            found: 6
        })
    ));
    let mut appended = enc.clone();
    appended.extend_from_slice(b"x");
    assert!(matches!(
        decrypt(&appended, &raw_key()),
        Err(Error::TrailingData)
    ));
    let mut appended_frame = enc.clone();
    appended_frame.extend_from_slice(&frames[0]);
    assert!(matches!(
        decrypt(&appended_frame, &raw_key()),
        Err(Error::TrailingData)
    ));
}

#[test]
fn v2_header_or_segment_from_another_stream() {
    let a = v2_stream(3 * S as usize);
    let b = v2_stream(3 * S as usize);
    let (ha, fa) = v2_frames(&a);
    let (hb, fb) = v2_frames(&b);
    // B's header on A's frames: every frame names another stream.
    assert!(matches!(
        decrypt(&join(&hb, &fa), &raw_key()),
        Err(Error::ForeignSegment { index: 0 })
    ));
    // One of B's frames in A.
    let mut mixed = fa.clone();
    mixed[1] = fb[1].clone();
    assert!(matches!(
        decrypt(&join(&ha, &mixed), &raw_key()),
        Err(Error::ForeignSegment { index: 1 })
    ));
    // The same, with the stream id rewritten to A's: the seal still refuses it.
    let mut forged = fb[1].clone();
    forged[4..20].copy_from_slice(&fa[1][4..20]);
    mixed[1] = forged;
    assert!(matches!(
        decrypt(&join(&ha, &mixed), &raw_key()),
        Err(Error::SegmentAuthFailed { index: 1 })
    ));
}

#[test]
fn v2_every_flipped_byte_is_refused() {
    let enc = v2_stream(2 * S as usize + 10);
    // Every byte of header, frame headers and trailer; every 97th byte of payloads.
    for i in 0..enc.len() {
        if i > 200 && i % 97 != 0 && i < enc.len() - 150 {
            continue;
        }
        let mut t = enc.clone();
        t[i] ^= 0x01;
        assert!(
            decrypt(&t, &raw_key()).is_err(),
            "flip at byte {i} accepted"
        );
    }
}

#[test]
fn v2_payload_flip_names_the_segment() {
    let enc = v2_stream(4 * S as usize);
    let (h, mut frames) = v2_frames(&enc);
    frames[2][100] ^= 0x80;
    assert!(matches!(
        decrypt(&join(&h, &frames), &raw_key()),
        Err(Error::SegmentAuthFailed { index: 2 })
    ));
}

#[test]
fn v1_truncation_reorder_duplicate_append_flip() {
    let s = S as usize + 16;
    let enc = v1_stream(4 * S as usize + 100); // chunks: 4 full + 1 short
    let chunk = |i: usize| enc[108 + i * s..(108 + (i + 1) * s).min(enc.len())].to_vec();
    let h = &enc[..108];
    // Cut at a chunk boundary: the last chunk present is not marked final.
    for k in 1..=4 {
        assert!(
            matches!(
                decrypt(&enc[..108 + k * s], &raw_key()),
                Err(Error::Truncated(_))
            ),
            "cut after {k}"
        );
    }
    let swapped = join(h, &[chunk(0), chunk(2), chunk(1), chunk(3), chunk(4)]);
    assert!(matches!(
        decrypt(&swapped, &raw_key()),
        Err(Error::OutOfOrder {
            expected: 1,
            found: 2
        })
    ));
    let dup = join(
        h,
        &[chunk(0), chunk(1), chunk(1), chunk(2), chunk(3), chunk(4)],
    );
    assert!(matches!(
        decrypt(&dup, &raw_key()),
        Err(Error::DuplicateSegment { index: 1 })
    ));
    // Appended data after a full final chunk.
    let full = v1_stream(3 * S as usize);
    let mut appended = full.clone();
    appended.extend_from_slice(&[0u8; 40]);
    assert!(matches!(
        decrypt(&appended, &raw_key()),
        Err(Error::TrailingData)
    ));
    for i in (0..enc.len()).step_by(37) {
        let mut t = enc.clone();
        t[i] ^= 0x04;
        assert!(
            decrypt(&t, &raw_key()).is_err(),
            "flip at byte {i} accepted"
        );
    }
    // A chunk from another stream under the same key.
    let other = v1_stream(4 * S as usize + 100);
    let mut mixed = enc.clone();
    mixed[108 + s..108 + 2 * s].copy_from_slice(&other[108 + s..108 + 2 * s]);
    assert!(matches!(
        decrypt(&mixed, &raw_key()),
        Err(Error::SegmentAuthFailed { index: 1 })
    ));
}

#[test]
fn garbage_headers() {
    assert!(matches!(
        decrypt(&[0u8; 4096], &raw_key()),
        Err(Error::AllZero)
    ));
    assert!(matches!(decrypt(b"hello world, this is not a stream at all, not at all, no no no no no no no no no no no no no no no no no", &raw_key()), Err(Error::BadMagic)));
    let mut enc = v2_stream(10);
    enc[6] = 9;
    assert!(matches!(
        decrypt(&enc, &raw_key()),
        Err(Error::UnsupportedVersion(9))
    ));
    let mut enc = v2_stream(10);
    enc[7] = 1 + (enc[7] % 2); // switch cipher: MAC catches it
    assert!(matches!(
        decrypt(&enc, &raw_key()),
        Err(Error::HeaderTampered)
    ));
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Arbitrary bytes after a valid header never panic and never decrypt.
        #[test]
        fn random_body_after_a_valid_header(body in proptest::collection::vec(any::<u8>(), 0..20_000), v2 in any::<bool>()) {
            let format = if v2 { Format::V2 } else { Format::V1 };
            let enc = encrypt(b"", &raw_key(), &fast_params(format, Cipher::Aes256Gcm, None));
            let mut s = enc[..108].to_vec();
            s.extend_from_slice(&body);
            prop_assert!(decrypt(&s, &raw_key()).is_err());
        }

        /// Random edits of a valid stream (overwrite, insert, delete) are refused.
        #[test]
        fn random_edits_are_refused(pos in any::<prop::sample::Index>(), byte in any::<u8>(), op in 0u8..3, v2 in any::<bool>()) {
            let format = if v2 { Format::V2 } else { Format::V1 };
            let enc = encrypt(&data(3 * S as usize + 11, 2), &raw_key(), &fast_params(format, Cipher::Aes256Gcm, Some(3).filter(|_| v2)));
            let i = pos.index(enc.len());
            let mut t = enc.clone();
            match op {
                0 => { if t[i] == byte { return Ok(()); } t[i] = byte; }
                1 => t.insert(i, byte),
                _ => { t.remove(i); }
            }
            prop_assert!(decrypt(&t, &raw_key()).is_err());
        }

        /// Arbitrary bytes as a whole stream: a typed error, never a panic.
        #[test]
        fn arbitrary_streams(s in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(decrypt(&s, &raw_key()).is_err());
        }
    }
}
