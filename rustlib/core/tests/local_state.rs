//! The local state file on a real directory: where it goes and with which
//! modes, what a later open reads back, how cheap a note is, and that its
//! troubles (damage, an unreadable file, a directory that cannot be
//! written) are reported and never stop anything.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crypto_core::crypto::keys::SecretKey;
use crypto_core::vault::local_state::judgement::{judge, VaultEnd, Verdict, NEW_NOTE};
use crypto_core::vault::local_state::{file_name, Found, LocalState, Seen, FILE_LEN, SLOT_LEN};

const ID: [u8; 16] = [0x5a; 16];

fn master() -> SecretKey {
    SecretKey::from_bytes([3; 32])
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_file_and_its_directory_are_private_and_appear_at_the_first_note() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state").join("fusefs").join("vaults");
    let ls = LocalState::open(&dir, &ID, &master());
    assert_eq!(ls.found(), &Found::Nothing);
    assert_eq!(ls.problem_at_open(), None);
    assert!(!dir.exists(), "opening writes nothing");
    ls.note_durable(1, [1; 16]);
    let path = dir.join("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a.state");
    assert_eq!(ls.path(), path);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&path), 0o600);
    ls.close(true);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_LEN as u64);
    assert_eq!(ls.take_write_problem(), None);
}

#[test]
fn a_later_open_reads_the_last_note() {
    let tmp = tempfile::tempdir().unwrap();
    let ls = LocalState::open(tmp.path(), &ID, &master());
    ls.note_durable(5, [5; 16]);
    ls.note_snapshot(2, 4);
    ls.note_durable(9, [9; 16]);
    assert_eq!(ls.acknowledged(), 9);
    drop(ls); // no close: a crash (the page cache still holds the writes)
    let again = LocalState::open(tmp.path(), &ID, &master());
    let want = Seen {
        seq: 9,
        chain: [9; 16],
        snapshot: 2,
        covers_seq: 4,
        clean: false,
    };
    assert_eq!(again.found(), &Found::Seen(want));
    assert_eq!(again.seen(), Some(&want));
    assert_eq!(again.acknowledged(), 9);
    again.close(true);
    let third = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(
        third.seen(),
        Some(&Seen {
            clean: true,
            ..want
        })
    );
}

#[test]
fn adopt_replaces_every_field_even_backwards() {
    let tmp = tempfile::tempdir().unwrap();
    let ls = LocalState::open(tmp.path(), &ID, &master());
    ls.note_snapshot(7, 70);
    ls.note_durable(100, [1; 16]);
    let accepted = Seen {
        seq: 40,
        chain: [4; 16],
        snapshot: 3,
        covers_seq: 30,
        clean: true,
    };
    ls.adopt(accepted);
    assert_eq!(ls.acknowledged(), 40);
    let again = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(
        again.seen(),
        Some(&Seen {
            clean: false,
            ..accepted
        })
    );
}

#[test]
fn a_write_torn_in_the_newer_slot_leaves_the_one_before() {
    let tmp = tempfile::tempdir().unwrap();
    let ls = LocalState::open(tmp.path(), &ID, &master());
    ls.note_durable(1, [1; 16]); // counter 1: slot 1
    ls.note_durable(2, [2; 16]); // counter 2: slot 0
    ls.note_durable(3, [3; 16]); // counter 3: slot 1
    drop(ls);
    let path = tmp.path().join(file_name(&ID));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[SLOT_LEN + 50..].fill(0xff);
    std::fs::write(&path, &bytes).unwrap();
    let again = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(again.seen().map(|s| s.seq), Some(2));
    // The next note goes to slot 1 again, never over the good slot 0.
    again.note_durable(4, [4; 16]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, [&bytes[..SLOT_LEN], &[0u8; SLOT_LEN][..]].concat()).unwrap();
    let third = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(third.seen().map(|s| s.seq), Some(2));
}

#[test]
fn damage_is_reported_and_protection_starts_again() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join(file_name(&ID)), [0x33; FILE_LEN]).unwrap();
    let ls = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(ls.found(), &Found::Damaged);
    let problem = ls.problem_at_open().unwrap();
    assert!(
        problem.contains("is damaged; rollback protection starts again now"),
        "{problem}"
    );
    assert_eq!(ls.acknowledged(), 0);
    assert_eq!(judge(ls.seen(), &VaultEnd::default()), Verdict::New);
    // The next note makes it whole again.
    ls.note_durable(3, [3; 16]);
    let again = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(again.seen().map(|s| s.seq), Some(3));
}

