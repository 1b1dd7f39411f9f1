//! Rollback protection (FORMAT.md §7.2 chain, §12 local state): a vault
//! behind what this machine saw — its newest log file deleted, an older
//! copy of it put back, its last acknowledged record damaged, its metadata
//! deleted — is refused with one line, unless the user accepts the
//! rollback; a vault never seen here opens with a note.

mod common;

use common::memvault::cheap_options;
use std::path::{Path, PathBuf};

use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};
use crypto_core::Error;

fn opts(state: &Path, accept: bool) -> EngineOptions {
    EngineOptions {
        local_state_dir: Some(state.to_path_buf()),
        accept_rollback: accept,
        ..Default::default()
    }
}

fn write(v: &Vault, name: &[u8], data: &[u8]) {
    let f = v.create(ROOT, name, 0o644, 0, 0).unwrap().ino;
    v.write(f, 0, data).unwrap();
    v.sync().unwrap();
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// A vault made in two sessions, both seen by the local state in `state`.
fn two_sessions(tmp: &Path) -> (PathBuf, PathBuf) {
    let (dir, state) = (tmp.join("v"), tmp.join("state"));
    let v = Vault::create_vault(&dir, b"pw", &cheap_options(), opts(&state, false)).unwrap();
    write(&v, b"one", b"first session");
    v.close().unwrap();
    let v = Vault::open_vault(&dir, b"pw", opts(&state, false)).unwrap();
    write(&v, b"two", b"second session");
    v.close().unwrap();
    (dir, state)
}

fn rolled_back(r: crypto_core::Result<Vault>) -> String {
    match r {
        Err(e @ Error::RolledBack(_)) => e.to_string(),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a vault behind its local state opened"),
    }
}

#[test]
fn a_deleted_newest_log_file_is_refused_unless_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = two_sessions(tmp.path());
    // Without its copy too (else the open restores it: no rollback at all).
    let newest = logs(&dir).pop().unwrap();
    std::fs::remove_file(&newest).unwrap();
    std::fs::remove_file(dir.join("mirror/log").join(newest.file_name().unwrap())).unwrap();
    let why = rolled_back(Vault::open_vault(&dir, b"pw", opts(&state, false)));
    assert!(why.contains("--accept-rollback"), "{why}");
    assert!(!why.contains('\n'));
    // Read-only it is refused too: the user must say so.
    let ro = EngineOptions {
        read_only: true,
        ..opts(&state, false)
    };
    rolled_back(Vault::open_vault(&dir, b"pw", ro));
    // Without a local state (another machine) the cut goes unseen...
    let other = tmp.path().join("elsewhere");
    let v = Vault::open_vault(&dir, b"pw", opts(&other, false)).unwrap();
    assert!(v.bootstrap_report().local_state_notes[0].contains("starts now"));
    // (The first session's Close is now the last record: cutting whole
    // sessions off is what only the local state catches.)
    assert!(v.bootstrap_report().closed_cleanly);
    drop(v);
    // ...and accepted here, the vault is taken as it is from now on.
    let v = Vault::open_vault(&dir, b"pw", opts(&state, true)).unwrap();
    assert!(v.bootstrap_report().local_state_notes[0].contains("rollback accepted"));
    v.close().unwrap();
    Vault::open_vault(&dir, b"pw", opts(&state, false))
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn an_older_copy_of_the_whole_vault_put_back_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = two_sessions(tmp.path());
    let old = tmp.path().join("old");
    copy_tree(&dir, &old);
    let v = Vault::open_vault(&dir, b"pw", opts(&state, false)).unwrap();
    write(&v, b"three", b"third session");
    v.compact_log().unwrap(); // the snapshot moves on too
    v.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&old, &dir).unwrap();
    let why = rolled_back(Vault::open_vault(&dir, b"pw", opts(&state, false)));
    assert!(why.contains("behind"), "{why}");
}

#[test]
fn damage_to_an_acknowledged_record_is_not_taken_for_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = two_sessions(tmp.path());
    let newest = logs(&dir).pop().unwrap();
    std::fs::remove_file(dir.join("mirror/log").join(newest.file_name().unwrap())).unwrap();
    // The last record (the session's Close) damaged: it looks torn.
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0x20;
    std::fs::write(&newest, &bytes).unwrap();
    let backup = tmp.path().join("backup");
    copy_tree(&dir, &backup);
    // This machine saw it durable: damage, refused, nothing cut.
    let e = Vault::open_vault(&dir, b"pw", opts(&state, false))
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::LogCorrupt(_) | Error::RolledBack(_)),
        "{e}"
    );
    assert_eq!(std::fs::read(&newest).unwrap(), bytes, "nothing was cut");
    // Elsewhere it is a torn tail, cut: the state before the Close.
    let other = tmp.path().join("elsewhere");
    let v = Vault::open_vault(&backup, b"pw", opts(&other, false)).unwrap();
    assert!(v.bootstrap_report().log.torn_bytes_cut > 0);
    assert!(v.lookup(ROOT, b"two").is_ok());
}

#[test]
fn a_vault_whose_metadata_was_deleted_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _state) = two_sessions(tmp.path());
    for d in ["log", "snap", "mirror"] {
        let _ = std::fs::remove_dir_all(dir.join(d));
    }
    // Whatever this machine saw (here: nothing), packs and no metadata.
    let e = Vault::open_vault(&dir, b"pw", EngineOptions::default())
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("neither a log nor a snapshot"),
        "{e}"
    );
}

#[test]
fn the_local_state_follows_every_sync_not_only_the_close() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = two_sessions(tmp.path());
    let v = Vault::open_vault(&dir, b"pw", opts(&state, false)).unwrap();
    assert!(v.bootstrap_report().local_state_notes.is_empty());
    assert!(v.bootstrap_report().closed_cleanly);
    write(&v, b"three", b"synced");
    let earlier = tmp.path().join("earlier");
    copy_tree(&dir, &earlier); // the vault as it is mid-session
    write(&v, b"four", b"synced later, in the same session");
    // The session never closes (the process is killed): only the syncs
    // told the local state how far the vault reached.
    let state_file = std::fs::read_dir(&state)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let noted = std::fs::read(&state_file).unwrap();
    drop(v);
    std::fs::write(&state_file, noted).unwrap(); // as the kill left it (drop closes)
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::rename(&earlier, &dir).unwrap();
    let _ = std::fs::remove_file(dir.join("fusefs.lock"));
    rolled_back(Vault::open_vault(&dir, b"pw", opts(&state, false)));
}
