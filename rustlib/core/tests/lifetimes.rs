//! Inode lifetimes: an inode without names lives while the kernel holds a
//! lookup of it or a handle is open, and is reclaimed when the last goes;
//! close and, after a crash, the next open reclaim what is left.

mod common;

use common::memvault::MemVault as Fixture;
use crypto_core::vault::engine::{RenameFlags, Vault, ROOT};
use crypto_core::Error;

const ENOENT: i32 = 2;

fn errno(r: crypto_core::Result<impl std::fmt::Debug>) -> i32 {
    match r {
        Err(Error::Fs { errno, .. }) => errno,
        other => panic!("expected an errno, got {other:?}"),
    }
}

/// Plaintext bytes stored and live pack bytes: both zero once every file is gone.
fn stored(v: &Vault) -> (u64, u64) {
    let live = v.state().packs.values().map(|p| p.live).sum();
    (v.usage().1, live)
}

/// A file `name` in the root holding `len` bytes, as the kernel would have
/// it after creating it: one lookup.
fn remembered_file(v: &Vault, name: &[u8], len: usize) -> u64 {
    let f = v.create(ROOT, name, 0o644, 0, 0).unwrap();
    v.remember(&[f.ino]).unwrap();
    v.write(f.ino, 0, &vec![9u8; len]).unwrap();
    f.ino
}

#[test]
fn an_unlinked_file_lives_until_the_kernel_forgets_it() {
    let fx = Fixture::new();
    let v = fx.open();
    let f = remembered_file(&v, b"f", 40_000);
    v.remember(&[f]).unwrap(); // a second lookup (say, a readdirplus entry)
    assert_eq!(v.kernel_lookups(f), 2);
    v.unlink(ROOT, b"f").unwrap();
    // No handle is open (an O_PATH descriptor holds none), yet the kernel
    // may still stat or open it.
    let a = v.getattr(f).unwrap();
    assert_eq!((a.nlink, a.size), (0, 40_000));
    v.open(f).unwrap();
    assert_eq!(v.read(f, 39_990, 100).unwrap(), vec![9u8; 10]);
    v.release(f).unwrap();
    assert!(
        v.getattr(f).is_ok(),
        "released, but the kernel holds two lookups"
    );
    v.forget(&[(f, 1)]).unwrap();
    assert!(v.getattr(f).is_ok(), "one lookup is left");
    assert_ne!(stored(&v), (0, 0));
    v.forget(&[(f, 1)]).unwrap();
    assert_eq!(errno(v.getattr(f)), ENOENT);
    assert_eq!(stored(&v), (0, 0), "its data is freed");
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "an_unlinked_file_lives_until_the_kernel_forgets_it",
    );
}

#[test]
fn the_last_of_handle_and_lookup_reclaims_whichever_it_is() {
    let fx = Fixture::new();
    let v = fx.open();
    // Forgotten first, released last.
    let a = remembered_file(&v, b"a", 100);
    v.open(a).unwrap();
    v.unlink(ROOT, b"a").unwrap();
    v.forget(&[(a, 1)]).unwrap();
    assert!(v.getattr(a).is_ok(), "still open");
    v.release(a).unwrap();
    assert_eq!(errno(v.getattr(a)), ENOENT);
    // Released first, forgotten last.
    let b = remembered_file(&v, b"b", 100);
    v.open(b).unwrap();
    v.unlink(ROOT, b"b").unwrap();
    v.release(b).unwrap();
    assert!(v.getattr(b).is_ok(), "the kernel still holds it");
    v.forget(&[(b, 1)]).unwrap();
    assert_eq!(errno(v.getattr(b)), ENOENT);
    assert_eq!(stored(&v), (0, 0));
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "the_last_of_handle_and_lookup_reclaims_whichever_it_is",
    );
}

#[test]
fn a_file_replaced_by_rename_lives_until_forgotten() {
    let fx = Fixture::new();
    let v = fx.open();
    let old = remembered_file(&v, b"doc", 20_000);
    let new = remembered_file(&v, b"doc.tmp", 10);
    v.rename(ROOT, b"doc.tmp", ROOT, b"doc", RenameFlags::default())
        .unwrap();
    assert_eq!(v.lookup(ROOT, b"doc").unwrap().ino, new);
    assert_eq!(v.getattr(old).unwrap().nlink, 0);
    v.open(old).unwrap();
    assert_eq!(v.read(old, 0, 3).unwrap(), vec![9u8; 3]);
    v.release(old).unwrap();
    // One batch (BATCH_FORGET): the old file goes, the new one keeps its name.
    v.forget(&[(old, 1), (new, 1)]).unwrap();
    assert_eq!(errno(v.getattr(old)), ENOENT);
    assert_eq!(v.getattr(new).unwrap().nlink, 1);
    assert_eq!(v.usage().1, 10);
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "a_file_replaced_by_rename_lives_until_forgotten",
    );
}

