//! The golden vault of format 2 (`tests/fixtures/vault-v2/`), read by hand
//! from FORMAT.md §7 and §8.2 (v2): log headers of 80 bytes, records with a
//! header check, a chained AAD and padded plaintexts, the chain running
//! from the snapshot through every file, a Close at the end, and frames
//! whose nonce is their generation. Only the AEAD and HKDF come from the
//! crate; every offset is this file's.

use std::fs;
use std::path::{Path, PathBuf};

use crypto_core::crypto::aead::AeadKey;
use crypto_core::crypto::kdf;
use crypto_core::storage::RealFs;
use crypto_core::types::Cipher;
use crypto_core::vault::config::VaultConfig;

const PASSWORD: &[u8] = b"golden password";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-v2")
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A record read by hand: (sequence number, entry, tag, padded length).
type Record = (u64, Vec<u8>, [u8; 16], usize);

/// The padded lengths the writer of `vault-v2/` used (FORMAT.md §7.2 before
/// 2026-12-07): 128 … 4096, then multiples of 4096.
fn first_buckets(n: usize) -> bool {
    [128usize, 256, 512, 1024, 2048, 4096].contains(&n) || n.is_multiple_of(4096)
}

/// The padded lengths a writer uses since 2026-12-07 (`vault-v2-large-records/`):
/// 128 … 2048, then 512 more than a multiple of 4096.
fn buckets_since_2026_12_07(n: usize) -> bool {
    [128usize, 256, 512, 1024, 2048].contains(&n) || (n > 4096 && (n - 512).is_multiple_of(4096))
}

/// The records of a log file read by hand, and its chain in; each record's
/// padded length must satisfy `bucket`.
fn records(
    file: &[u8],
    master: &crypto_core::crypto::keys::SecretKey,
    vault_id: &[u8],
    bucket: fn(usize) -> bool,
) -> (Vec<Record>, [u8; 16]) {
    assert_eq!(&file[0..8], b"fusefslg");
    assert_eq!(file[8], 2, "version 2");
    assert_eq!(u32_at(file, 12), 80, "header length");
    assert_eq!(&file[16..32], vault_id);
    let number = u64_at(file, 32);
    let file_id: [u8; 16] = file[40..56].try_into().unwrap();
    let first = u64_at(file, 56);
    let chain_in: [u8; 16] = file[64..80].try_into().unwrap();
    let key = AeadKey::new(
        Cipher::Aes256Gcm,
        &kdf::subkey(master, &file_id, b"fusefs/vault/log"),
    );
    let mut at = 80;
    let mut chain = chain_in;
    let mut out = Vec::new();
    while at < file.len() {
        let p = u32_at(file, at) as usize;
        let seq = u64_at(file, at + 4);
        assert_eq!(seq, first + out.len() as u64, "consecutive");
        assert_eq!(
            u32_at(file, at + 12),
            crc32fast::hash(&file[at..at + 12]),
            "header check"
        );
        let sealed = &file[at + 20..at + 20 + p];
        assert_eq!(u32_at(file, at + 16), crc32fast::hash(sealed), "body CRC");
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(out.len() as u64).to_le_bytes());
        let mut aad = vault_id.to_vec();
        aad.extend_from_slice(&number.to_le_bytes());
        aad.extend_from_slice(&seq.to_le_bytes());
        aad.extend_from_slice(&chain);
        let mut buf = sealed.to_vec();
        let n = key
            .open(&nonce, &aad, &mut buf)
            .expect("opens with the chain");
        let plain = &buf[..n];
        assert!(bucket(n), "padded to a bucket: {n}");
        let len = u32_at(plain, 0) as usize;
        assert!(plain[4 + len..].iter().all(|&b| b == 0), "zero padding");
        chain = sealed[p - 16..].try_into().unwrap();
        out.push((seq, plain[4..4 + len].to_vec(), chain, n));
        at += 20 + p;
    }
    assert_eq!(at, file.len());
    (out, chain_in)
}

#[test]
fn records_past_2048_bytes_are_padded_to_4608_and_8704() {
    // The fixture's records: an xattr of 3,000 bytes (SetXattr, tag 6) in
    // 4608, fsync'd writes of 4 and 8 KiB carrying patches
    // (WriteSegmentsPatched, tag 18) in 4608 and 8704.
    let dir = dir().with_file_name("vault-v2-large-records");
    let config = VaultConfig::load(&RealFs, &dir).unwrap();
    let master = config.unlock(PASSWORD).unwrap();
    let file = fs::read(dir.join("log/0000000000000001.ulog")).unwrap();
    let (records, _) = records(&file, &master, config.vault_id(), buckets_since_2026_12_07);
    let large: Vec<(u8, usize)> = records
        .iter()
        .filter(|r| r.3 > 2048)
        .map(|r| (r.1[0], r.3))
        .collect();
    assert_eq!(large, [(6, 4608), (18, 4608), (18, 8704)]);
    assert_eq!(records.last().unwrap().1[0], 14, "Close");
}