#[test]
fn a_wrong_master_key_reads_as_damage() {
    let tmp = tempfile::tempdir().unwrap();
    LocalState::open(tmp.path(), &ID, &master()).note_durable(3, [3; 16]);
    let other = LocalState::open(tmp.path(), &ID, &SecretKey::from_bytes([4; 32]));
    assert_eq!(other.found(), &Found::Damaged);
}

#[test]
fn an_unreadable_file_is_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join(file_name(&ID))).unwrap(); // read(2): EISDIR
    let ls = LocalState::open(tmp.path(), &ID, &master());
    assert!(
        matches!(ls.found(), Found::Unreadable(_)),
        "{:?}",
        ls.found()
    );
    let problem = ls.problem_at_open().unwrap();
    assert!(problem.contains("unreadable"), "{problem}");
    assert!(problem.contains("Is a directory"), "{problem}");
    assert_eq!(judge(ls.seen(), &VaultEnd::default()), Verdict::New);
}

#[test]
fn a_write_error_is_reported_once_and_stops_writing() {
    let tmp = tempfile::tempdir().unwrap();
    // A state directory under a regular file: every write fails (ENOTDIR),
    // even as root.
    std::fs::write(tmp.path().join("home"), b"").unwrap();
    let dir = tmp.path().join("home").join("state");
    let ls = LocalState::open(&dir, &ID, &master());
    ls.note_durable(1, [1; 16]);
    let problem = ls.take_write_problem().unwrap();
    assert!(
        problem.starts_with("cannot write the local state "),
        "{problem}"
    );
    assert!(problem.contains("Not a directory"), "{problem}");
    assert!(problem.contains("rollback protection is off"), "{problem}");
    assert!(!problem.contains('\n'));
    ls.note_durable(2, [2; 16]);
    ls.note_snapshot(1, 2);
    ls.close(true);
    assert_eq!(ls.take_write_problem(), None, "reported once");
    assert_eq!(
        ls.acknowledged(),
        0,
        "nothing written, nothing acknowledged"
    );
}

#[test]
fn a_note_is_cheap() {
    // On the path of every fsync: one pwrite of one slot, no sync. 100 000
    // notes with a sync each would take minutes on any disk.
    let tmp = tempfile::tempdir().unwrap();
    let ls = LocalState::open(tmp.path(), &ID, &master());
    ls.note_durable(0, [0; 16]); // creates the file
    let start = Instant::now();
    for seq in 1..=100_000u64 {
        ls.note_durable(seq, [seq as u8; 16]);
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "100k notes took {took:?}");
    assert_eq!(ls.take_write_problem(), None);
    drop(ls);
    let again = LocalState::open(tmp.path(), &ID, &master());
    assert_eq!(again.seen().map(|s| s.seq), Some(100_000));
}

#[test]
fn new_and_behind_vaults_as_an_open_sees_them() {
    let tmp = tempfile::tempdir().unwrap();
    let first = LocalState::open(tmp.path(), &ID, &master());
    let end = VaultEnd {
        last_seq: 1097,
        chain_at: None,
        snapshot: 0,
        covers_seq: 0,
    };
    let verdict = judge(first.seen(), &end);
    assert_eq!(
        verdict.clone().outcome(false).unwrap().as_deref(),
        Some(NEW_NOTE)
    );
    first.adopt(Seen {
        seq: 1097,
        chain: [7; 16],
        ..Seen::default()
    });
    first.close(true);
    // The log was cut at a record boundary: refused, unless accepted.
    let later = LocalState::open(tmp.path(), &ID, &master());
    let cut = VaultEnd {
        last_seq: 1041,
        ..end
    };
    let err = judge(later.seen(), &cut).outcome(false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the vault is behind what this machine saw: the vault ends at record 1041 but record \
         1097 was durable on this machine (its log was cut, or an older copy put back); \
         --accept-rollback opens it anyway"
    );
    assert!(judge(later.seen(), &cut).outcome(true).unwrap().is_some());
}
