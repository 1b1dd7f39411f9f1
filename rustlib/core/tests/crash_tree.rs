//! Random mixes of namespace operations cut by a crash: creates, mkdirs,
//! symlinks, hard links, unlinks, rmdirs, renames (plain, no-replace and
//! exchange, across directories), small writes, truncates, extended
//! attributes and modes, with fsyncs, the scheduler's syncs, compactions
//! and reopens. After the crash the whole tree (names, kinds, modes, link
//! counts, contents, symlink targets, extended attributes) is as it was
//! after some prefix of the operations no shorter than the last fsync or
//! sync that returned, and the vault checks clean.
//!
//! The model is the engine itself: the same operations run on a twin
//! vault that never crashes, and the twin's tree after each operation is
//! what a crash may leave. So this checks what crashes do (every change
//! whole or not at all, in order, nothing durable lost), not what the
//! operations mean (the POSIX suites and `tests/engine.rs` check that).
//! `crash_mix.rs` does the same for the data path of two files.

mod common;

use std::collections::BTreeMap;

use common::memvault::MemVault;
use crypto_core::metadata::{AttrChange, InodeKind};
use crypto_core::storage::memfs::{Fault, MemFs};
use crypto_core::vault::engine::{RenameFlags, Vault, ROOT};
use proptest::prelude::*;

/// The paths operations name: a small namespace, so names meet often
/// (renames over existing entries, links into directories that exist or
/// not, rmdir of directories that are empty or not).
const PATHS: [&str; 9] = ["x", "y", "a", "b", "a/x", "a/y", "a/c", "a/c/x", "b/x"];
const XATTRS: [&[u8]; 2] = [b"user.k", b"user.l"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Mkdir(usize),
    /// A symlink at path `.0` with a one-byte target.
    Symlink(usize, u8),
    /// A hard link of `.0` at `.1`.
    Link(usize, usize),
    Unlink(usize),
    Rmdir(usize),
    /// Rename `.0` to `.1`; `.2`: 0 plain, 1 no-replace, 2 exchange.
    Rename(usize, usize, u8),
    /// Write `.2` bytes of `.3` at `.1` into the file at `.0`.
    Write(usize, u16, u16, u8),
    Truncate(usize, u16),
    /// Set (`Some`) or remove an extended attribute.
    Xattr(usize, usize, Option<u8>),
    Chmod(usize, u16),
    Fsync(usize),
    Sync,
    CompactLog,
    CompactPacks,
    /// Close the vault and open it again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let p = || 0..PATHS.len();
    prop_oneof![
        3 => p().prop_map(Op::Create),
        2 => p().prop_map(Op::Mkdir),
        1 => (p(), any::<u8>()).prop_map(|(a, t)| Op::Symlink(a, t)),
        2 => (p(), p()).prop_map(|(a, b)| Op::Link(a, b)),
        2 => p().prop_map(Op::Unlink),
        2 => p().prop_map(Op::Rmdir),
        4 => (p(), p(), 0u8..3).prop_map(|(a, b, f)| Op::Rename(a, b, f)),
        3 => (p(), 0u16..20_000, 1u16..3000, any::<u8>()).prop_map(|(a, o, l, b)| Op::Write(a, o, l, b)),
        1 => (p(), 0u16..20_000).prop_map(|(a, s)| Op::Truncate(a, s)),
        2 => (p(), 0..XATTRS.len(), proptest::option::of(any::<u8>())).prop_map(|(a, k, v)| Op::Xattr(a, k, v)),
        1 => (p(), 0u16..0o1000).prop_map(|(a, m)| Op::Chmod(a, m)),
        3 => p().prop_map(Op::Fsync),
        2 => Just(Op::Sync),
        1 => Just(Op::CompactLog),
        1 => Just(Op::CompactPacks),
        1 => Just(Op::Reopen),
    ]
}

/// (parent directory, last name) of `path`, the parent looked up.
fn parent_of(v: &Vault, path: &str) -> crypto_core::Result<(u64, Vec<u8>)> {
    let mut dir = ROOT;
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().expect("a path has a name");
    for part in parts {
        dir = v.lookup(dir, part.as_bytes())?.ino;
    }
    Ok((dir, name.as_bytes().to_vec()))
}

