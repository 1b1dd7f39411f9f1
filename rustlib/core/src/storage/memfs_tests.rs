//! Tests of `MemFs` (in their own file: `memfs.rs` holds the file system).
use super::*;

#[test]
fn durable_state_survives_a_crash_and_unsynced_state_does_not() {
    let fs = MemFs::new();
    let dir = Path::new("/v/log");
    fs.create_dir_all(dir).unwrap();
    let f = fs.create_new(&dir.join("a")).unwrap();
    f.write_all_at(b"hello", 0).unwrap();
    // Name not yet durable: lost in a crash.
    assert!(!fs.after_crash(0).exists(&dir.join("a")));
    fs.sync_dir(dir).unwrap();
    f.sync_data().unwrap();
    f.write_all_at(b" world", 5).unwrap();
    let r = fs.after_crash(0);
    assert_eq!(r.contents(&dir.join("a")).unwrap(), b"hello");
    assert_eq!(
        fs.after_crash(3).contents(&dir.join("a")).unwrap(),
        b"hello wo"
    );
}

#[test]
fn injected_errors_and_crash_points() {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let f = fs.create_new(Path::new("/d/x")).unwrap();
    fs.set_fault(Some(Fault::Error {
        op: FaultOp::Write,
        nth: 2,
        errno: 28,
    }));
    f.write_all_at(b"a", 0).unwrap();
    assert_eq!(
        f.write_all_at(b"b", 1).unwrap_err().raw_os_error(),
        Some(28)
    );
    f.write_all_at(b"c", 1).unwrap();
    fs.set_fault(Some(Fault::Crash { nth: 4 }));
    f.write_all_at(b"d", 2).unwrap();
    assert!(fs.crashed());
    assert!(f.write_all_at(b"e", 3).is_err());
    assert!(f.sync_data().is_err());
}

#[test]
fn a_crash_at_a_sync_stops_before_it() {
    let fs = MemFs::new();
    let dir = Path::new("/d");
    fs.create_dir_all(dir).unwrap();
    let f = fs.create_new(&dir.join("x")).unwrap();
    fs.sync_dir(dir).unwrap(); // sync 1
    f.write_all_at(b"kept", 0).unwrap();
    f.sync_data().unwrap(); // sync 2
    fs.set_fault(Some(Fault::CrashAtSync { nth: 4 }));
    fs.remove(&dir.join("x")).unwrap();
    fs.sync_dir(dir).unwrap(); // sync 3: the removal is durable
    let g = fs.create_new(&dir.join("y")).unwrap();
    g.write_all_at(b"lost", 0).unwrap();
    assert!(g.sync_data().is_err()); // sync 4: the machine stops
    assert!(fs.crashed());
    assert!(fs.sync_dir(dir).is_err());
    let r = fs.after_crash(0);
    assert!(!r.exists(&dir.join("x")) && !r.exists(&dir.join("y")));
}
