//! Tests of the pack store.

use super::*;
use crate::crypto::keys::SecretKey;
use crate::storage::memfs::MemFs;

fn key() -> AeadKey {
    AeadKey::new(Cipher::Aes256Gcm, &SecretKey::from_bytes([4; 32]))
}

#[test]
fn frame_layout_and_zero_length_refused() {
    let fs = MemFs::new();
    let dir = Path::new("/v/packs");
    let store = PackStore::open(
        Arc::new(fs.clone()),
        dir,
        [1; 16],
        Cipher::Aes256Gcm,
        PackOptions::default(),
    )
    .unwrap();
    assert!(store.pack_numbers().unwrap().is_empty());
    assert!(matches!(
        store.write_segments(&key(), &[2; 16], &[(0, 1, b"")]),
        Err(Error::InvalidParams(_))
    ));
    let refs = store
        .write_segments(&key(), &[2; 16], &[(7, 3, b"hello")])
        .unwrap();
    let r = refs[0];
    assert_eq!(
        (r.pack, r.offset, r.stored_len, r.plain_len),
        (1, 64, 34, 5)
    );
    let bytes = fs.contents(&dir.join("0000000000000001.pack")).unwrap();
    assert_eq!(bytes.len(), 64 + 34);
    // Decode by hand, as an independent reader would.
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&bytes[64..76]);
    let mut sealed = bytes[76..].to_vec();
    let n = key()
        .open(
            &nonce,
            &pack_frame_aad(&[1; 16], &[2; 16], 7, 3, 5),
            &mut sealed,
        )
        .unwrap();
    assert_eq!(&sealed[..n], b"\0hello");
    assert_eq!(
        store.read_segment(&key(), &[2; 16], 7, &r).unwrap(),
        b"hello"
    );
}