#[test]
fn the_log_is_chained_padded_and_closed() {
    let config = VaultConfig::load(&RealFs, &dir()).unwrap();
    assert_eq!(config.version(), 2);
    let master = config.unlock(PASSWORD).unwrap();
    let vault_id = config.vault_id().to_vec();
    let (two, chain_in_2) = records(
        &fs::read(dir().join("log/0000000000000002.ulog")).unwrap(),
        &master,
        &vault_id,
        first_buckets,
    );
    let (three, chain_in_3) = records(
        &fs::read(dir().join("log/0000000000000003.ulog")).unwrap(),
        &master,
        &vault_id,
        first_buckets,
    );
    // File 2 starts right after the snapshot (covers 52): its first record
    // is the SnapshotCheckpoint; file 3 continues file 2's last tag.
    assert_eq!(two[0].0, 53);
    assert_eq!(two[0].1[0], 11, "SnapshotCheckpoint");
    assert_eq!(
        chain_in_3,
        two.last().unwrap().2,
        "the chain runs across files"
    );
    // Each session ends with a Close (tag 14); the second session's first
    // frame was preceded by a ReserveGenerations (tag 15).
    assert_eq!(two.last().unwrap().1[0], 14);
    assert_eq!(three.last().unwrap().1[0], 14);
    let tags: Vec<u8> = three.iter().map(|r| r.1[0]).collect();
    let reserve = tags.iter().position(|&t| t == 15).unwrap();
    let first_write = tags.iter().position(|&t| t == 8).unwrap();
    assert!(reserve < first_write, "{tags:?}");
    // The snapshot keeps the chain of record 52, the one file 2 starts from.
    let snap = fs::read(dir().join("snap/0000000000000001.snap")).unwrap();
    assert_eq!(snap[8], 2, "snapshot version 2");
    assert_eq!(u64_at(&snap, 56), 52);
    let snapshot_id: [u8; 16] = snap[40..56].try_into().unwrap();
    let key = kdf::subkey(&master, &snapshot_id, b"fusefs/vault/snapshot");
    let mut plain = Vec::new();
    crypto_core::api::decrypt_stream(
        &mut &snap[64..],
        &mut plain,
        &crypto_core::crypto::keys::KeyMaterial::raw(key.as_bytes()).unwrap(),
        crypto_core::types::ParallelismProfile::Single,
        &crypto_core::pipeline::Control::new(),
    )
    .unwrap();
    assert_eq!(plain[..64], snap[..64]);
    assert_eq!(plain[64..80], chain_in_2, "the snapshot's chain");
    // State layout 2: segment size, next ino, cycles, generation high,
    // generation reserved, legacy generation high (0: made at format 2).
    let (high, reserved, legacy) = (
        u64_at(&plain, 80 + 20),
        u64_at(&plain, 80 + 28),
        u64_at(&plain, 80 + 36),
    );
    assert!(reserved >= high && high > 0, "{high} {reserved}");
    assert_eq!(legacy, 0);
}

#[test]
fn a_frame_is_sealed_under_its_generation_and_padded() {
    let config = VaultConfig::load(&RealFs, &dir()).unwrap();
    let master = config.unlock(PASSWORD).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let copied = tmp.path().join("v");
    copy(&dir(), &copied);
    let v = crypto_core::vault::engine::Vault::open_vault(
        &copied,
        PASSWORD,
        crypto_core::vault::engine::EngineOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let state = v.state();
    let small = v.lookup(1, b"small.txt").unwrap().ino;
    let inode = state.inode(small).unwrap();
    let (&index, r) = inode.segments.iter().next().unwrap();
    let pack = fs::read(dir().join(format!("packs/{:016x}.pack", r.pack))).unwrap();
    let stored = &pack[r.offset as usize..(r.offset + r.stored_len as u64) as usize];
    let key = AeadKey::new(
        Cipher::Aes256Gcm,
        &kdf::subkey(&master, &inode.file_id, b"fusefs/vault/file"),
    );
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&r.generation.to_le_bytes());
    let mut aad = config.vault_id().to_vec();
    aad.extend_from_slice(&inode.file_id);
    aad.extend_from_slice(&index.to_le_bytes());
    aad.extend_from_slice(&r.generation.to_le_bytes());
    aad.extend_from_slice(&r.plain_len.to_le_bytes());
    let mut buf = stored.to_vec();
    let n = key
        .open(&nonce, &aad, &mut buf)
        .expect("nonce = generation");
    assert_eq!(buf[0], 0, "raw");
    let body = u32_at(&buf, 1) as usize;
    assert_eq!(body, r.plain_len as usize);
    assert!(buf[5 + body..n].iter().all(|&b| b == 0));
    // 5 + 1000 bytes → a multiple of 256: 1024.
    assert_eq!((body, n), (1000, 1024));
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
