//! The metadata's second copy (`mirror/`) on a real directory: written
//! beside every config, snapshot and log file; an open mends a damaged or
//! deleted config from it; a vault whose copies are gone gets them back at
//! its next open; and after a clean close every copy equals its file.

mod common;

use common::memvault::cheap_options;
use std::path::{Path, PathBuf};

use crypto_core::fsck::{check, FsckOptions};
use crypto_core::mirror::differing;
use crypto_core::storage::RealFs;
use crypto_core::vault::config::ConfigSource;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};
use crypto_core::vault::{Credential, KdfCosts, VaultConfig};
use crypto_core::Error;

/// A closed vault with a file, a snapshot and a log after it.
fn vault() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let v = Vault::create_vault(&dir, b"pw", &cheap_options(), EngineOptions::default()).unwrap();
    let f = v.create(ROOT, b"a", 0o644, 0, 0).unwrap().ino;
    v.write(f, 0, b"before the snapshot").unwrap();
    v.compact_log().unwrap();
    let g = v.create(ROOT, b"b", 0o644, 0, 0).unwrap().ino;
    v.write(g, 0, b"after it").unwrap();
    v.close().unwrap();
    (tmp, dir)
}

fn open(dir: &Path, password: &[u8]) -> crypto_core::Result<Vault> {
    Vault::open_vault(dir, password, EngineOptions::default())
}

/// The vault reads back both files, and checks clean.
fn assert_whole(v: &Vault) {
    let a = v.lookup(ROOT, b"a").unwrap().ino;
    let b = v.lookup(ROOT, b"b").unwrap().ino;
    assert_eq!(v.read(a, 0, 100).unwrap(), b"before the snapshot");
    assert_eq!(v.read(b, 0, 100).unwrap(), b"after it");
    let report = check(v, FsckOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
}

fn flip(path: &Path, at_from_end: usize) {
    let mut b = std::fs::read(path).unwrap();
    let n = b.len();
    b[n - at_from_end] ^= 0x10;
    std::fs::write(path, b).unwrap();
}

#[test]
fn every_metadata_file_has_an_equal_copy_after_a_clean_close() {
    let (_tmp, dir) = vault();
    assert_eq!(
        differing(&RealFs, &dir, "fusefs.conf", None),
        Vec::<String>::new()
    );
    assert!(dir.join("mirror/fusefs.conf").exists());
    assert_eq!(
        std::fs::read_dir(dir.join("mirror/snap")).unwrap().count(),
        1
    );
    assert!(std::fs::read_dir(dir.join("mirror/log")).unwrap().count() >= 1);
    // A damaged copy is told by name.
    let snap = std::fs::read_dir(dir.join("mirror/snap"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    flip(&snap.path(), 10);
    let name = format!("snap/{}", snap.file_name().to_str().unwrap());
    assert_eq!(differing(&RealFs, &dir, "fusefs.conf", None), vec![name]);
}

#[test]
fn a_damaged_or_deleted_config_is_mended_from_its_copy() {
    let (_tmp, dir) = vault();
    let conf = dir.join("fusefs.conf");
    let good = std::fs::read(&conf).unwrap();
    // The sealed master key's ciphertext (near the end of the file).
    flip(&conf, 150);
    let v = open(&dir, b"pw").unwrap();
    assert_eq!(
        v.bootstrap_report().config_source,
        Some(ConfigSource::Mended)
    );
    assert_whole(&v);
    drop(v);
    assert_eq!(std::fs::read(&conf).unwrap(), good);
    std::fs::remove_file(&conf).unwrap();
    let v = open(&dir, b"pw").unwrap();
    assert_eq!(
        v.bootstrap_report().config_source,
        Some(ConfigSource::Mended)
    );
    drop(v);
    assert_eq!(std::fs::read(&conf).unwrap(), good);
    // Both damaged the same way: the config's own error.
    flip(&conf, 150);
    std::fs::copy(&conf, dir.join("mirror/fusefs.conf")).unwrap();
    assert!(matches!(
        open(&dir, b"pw"),
        Err(Error::ConfigTampered(_) | Error::ConfigInvalid(_))
    ));
}

#[test]
fn a_wrong_password_is_still_refused_and_a_new_one_reaches_the_copy() {
    let (_tmp, dir) = vault();
    assert!(matches!(open(&dir, b"px"), Err(Error::WrongPassword)));
    let mut c = VaultConfig::load(&RealFs, &dir).unwrap();
    c.change_password(
        &RealFs,
        &dir,
        Credential::Password(b"pw"),
        b"new",
        KdfCosts::default(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(dir.join("fusefs.conf")).unwrap(),
        std::fs::read(dir.join("mirror/fusefs.conf")).unwrap()
    );
    assert!(matches!(open(&dir, b"pw"), Err(Error::WrongPassword)));
    let v = open(&dir, b"new").unwrap();
    assert_eq!(
        v.bootstrap_report().config_source,
        Some(ConfigSource::Config)
    );
}

#[test]
fn a_vault_without_copies_gets_them_at_its_next_open() {
    let (_tmp, dir) = vault();
    std::fs::remove_dir_all(dir.join("mirror")).unwrap();
    let v = open(&dir, b"pw").unwrap();
    let r = v.bootstrap_report();
    assert_eq!(r.config_source, Some(ConfigSource::CopyRefreshed));
    assert_eq!(r.snapshot_copies_refreshed, 1);
    assert!(r.log.copies_refreshed >= 1, "{r:?}");
    assert_whole(&v);
    drop(v);
    assert_eq!(
        differing(&RealFs, &dir, "fusefs.conf", None),
        Vec::<String>::new()
    );
}

#[test]
fn damaged_log_and_snapshot_files_are_mended_and_rewritten() {
    let (_tmp, dir) = vault();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    let snap = std::fs::read_dir(dir.join("snap"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before: Vec<Vec<u8>> = logs
        .iter()
        .chain([&snap])
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    for p in logs
        .iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 64)
    {
        flip(p, 3);
    }
    flip(&snap, 40);
    let v = open(&dir, b"pw").unwrap();
    let r = v.bootstrap_report().clone();
    assert_eq!(r.snapshots_mended.len(), 1, "{r:?}");
    assert!(!r.log.mended_from_copy.is_empty(), "{r:?}");
    assert_whole(&v);
    drop(v);
    for (p, want) in logs.iter().chain([&snap]).zip(before) {
        assert_eq!(std::fs::read(p).unwrap(), want, "{}", p.display());
    }
}
