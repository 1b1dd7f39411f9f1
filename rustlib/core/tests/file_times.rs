//! Who keeps the times of regular files (`FileTimes`): the engine stamps
//! them itself, or, under a kernel with the writeback cache, keeps exactly
//! the times it is given, across a reopen. And `st_blocks` counts written
//! data at once, before any sync or close.

mod common;

use common::memvault::{MemVault as Fixture, SEG};
use crypto_core::metadata::{AttrChange, Timespec};
use crypto_core::vault::engine::{Vault, ROOT};
use crypto_core::vault::FileTimes;

/// A time far from now, so a stamp of the engine's clock cannot pass for it.
fn t(sec: i64, nsec: u32) -> Timespec {
    Timespec { sec, nsec }
}

fn times(v: &Vault, ino: u64) -> (Timespec, Timespec) {
    let a = v.getattr(ino).unwrap();
    (a.mtime, a.ctime)
}

/// Give `ino` the mtime `m` and ctime `c`, as the kernel's setattr does.
fn set_times(v: &Vault, ino: u64, m: Timespec, c: Timespec) {
    let change = AttrChange {
        mtime: Some(m),
        ctime: Some(c),
        ..Default::default()
    };
    v.setattr(ino, change).unwrap();
}

#[test]
fn the_engine_stamps_file_times_by_default() {
    let fx = Fixture::new();
    let v = fx.open();
    assert_eq!(v.file_times(), FileTimes::Engine);
    let f = v.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    set_times(&v, f, t(1000, 1), t(1000, 2));
    assert_eq!(times(&v, f), (t(1000, 1), t(1000, 2)));
    v.write(f, 0, b"data").unwrap();
    let (m, c) = times(&v, f);
    assert!(m > t(1_600_000_000, 0) && c == m, "{m:?} {c:?}");
    // An attribute change without times stamps ctime only.
    set_times(&v, f, t(1000, 1), t(1000, 2));
    v.setattr(
        f,
        AttrChange {
            mode: Some(0o600),
            ..Default::default()
        },
    )
    .unwrap();
    let (m, c) = times(&v, f);
    assert_eq!(m, t(1000, 1));
    assert!(c > t(1_600_000_000, 0));
    // A truncate without times stamps both.
    v.setattr(
        f,
        AttrChange {
            size: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let (m, c) = times(&v, f);
    assert!(m > t(1_600_000_000, 0) && c == m);
    common::oracle::close_and_check(v, || fx.open(), "the_engine_stamps_file_times_by_default");
}

#[test]
fn kernel_file_times_are_kept_exactly_through_writes_truncates_and_reopen() {
    let fx = Fixture::new();
    let (f, d) = {
        let v = fx.open();
        v.set_file_times(FileTimes::Kernel);
        let f = v.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
        let d = v.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap().ino;
        // ctime after mtime, as a chmod after a write leaves them.
        set_times(&v, f, t(1000, 111), t(2000, 222));
        let data = vec![7u8; 3 * SEG as usize + 100];
        v.write(f, 0, &data).unwrap();
        assert_eq!(times(&v, f), (t(1000, 111), t(2000, 222)), "write");
        v.write(f, 5, b"small").unwrap();
        assert_eq!(times(&v, f), (t(1000, 111), t(2000, 222)), "partial write");
        // Shrinking inside a segment rewrites it (cut_segment_at), growing too.
        v.setattr(
            f,
            AttrChange {
                size: Some(SEG as u64 + 10),
                ..Default::default()
            },
        )
        .unwrap();
        v.setattr(
            f,
            AttrChange {
                size: Some(5 * SEG as u64),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(times(&v, f), (t(1000, 111), t(2000, 222)), "truncate");
        // Writing past the end cuts the last segment first.
        v.write(f, 6 * SEG as u64, b"far").unwrap();
        assert_eq!(
            times(&v, f),
            (t(1000, 111), t(2000, 222)),
            "write past the end"
        );
        // Attribute changes keep the times unless given.
        v.setattr(
            f,
            AttrChange {
                mode: Some(0o600),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(times(&v, f), (t(1000, 111), t(2000, 222)), "chmod");
        set_times(&v, f, t(3000, 333), t(3000, 444));
        v.write(f, 0, b"x").unwrap();
        assert_eq!(
            times(&v, f),
            (t(3000, 333), t(3000, 444)),
            "kernel's setattr"
        );
        // Directories are not the kernel's: their times are stamped.
        let before = times(&v, d).1;
        v.setattr(
            d,
            AttrChange {
                mode: Some(0o700),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(times(&v, d).1 > before);
        v.sync().unwrap();
        (f, d)
    };
    let v = fx.open();
    assert_eq!(v.file_times(), FileTimes::Engine, "a mode, not stored");
    assert_eq!(times(&v, f), (t(3000, 333), t(3000, 444)), "after reopen");
    assert_eq!(v.getattr(d).unwrap().mode, 0o700);
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "kernel_file_times_are_kept_exactly_through_writes_truncates_and_reopen",
    );
}

#[test]
fn blocks_count_written_data_before_any_sync_or_close() {
    let fx = Fixture::new();
    let v = fx.open();
    v.set_file_times(FileTimes::Kernel);
    let f = v.create(ROOT, b"f", 0o644, 0, 0).unwrap().ino;
    v.open(f).unwrap();
    v.write(f, 0, &vec![1u8; 1 << 20]).unwrap();
    assert_eq!(v.getattr(f).unwrap().blocks, 2048);
    // A hole costs nothing.
    v.write(f, 10 << 20, &[1u8; 512]).unwrap();
    assert_eq!(v.getattr(f).unwrap().blocks, 2049);
    v.release(f).unwrap();
    common::oracle::close_and_check(
        v,
        || fx.open(),
        "blocks_count_written_data_before_any_sync_or_close",
    );
}
