//! Round trips of both formats, both ciphers, with and without compression.

mod common;

use common::*;
use crypto_core::prelude::*;
use proptest::prelude::*;

#[test]
fn every_format_cipher_and_boundary_size() {
    let s = S as usize;
    for format in [Format::V1, Format::V2] {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let comps: &[Option<i32>] = if format == Format::V2 {
                &[None, Some(3)]
            } else {
                &[None]
            };
            for &comp in comps {
                for len in [0, 1, s - 1, s, s + 1, 3 * s, 3 * s + 7, 20 * s + 5] {
                    let plain = data(len, len as u64);
                    let p = fast_params(format, cipher, comp);
                    let enc = encrypt(&plain, &raw_key(), &p);
                    assert_eq!(
                        decrypt(&enc, &raw_key()).unwrap(),
                        plain,
                        "{format:?} {cipher:?} {comp:?} {len}"
                    );
                }
            }
        }
    }
}

#[test]
fn password_streams_round_trip_and_reject_wrong_password() {
    let plain = data(10_000, 1);
    let p = fast_params(Format::V2, Cipher::Aes256Gcm, None);
    let enc = encrypt(&plain, &KeyMaterial::password(b"correct horse"), &p);
    assert_eq!(
        decrypt(&enc, &KeyMaterial::password(b"correct horse")).unwrap(),
        plain
    );
    assert!(matches!(
        decrypt(&enc, &KeyMaterial::password(b"wrong")),
        Err(Error::WrongKey)
    ));
    assert!(matches!(
        decrypt(&enc, &raw_key()),
        Err(Error::WrongKeyKind(_))
    ));
}

#[test]
fn v1_sizes_match_the_format() {
    let s = S as usize;
    for (len, chunks) in [(0usize, 1usize), (1, 1), (s, 1), (s + 1, 2), (2 * s, 2)] {
        let enc = encrypt(
            &data(len, 0),
            &raw_key(),
            &fast_params(Format::V1, Cipher::Aes256Gcm, None),
        );
        assert_eq!(enc.len(), 108 + len + 16 * chunks, "len {len}");
    }
}

#[test]
fn compression_shrinks_compressible_data_and_marks_it() {
    let plain = vec![b'z'; 50 * S as usize];
    let enc = encrypt(
        &plain,
        &raw_key(),
        &fast_params(Format::V2, Cipher::Aes256Gcm, Some(3)),
    );
    assert!(enc.len() < plain.len() / 10, "{} bytes", enc.len());
    assert_eq!(decrypt(&enc, &raw_key()).unwrap(), plain);
}

#[test]
fn thread_counts_give_equivalent_streams() {
    let plain = data(40 * S as usize + 3, 9);
    for t in [1, 2, 5, 16] {
        let mut out = Vec::new();
        let p = fast_params(Format::V2, Cipher::ChaCha20Poly1305, Some(1));
        encrypt_stream(
            &mut &plain[..],
            &mut out,
            &raw_key(),
            &p,
            ParallelismProfile::Fixed(t),
            &Control::new(),
        )
        .unwrap();
        let mut back = Vec::new();
        decrypt_stream(
            &mut &out[..],
            &mut back,
            &raw_key(),
            ParallelismProfile::Fixed(t),
            &Control::new(),
        )
        .unwrap();
        assert_eq!(back, plain);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_input_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..30_000),
                             v2 in any::<bool>(), chacha in any::<bool>(), compress in any::<bool>()) {
        let format = if v2 { Format::V2 } else { Format::V1 };
        let cipher = if chacha { Cipher::ChaCha20Poly1305 } else { Cipher::Aes256Gcm };
        let comp = (v2 && compress).then_some(3);
        let enc = encrypt(&plain, &raw_key(), &fast_params(format, cipher, comp));
        prop_assert_eq!(decrypt(&enc, &raw_key()).unwrap(), plain);
    }
}