fn ino_of(v: &Vault, path: &str) -> crypto_core::Result<u64> {
    let (dir, name) = parent_of(v, path)?;
    Ok(v.lookup(dir, &name)?.ino)
}

/// Do `o` to `v` (not `Reopen`: the callers do that).
fn apply(v: &Vault, o: &Op) -> crypto_core::Result<()> {
    let path = |k: usize| PATHS[k];
    match *o {
        Op::Create(a) => {
            let (d, n) = parent_of(v, path(a))?;
            v.create(d, &n, 0o644, 0, 0).map(drop)
        }
        Op::Mkdir(a) => {
            let (d, n) = parent_of(v, path(a))?;
            v.mkdir(d, &n, 0o755, 0, 0).map(drop)
        }
        Op::Symlink(a, t) => {
            let (d, n) = parent_of(v, path(a))?;
            v.symlink(d, &n, &[b't', t], 0, 0).map(drop)
        }
        Op::Link(a, b) => {
            let ino = ino_of(v, path(a))?;
            let (d, n) = parent_of(v, path(b))?;
            v.link(ino, d, &n).map(drop)
        }
        Op::Unlink(a) => {
            let (d, n) = parent_of(v, path(a))?;
            v.unlink(d, &n)
        }
        Op::Rmdir(a) => {
            let (d, n) = parent_of(v, path(a))?;
            v.rmdir(d, &n)
        }
        Op::Rename(a, b, how) => {
            let (d0, n0) = parent_of(v, path(a))?;
            let (d1, n1) = parent_of(v, path(b))?;
            let flags = RenameFlags {
                noreplace: how == 1,
                exchange: how == 2,
            };
            v.rename(d0, &n0, d1, &n1, flags)
        }
        Op::Write(a, off, len, byte) => {
            let data: Vec<u8> = (0..len).map(|k| byte.wrapping_add(k as u8)).collect();
            v.write(ino_of(v, path(a))?, off as u64, &data).map(drop)
        }
        Op::Truncate(a, size) => {
            let change = AttrChange {
                size: Some(size as u64),
                ..Default::default()
            };
            v.setattr(ino_of(v, path(a))?, change).map(drop)
        }
        Op::Xattr(a, k, Some(value)) => {
            v.setxattr(ino_of(v, path(a))?, XATTRS[k], &[value], false, false)
        }
        Op::Xattr(a, k, None) => v.removexattr(ino_of(v, path(a))?, XATTRS[k]),
        Op::Chmod(a, mode) => {
            let change = AttrChange {
                mode: Some(mode as u32),
                ..Default::default()
            };
            v.setattr(ino_of(v, path(a))?, change).map(drop)
        }
        Op::Fsync(a) => v.fsync(ino_of(v, path(a))?),
        Op::Sync => v.sync(),
        Op::CompactLog => v.compact_log().map(drop),
        Op::CompactPacks => v.compact_packs(0.0).map(drop),
        Op::Reopen => unreachable!("the callers reopen"),
    }
}

/// What one name shows: kind, mode, link count, size, and the contents,
/// symlink target and extended attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    kind: InodeKind,
    mode: u32,
    nlink: u32,
    size: u64,
    bytes: Vec<u8>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The whole tree under the root, by path.
type Tree = BTreeMap<String, Node>;

