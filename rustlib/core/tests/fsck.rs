//! The checker: a vault built by every kind of operation is clean; each kind
//! of damage, to the state or to the disk, is found by its own check and
//! named by inode and path (and, for data, byte range).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::memvault::MemVault;
use crypto_core::fsck::{self, state_checks, Check, FsckOptions, FsckReport};
use crypto_core::metadata::{AttrChange, Dir, MetadataState, ROOT_INO};
use crypto_core::storage::memfs::MemFs;
use crypto_core::storage::FileSystem;
use crypto_core::vault::config::VaultConfig;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};

fn open(fs: &MemFs, config: &VaultConfig, master: &crypto_core::crypto::keys::SecretKey) -> Vault {
    Vault::open_with(
        Arc::new(fs.clone()),
        Path::new("/v"),
        config.clone(),
        master.clone(),
        EngineOptions {
            log_rotate_bytes: 4096,
            pack_size_limit: 100_000,
            cache_bytes: 0,
            ..Default::default()
        },
    )
    .unwrap()
}

/// A vault with a bit of everything; (fs, inode numbers by name).
struct Built {
    fs: MemFs,
    config: VaultConfig,
    master: crypto_core::crypto::keys::SecretKey,
    big: u64,
    small: u64,
    dir: u64,
}

fn build() -> Built {
    let MemVault { fs, config, master } = MemVault::new();
    let v = open(&fs, &config, &master);
    let dir = v.mkdir(ROOT, b"docs", 0o755, 1000, 1000).unwrap().ino;
    let sub = v.mkdir(dir, b"sub", 0o700, 1000, 1000).unwrap().ino;
    let big = v.create(dir, b"big.bin", 0o644, 1000, 1000).unwrap().ino;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    v.write(big, 0, &data).unwrap();
    v.write(big, 1_000_000, b"after a hole").unwrap();
    v.setattr(
        big,
        AttrChange {
            size: Some(900_000),
            ..Default::default()
        },
    )
    .unwrap();
    let small = v.create(sub, b"small.txt", 0o600, 1000, 1000).unwrap().ino;
    v.write(small, 0, b"hello").unwrap();
    v.link(small, ROOT, b"hardlink").unwrap();
    v.symlink(ROOT, b"link", b"docs/big.bin", 1000, 1000)
        .unwrap();
    v.setxattr(small, b"user.k", b"v", false, false).unwrap();
    let gone = v.create(ROOT, b"gone", 0o644, 0, 0).unwrap().ino;
    v.write(gone, 0, &[1u8; 40_000]).unwrap();
    v.unlink(ROOT, b"gone").unwrap();
    v.rename(ROOT, b"hardlink", dir, b"moved", Default::default())
        .unwrap();
    v.sync().unwrap();
    drop(v);
    Built {
        fs,
        config,
        master,
        big,
        small,
        dir,
    }
}

fn run(b: &Built, quick: bool) -> FsckReport {
    let v = open(&b.fs, &b.config, &b.master);
    fsck::check(
        &v,
        FsckOptions {
            quick,
            repair: false,
            ..Default::default()
        },
        &mut |_, _| {},
    )
    .unwrap()
}

fn checks(r: &FsckReport) -> Vec<Check> {
    r.findings.iter().map(|f| f.check).collect()
}

#[test]
fn a_vault_built_by_every_operation_is_clean() {
    let b = build();
    let full = run(&b, false);
    assert!(full.is_clean(), "{:#?}", full.findings);
    assert!(full.frames_verified >= 14 && full.bytes_verified >= 200_000);
    assert_eq!((full.files, full.directories), (2, 3));
    let quick = run(&b, true);
    assert!(quick.is_clean() && quick.frames_verified == 0);
}

#[test]
fn a_damaged_frame_is_named_by_path_and_byte_range() {
    let b = build();
    let v = open(&b.fs, &b.config, &b.master);
    let r = *v.state_copy().inodes[&b.big].segments.get(&3).unwrap();
    drop(v);
    let pack = Path::new("/v/packs").join(crypto_core::packs::file::pack_file_name(r.pack));
    b.fs.poke(&pack, |bytes| bytes[(r.offset + 20) as usize] ^= 1);
    let report = run(&b, false);
    assert_eq!(checks(&report), vec![Check::Frame]);
    let f = &report.findings[0];
    assert_eq!(f.path.as_deref(), Some("/docs/big.bin"));
    assert!(
        f.detail.starts_with("bytes 49152..65536 (segment 3"),
        "{}",
        f.detail
    );
    assert!(run(&b, true).is_clean(), "--quick reads no frame");
}

