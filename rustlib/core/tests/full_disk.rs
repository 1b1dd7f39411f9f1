//! A full disk (issue 13), on the in-memory file system with a capacity:
//!
//! * writes fail with ENOSPC once the disk is full; deleting files then
//!   frees space (their frames are punched out of the packs once the
//!   deletes are durable), new writes and syncs succeed without reopening,
//!   and everything fsync'd reads back after a reopen;
//! * the order that makes punching safe: the machine stops after every
//!   single write (punches included) of a workload that deletes and
//!   overwrites, and the vault found after it always checks clean, frames
//!   included: no live reference to a zeroed frame.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::memvault::MemVault as Fixture;
use crypto_core::fsck::{self, FsckOptions};
use crypto_core::storage::memfs::{Fault, MemFs};
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};
use crypto_core::Error;

const ENOSPC: i32 = 28;
const FILE: usize = 200_000;

fn small_packs() -> EngineOptions {
    EngineOptions {
        pack_size_limit: 256 << 10,
        ..Default::default()
    }
}

fn content(seed: u8) -> Vec<u8> {
    (0..FILE)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn errno_of(e: &Error) -> Option<i32> {
    match e {
        Error::Fs { errno, .. } => Some(*errno),
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

fn assert_clean(v: &Vault) {
    let report = fsck::check(v, FsckOptions::default(), &mut |_, _| {}).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// Create file `name` and write `data` to it; the first error, if any.
fn write_file(v: &Vault, name: &str, data: &[u8]) -> crypto_core::Result<u64> {
    let f = v.create(ROOT, name.as_bytes(), 0o644, 0, 0)?;
    v.write(f.ino, 0, data)?;
    v.fsync(f.ino)?;
    Ok(f.ino)
}

fn pack_paths(fs: &MemFs) -> Vec<std::path::PathBuf> {
    use crypto_core::storage::FileSystem;
    let dir = Path::new("/v/packs");
    fs.list(dir)
        .unwrap()
        .into_iter()
        .map(|n| dir.join(n))
        .collect()
}

#[test]
fn deleting_files_on_a_full_disk_frees_space_for_new_writes() {
    let fx = Fixture::new();
    fx.fs.set_capacity(Some(3 << 20));
    let v = fx.open_on_with(&fx.fs, small_packs());
    let mut kept = Vec::new();
    let mut full = None;
    for n in 0..40u8 {
        match write_file(&v, &format!("f{n}"), &content(n)) {
            Ok(_) => kept.push(n),
            Err(e) => {
                full = Some((n, errno_of(&e)));
                break;
            }
        }
    }
    let (failed, errno) = full.expect("a 3 MiB disk fills up");
    assert_eq!(errno, Some(ENOSPC));
    // The file whose write failed is there, without the data (the engine
    // never shows bytes it did not store).
    let ino = v.lookup(ROOT, format!("f{failed}").as_bytes()).unwrap().ino;
    assert_eq!(v.getattr(ino).unwrap().size, 0);
    // Delete half of what was written.
    let used_full = fx.fs.used_bytes();
    let (gone, kept): (Vec<u8>, Vec<u8>) = kept.iter().partition(|n| *n % 2 == 0);
    for n in &gone {
        v.unlink(ROOT, format!("f{n}").as_bytes()).unwrap();
    }
    v.sync().unwrap();
    let freed = used_full - fx.fs.used_bytes();
    assert!(
        freed >= gone.len() as u64 * FILE as u64 * 9 / 10,
        "deleting {} files of {FILE} bytes freed {freed} bytes",
        gone.len()
    );
    assert!(pack_paths(&fx.fs)
        .iter()
        .any(|p| !fx.fs.holes(p).is_empty()));
    // Without reopening: new data fits again and is durable.
    write_file(&v, "new", &content(200)).unwrap();
    v.write(ino, 0, &content(201)).unwrap();
    v.fsync(ino).unwrap();
    assert_clean(&v);
    v.close().unwrap();
    let v = fx.open_on_with(&fx.fs, small_packs());
    for n in kept {
        let ino = v.lookup(ROOT, format!("f{n}").as_bytes()).unwrap().ino;
        assert_eq!(v.read(ino, 0, FILE + 1).unwrap(), content(n));
    }
    let new = v.lookup(ROOT, b"new").unwrap().ino;
    assert_eq!(v.read(new, 0, FILE).unwrap(), content(200));
    assert_eq!(v.read(ino, 0, FILE).unwrap(), content(201));
    assert_clean(&v);
}

/// Deletes and overwrites (with syncs between, which punch) of files made
/// durable first.
fn workload(v: &Vault) -> crypto_core::Result<()> {
    let f: Vec<u64> = (0..4u8)
        .map(|n| write_file(v, &format!("f{n}"), &content(n)))
        .collect::<crypto_core::Result<_>>()?;
    v.unlink(ROOT, b"f0")?;
    v.write(f[1], 10_000, &content(9)[..50_000])?; // overwrites, frees frames
    v.sync()?; // durable, then punched
    v.unlink(ROOT, b"f2")?;
    v.write(f[3], 0, &content(7))?;
    v.sync()?;
    v.write(f[1], 0, &content(8))?;
    v.unlink(ROOT, b"f3")?;
    v.end_session()
}

#[test]
fn a_crash_at_any_write_never_leaves_a_reference_to_a_punched_frame() {
    let fx = Fixture::new();
    let total = {
        let fs = MemFs::new();
        workload(&fx.open_on_with(&fs, small_packs())).unwrap();
        let holes: usize = pack_paths(&fs).iter().map(|p| fs.holes(p).len()).sum();
        assert!(holes > 0, "the workload punches frames");
        fs.writes()
    };
    for nth in 1..=total {
        for torn in [0, 1 << 20] {
            let fs = MemFs::new();
            fs.set_fault(Some(Fault::Crash { nth }));
            // Fails somewhere once the machine stops (opening included).
            let opened = Vault::open_with(
                Arc::new(fs.clone()),
                Path::new("/v"),
                fx.config.clone(),
                fx.master.clone(),
                small_packs(),
            );
            if let Ok(v) = opened {
                let _ = workload(&v);
            }
            let v = fx.open_on_with(&fs.after_crash(torn), small_packs());
            let report = fsck::check(&v, FsckOptions::default(), &mut |_, _| {}).unwrap();
            assert!(
                report.findings.is_empty(),
                "crash after write {nth} of {total} (torn {torn}): {:?}",
                report.findings
            );
        }
    }
}
