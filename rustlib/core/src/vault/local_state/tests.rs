//! The slots of the local state file: which one wins, and which are ignored.

use super::*;

const ID: [u8; 16] = [7; 16];

fn key() -> SecretKey {
    vault_keys::subkey(&master(), PURPOSE, &ID)
}

fn master() -> SecretKey {
    SecretKey::from_bytes([1; 32])
}

fn seen(seq: u64) -> Seen {
    Seen {
        seq,
        chain: [seq as u8; 16],
        snapshot: seq / 10,
        covers_seq: seq / 2,
        clean: seq.is_multiple_of(2),
    }
}

/// A file with `a` in slot 0 and `b` in slot 1 (counter, state).
fn file(a: Option<(u64, Seen)>, b: Option<(u64, Seen)>) -> Vec<u8> {
    let mut bytes = vec![0u8; FILE_LEN];
    for (i, slot) in [a, b].into_iter().enumerate() {
        if let Some((counter, s)) = slot {
            bytes[i * SLOT_LEN..(i + 1) * SLOT_LEN].copy_from_slice(&encode_slot(
                &ID,
                &key(),
                counter,
                &s,
            ));
        }
    }
    bytes
}

#[test]
fn a_slot_round_trips_every_field() {
    for s in [seen(0), seen(11), seen(u64::MAX - 1)] {
        let b = encode_slot(&ID, &key(), 5, &s);
        assert_eq!(&b[0..8], b"fusefsls");
        assert_eq!(b[8], 1);
        assert_eq!(decode_slot(&b, &ID, &key()), Some((5, s)));
    }
}

#[test]
fn the_layout_is_as_documented() {
    let s = Seen {
        seq: 0x0102,
        chain: [0xcc; 16],
        snapshot: 3,
        covers_seq: 4,
        clean: true,
    };
    let b = encode_slot(&ID, &key(), 9, &s);
    assert_eq!(b[9..16], [0; 7]);
    assert_eq!(b[16..24], 9u64.to_le_bytes());
    assert_eq!(b[24..40], ID);
    assert_eq!(b[40..48], 0x0102u64.to_le_bytes());
    assert_eq!(b[48..64], [0xcc; 16]);
    assert_eq!(b[64..72], 3u64.to_le_bytes());
    assert_eq!(b[72..80], 4u64.to_le_bytes());
    assert_eq!(b[80], 1);
    assert_eq!(b[81..96], [0; 15]);
    // The MAC key is HKDF(master, salt = vault id, info = "fusefs/vault/local-state").
    let mac_key = crate::crypto::kdf::subkey(&master(), &ID, b"fusefs/vault/local-state");
    assert_eq!(b[96..], hmac_sha256(&mac_key, &b[..96]));
}

#[test]
fn the_newer_slot_wins_in_either_position() {
    let (older, newer) = ((3, seen(30)), (4, seen(40)));
    for bytes in [
        file(Some(older), Some(newer)),
        file(Some(newer), Some(older)),
    ] {
        assert_eq!(decode_file(&bytes, &ID, &key()), (Found::Seen(seen(40)), 4));
    }
}

#[test]
fn a_torn_slot_leaves_the_other() {
    let mut bytes = file(Some((6, seen(60))), Some((7, seen(70))));
    // Slot 1 torn halfway through its rewrite.
    bytes[SLOT_LEN + 40..].fill(0);
    assert_eq!(decode_file(&bytes, &ID, &key()), (Found::Seen(seen(60)), 6));
    // A file cut inside slot 1 (its first write never completed).
    let bytes = file(Some((1, seen(5))), None);
    assert_eq!(
        decode_file(&bytes[..SLOT_LEN + 17], &ID, &key()),
        (Found::Seen(seen(5)), 1)
    );
}

#[test]
fn every_byte_of_a_slot_is_authenticated() {
    let good = file(Some((2, seen(20))), None);
    for i in 0..SLOT_LEN {
        let mut bytes = good.clone();
        bytes[i] ^= 0x40;
        assert_eq!(
            decode_file(&bytes, &ID, &key()).0,
            Found::Damaged,
            "byte {i} flipped"
        );
    }
}

#[test]
fn a_bad_slot_falls_back_to_the_older_one() {
    let mut bytes = file(Some((2, seen(20))), Some((3, seen(30))));
    bytes[SLOT_LEN + 45] ^= 1; // the newer slot's seq: MAC fails
    assert_eq!(decode_file(&bytes, &ID, &key()), (Found::Seen(seen(20)), 2));
}

#[test]
fn another_vaults_or_keys_slots_are_ignored() {
    let bytes = file(Some((2, seen(20))), None);
    assert_eq!(decode_file(&bytes, &[8; 16], &key()).0, Found::Damaged);
    let other_key = vault_keys::subkey(&SecretKey::from_bytes([2; 32]), PURPOSE, &ID);
    assert_eq!(decode_file(&bytes, &ID, &other_key).0, Found::Damaged);
    // Another vault's slot, valid under its own key, in this vault's file.
    let other = vault_keys::subkey(&master(), PURPOSE, &[8; 16]);
    let foreign = encode_slot(&[8; 16], &other, 9, &seen(90));
    assert_eq!(decode_slot(&foreign, &ID, &key()), None);
}

#[test]
fn nothing_written_is_not_damage() {
    assert_eq!(decode_file(&[], &ID, &key()), (Found::Nothing, 0));
    assert_eq!(
        decode_file(&[0; FILE_LEN], &ID, &key()),
        (Found::Nothing, 0)
    );
    assert_eq!(decode_file(&[0; 100], &ID, &key()), (Found::Nothing, 0));
    assert_eq!(decode_file(&[1; 100], &ID, &key()), (Found::Damaged, 0));
}

#[test]
fn unknown_flags_or_version_are_ignored() {
    let mut b = encode_slot(&ID, &key(), 1, &seen(1));
    b[80] |= 2;
    let mac = hmac_sha256(&key(), &b[..MAC_OFFSET]);
    b[MAC_OFFSET..].copy_from_slice(&mac);
    assert_eq!(decode_slot(&b, &ID, &key()), None, "unknown flag");
    let mut b = encode_slot(&ID, &key(), 1, &seen(1));
    b[8] = 2;
    let mac = hmac_sha256(&key(), &b[..MAC_OFFSET]);
    b[MAC_OFFSET..].copy_from_slice(&mac);
    assert_eq!(decode_slot(&b, &ID, &key()), None, "version 2");
}

#[test]
fn the_file_is_named_after_the_vault_id() {
    let id = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    assert_eq!(file_name(&id), "00112233445566778899aabbccddeeff.state");
}