#[test]
fn a_missing_pack_a_short_pack_and_a_stray_pack_are_found() {
    let b = build();
    let v = open(&b.fs, &b.config, &b.master);
    let s = v.state_copy();
    let small = *s.inodes[&b.small].segments.get(&0).unwrap();
    let big = *s.inodes[&b.big].segments.get(&0).unwrap();
    drop(v);
    let path = |p: u64| Path::new("/v/packs").join(crypto_core::packs::file::pack_file_name(p));
    // A stray pack: a copy of a real one under an unused number.
    let copy = b.fs.contents(&path(big.pack)).unwrap();
    b.fs.create_new(&path(9999))
        .unwrap()
        .write_all_at(&copy, 0)
        .unwrap();
    // Opening removes it (nothing refers to it) and says so; fsck then
    // finds nothing.
    let v = open(&b.fs, &b.config, &b.master);
    assert_eq!(v.bootstrap_report().stray_packs_removed, vec![9999]);
    assert!(!b.fs.exists(&path(9999)));
    drop(v);
    assert!(run(&b, true).is_clean());

    // A pack cut short (as by a lost tail): the frames past the cut.
    let len = copy.len();
    b.fs.poke(&path(big.pack), |bytes| bytes.truncate(len - 100));
    let report = run(&b, true);
    assert!(
        checks(&report).contains(&Check::TruncatedPack),
        "{:#?}",
        report.findings
    );
    b.fs.poke(&path(big.pack), |bytes| *bytes = copy.clone());

    b.fs.remove(&path(small.pack)).unwrap();
    let report = run(&b, false);
    assert!(
        checks(&report).contains(&Check::MissingPack),
        "{:#?}",
        report.findings
    );
    assert!(report
        .findings
        .iter()
        .any(|f| f.check == Check::Frame && f.path.as_deref() == Some("/docs/moved")));
}

/// The state of `build()`'s vault, to damage by hand.
fn state() -> (Built, MetadataState) {
    let b = build();
    let v = open(&b.fs, &b.config, &b.master);
    let s = v.state_copy();
    drop(v);
    (b, s)
}

fn inode(s: &mut MetadataState, ino: u64) -> &mut crypto_core::metadata::Inode {
    Arc::make_mut(s.inodes.get_mut(&ino).unwrap())
}

fn found(s: &MetadataState) -> Vec<Check> {
    state_checks::check_state(s)
        .iter()
        .map(|f| f.check)
        .collect()
}

#[test]
fn damage_to_the_state_is_found_by_its_own_check() {
    let (b, clean) = state();
    assert!(found(&clean).is_empty());

    let mut s = clean.clone();
    inode(&mut s, b.small).links = 3;
    assert_eq!(found(&s), vec![Check::LinkCount]);

    let mut s = clean.clone();
    inode(&mut s, b.big).size = 100;
    let f = found(&s);
    assert!(
        !f.is_empty() && f.iter().all(|c| *c == Check::SegmentMap),
        "{f:?}"
    );

    let mut s = clean.clone();
    let g = s.generation_high;
    inode(&mut s, b.small)
        .segments
        .get_mut(&0)
        .unwrap()
        .generation = g + 1;
    assert_eq!(found(&s), vec![Check::SegmentMap]);

    let mut s = clean.clone();
    let frame = *s.inodes[&b.big].segments.get(&0).unwrap();
    *inode(&mut s, b.small).segments.get_mut(&0).unwrap() = crypto_core::metadata::SegmentRef {
        plain_len: 5,
        ..frame
    };
    assert!(found(&s).contains(&Check::SharedFrame), "{:?}", found(&s));

    let mut s = clean.clone();
    let id = s.inodes[&b.big].file_id;
    inode(&mut s, b.small).file_id = id;
    assert_eq!(found(&s), vec![Check::Record]);

    let mut s = clean.clone();
    let p = *s.packs.keys().next().unwrap();
    s.packs.get_mut(&p).unwrap().live += 1;
    assert_eq!(found(&s), vec![Check::PackAccounting]);

    let mut s = clean.clone();
    s.next_ino = 2;
    assert_eq!(found(&s), vec![Check::Record]);

    // An entry naming an inode that does not exist (and the inode's own
    // name gone: an orphan).
    let mut s = clean.clone();
    s.inodes.remove(&b.small);
    let f = found(&s);
    assert!(f.contains(&Check::DanglingEntry), "{f:?}");

    // The root's entries lost: everything below it is cut off.
    let mut s = clean.clone();
    s.dirs.insert(ROOT_INO, Dir::default());
    let f = found(&s);
    assert!(f.contains(&Check::Disconnected), "{f:?}");
    assert!(state_checks::check_tree(&s)
        .iter()
        .any(|x| x.ino == Some(b.dir)));
}

#[test]
fn an_open_nameless_file_is_no_orphan_until_released() {
    let b = build();
    let v = open(&b.fs, &b.config, &b.master);
    let f = v.create(ROOT, b"temp", 0o644, 0, 0).unwrap().ino;
    v.open(f).unwrap();
    v.unlink(ROOT, b"temp").unwrap();
    let live = fsck::check(
        &v,
        FsckOptions {
            quick: true,
            repair: false,
            ..Default::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert!(live.is_clean(), "{:#?}", live.findings);
    // What the check would say of the same state with nothing holding it.
    assert!(state_checks::check_link_counts(&v.state_copy())
        .iter()
        .any(|x| x.check == Check::Orphan && x.ino == Some(f)));
    v.release(f).unwrap();
    assert!(fsck::check(&v, FsckOptions::default(), &mut |_, _| {})
        .unwrap()
        .is_clean());
}