#[test]
fn forgetting_a_named_inode_or_an_uncounted_one_changes_nothing() {
    let fx = Fixture::new();
    let v = fx.open();
    let f = remembered_file(&v, b"f", 10);
    v.forget(&[(f, 1)]).unwrap();
    assert_eq!(v.kernel_lookups(f), 0);
    assert_eq!(v.getattr(f).unwrap().nlink, 1, "a name keeps it");
    // More than was counted, unknown inodes, the root: passed over.
    v.forget(&[(f, 3), (999, 1), (ROOT, 7)]).unwrap();
    assert!(v.getattr(f).is_ok());
    assert!(v.getattr(ROOT).is_ok());
    // The root is never counted (the kernel never forgets it).
    v.remember(&[ROOT]).unwrap();
    assert_eq!(v.kernel_lookups(ROOT), 0);
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "forgetting_a_named_inode_or_an_uncounted_one_changes_nothing",
    );
}

#[test]
fn remembering_a_reclaimed_inode_fails_and_counts_nothing() {
    let fx = Fixture::new();
    let v = fx.open();
    let gone = v.create(ROOT, b"gone", 0o644, 0, 0).unwrap().ino;
    v.unlink(ROOT, b"gone").unwrap(); // no lookup, no handle: reclaimed at once
    let f = v.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    assert_eq!(errno(v.remember(&[f, gone])), ENOENT);
    assert_eq!(v.kernel_lookups(f), 0, "all or nothing");
    v.unlink(ROOT, b"f").unwrap();
    assert_eq!(errno(v.getattr(f)), ENOENT);
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "remembering_a_reclaimed_inode_fails_and_counts_nothing",
    );
}

#[test]
fn a_removed_directory_still_referenced_is_empty_and_takes_no_entries() {
    let fx = Fixture::new();
    let v = fx.open();
    let d = v.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap().ino;
    v.remember(&[d]).unwrap();
    let sub = v.mkdir(d, b"sub", 0o755, 0, 0).unwrap().ino;
    assert_eq!(v.parent(sub).unwrap(), d);
    v.rmdir(d, b"sub").unwrap();
    v.rmdir(ROOT, b"d").unwrap();
    // Someone's current directory: it stats, lists empty, holds nothing.
    let a = v.getattr(d).unwrap();
    assert_eq!(a.nlink, 0);
    assert!(v.readdirplus(d, 0, 100).unwrap().is_empty());
    assert_eq!(errno(v.lookup(d, b"x")), ENOENT);
    assert_eq!(errno(v.create(d, b"x", 0o644, 0, 0)), ENOENT);
    assert_eq!(errno(v.mkdir(d, b"x", 0o755, 0, 0)), ENOENT);
    assert_eq!(v.parent(d).unwrap(), ROOT);
    assert_eq!(v.parent(ROOT).unwrap(), ROOT);
    v.forget(&[(d, 1)]).unwrap();
    assert_eq!(errno(v.getattr(d)), ENOENT);
    assert_eq!(v.directories(), 1);
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "a_removed_directory_still_referenced_is_empty_and_takes_no_entries",
    );
}

#[test]
fn close_reclaims_what_the_kernel_never_forgot() {
    let fx = Fixture::new();
    let v = fx.open();
    let f = remembered_file(&v, b"f", 30_000);
    let kept = remembered_file(&v, b"kept", 5);
    v.unlink(ROOT, b"f").unwrap();
    v.close().unwrap();
    let v = fx.open();
    assert!(
        v.bootstrap_report().orphans_reclaimed.is_empty(),
        "close did it"
    );
    assert_eq!(errno(v.getattr(f)), ENOENT);
    assert_eq!(v.read(kept, 0, 10).unwrap(), vec![9u8; 5]);
    assert_eq!(stored(&v).0, 5);
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "close_reclaims_what_the_kernel_never_forgot",
    );
}

#[test]
fn after_a_crash_the_next_open_reclaims_an_unlinked_but_remembered_file() {
    let fx = Fixture::new();
    let v = fx.open();
    let f = remembered_file(&v, b"f", 50_000);
    let kept = remembered_file(&v, b"kept", 7);
    v.unlink(ROOT, b"f").unwrap();
    v.sync().unwrap();
    fx.fs.crash();
    let rebooted = fx.fs.after_crash(0);
    let v2 = fx.open_on(&rebooted);
    assert_eq!(v2.bootstrap_report().orphans_reclaimed, vec![f]);
    assert_eq!(errno(v2.getattr(f)), ENOENT);
    // Nothing reclaimed early: the named file, remembered too, is whole.
    assert_eq!(v2.read(kept, 0, 10).unwrap(), vec![9u8; 7]);
    assert_eq!(v2.usage().1, 7, "only kept's bytes are stored");
    assert_eq!(v2.usage().0, 2, "the root and kept: nothing leaks");
    drop(v);
    common::oracle::close_and_check(v2, || fx.open_on(&rebooted), "reclaimed after a crash");
}