fn tree(v: &Vault) -> crypto_core::Result<Tree> {
    let mut out = Tree::new();
    let mut dirs = vec![(ROOT, String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        for e in v.readdir(dir, 0, usize::MAX)? {
            let path = format!("{prefix}{}", String::from_utf8_lossy(&e.name));
            let a = v.getattr(e.ino)?;
            let bytes = match a.kind {
                InodeKind::File => v.read(e.ino, 0, a.size as usize)?,
                InodeKind::Symlink => v.readlink(e.ino)?,
                _ => Vec::new(),
            };
            let mut xattrs = Vec::new();
            for k in v.listxattr(e.ino)? {
                let value = v.getxattr(e.ino, &k)?;
                xattrs.push((k, value));
            }
            if a.kind == InodeKind::Dir {
                dirs.push((e.ino, format!("{path}/")));
            }
            let node = Node {
                kind: a.kind,
                mode: a.mode,
                nlink: a.nlink,
                size: a.size,
                bytes,
                xattrs,
            };
            out.insert(path, node);
        }
    }
    Ok(out)
}

/// The twin's tree after each prefix of `ops` (index 0: before any), and
/// whether each operation succeeded there.
fn twin_trees(ops: &[Op], compress: bool) -> (Vec<Tree>, Vec<bool>) {
    let m = MemVault::compressed(compress);
    let mut v = m.open();
    let mut trees = vec![tree(&v).unwrap()];
    let mut ok = Vec::new();
    for o in ops {
        if let Op::Reopen = o {
            v.close().unwrap();
            v = m.open();
            ok.push(true);
        } else {
            ok.push(apply(&v, o).is_ok());
        }
        trees.push(tree(&v).unwrap());
    }
    v.close().unwrap();
    (trees, ok)
}

/// The vault a reboot finds on `fs` ([`MemVault::check_reboot`]): its
/// tree must be one of `trees` (those a crash may leave), the same
/// read-only and read-write.
fn check_after_crash(
    m: &MemVault,
    fs: &MemFs,
    trees: &[Tree],
) -> std::result::Result<(), TestCaseError> {
    let mut read_only: Option<Tree> = None;
    m.check_reboot(fs, |v| {
        let found = tree(v).unwrap();
        match &read_only {
            None => prop_assert!(
                trees.contains(&found),
                "after the crash the tree is not as after any allowed prefix: {found:?}"
            ),
            Some(before) => {
                prop_assert_eq!(before, &found, "read-write and read-only opens differ")
            }
        }
        read_only = Some(found);
        Ok(())
    })
}

fn durable_op(o: &Op) -> bool {
    matches!(o, Op::Fsync(_) | Op::Sync | Op::Reopen)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The crash after the last operation.
    #[test]
    fn a_crash_after_any_namespace_mix_keeps_what_was_synced(
        ops in proptest::collection::vec(op(), 1..60),
        compress in any::<bool>(),
    ) {
        let (trees, ok) = twin_trees(&ops, compress);
        let m = MemVault::compressed(compress);
        let mut v = m.open();
        let mut durable = 0;
        for (k, o) in ops.iter().enumerate() {
            let done = if let Op::Reopen = o {
                v.close().unwrap();
                v = m.open();
                true
            } else {
                apply(&v, o).is_ok()
            };
            prop_assert_eq!(done, ok[k], "{:?} went otherwise than on the twin", o);
            if done && durable_op(o) {
                durable = k + 1;
            }
        }
        prop_assert_eq!(&tree(&v).unwrap(), trees.last().unwrap());
        m.fs.crash();
        let fs = m.fs.after_crash(0);
        drop(v);
        check_after_crash(&m, &fs, &trees[durable..])?;
    }

    /// The crash at the `nth` write (`at_sync`: instead of the `nth` sync)
    /// of the file system: the operation under way fails, and may or may
    /// not have taken effect; `torn` bytes of unsynced tails survive.
    #[test]
    fn a_crash_anywhere_in_a_namespace_mix_keeps_what_was_synced(
        ops in proptest::collection::vec(op(), 1..50),
        nth in 1u64..300,
        at_sync in any::<bool>(),
        torn in prop_oneof![Just(0usize), Just(100), Just(5000)],
        compress in any::<bool>(),
    ) {
        // (No reopen here: the recovery below is the reopen after the crash.)
        let ops: Vec<Op> = ops.into_iter().filter(|o| !matches!(o, Op::Reopen)).collect();
        let (trees, ok) = twin_trees(&ops, compress);
        let m = MemVault::compressed(compress);
        let v = m.open();
        m.fs.set_fault(Some(if at_sync {
            Fault::CrashAtSync { nth: m.fs.syncs() + nth }
        } else {
            Fault::Crash { nth: m.fs.writes() + nth }
        }));
        let (mut durable, mut last) = (0, ops.len());
        for (k, o) in ops.iter().enumerate() {
            let done = apply(&v, o).is_ok();
            if m.fs.crashed() {
                last = k + 1; // this one may have taken effect
                break;
            }
            prop_assert_eq!(done, ok[k], "{:?} went otherwise than on the twin", o);
            if done && durable_op(o) {
                durable = k + 1;
            }
        }
        m.fs.crash();
        let fs = m.fs.after_crash(torn);
        drop(v);
        check_after_crash(&m, &fs, &trees[durable..=last])?;
    }
}
