//! The unified log: round trips, group commit, rotation, crashes at every
//! write with every torn length, I/O errors, and corruption.

use std::path::Path;
use std::sync::Arc;

use crypto_core::crypto::keys::SecretKey;
use crypto_core::log::unified::{log_file_name, LogManager, LogOptions, LogRecord};
use crypto_core::storage::memfs::{Fault, FaultOp, MemFs};
use crypto_core::storage::FileSystem;
use crypto_core::Error;

const VAULT: [u8; 16] = [7; 16];

fn dir() -> &'static Path {
    Path::new("/vault/log")
}

fn open(fs: &MemFs, rotate: u64) -> crypto_core::Result<(LogManager, Vec<LogRecord>)> {
    let opts = LogOptions {
        rotate_bytes: rotate,
        ..Default::default()
    };
    LogManager::open(
        Arc::new(fs.clone()),
        dir(),
        VAULT,
        SecretKey::from_bytes([3; 32]),
        opts,
    )
    .map(|(m, r, _)| (m, r))
}

fn payload(i: u64) -> Vec<u8> {
    format!("record {i} {}", "x".repeat((i % 50) as usize)).into_bytes()
}

#[test]
fn round_trip_across_rotations_and_reopens() {
    let fs = MemFs::new();
    let (log, r) = open(&fs, 2000).unwrap();
    assert!(r.is_empty());
    for i in 1..=300 {
        assert_eq!(log.append(payload(i)).unwrap(), i);
        if i % 7 == 0 {
            log.sync().unwrap();
        }
    }
    log.sync().unwrap();
    drop(log);
    let (log, r) = open(&fs, 2000).unwrap();
    assert_eq!(r.len(), 300);
    assert!(r
        .iter()
        .enumerate()
        .all(|(i, rec)| rec.seq == i as u64 + 1 && rec.payload == payload(i as u64 + 1)));
    assert!(
        fs.list(dir()).unwrap().len() > 3,
        "rotated into several files"
    );
    assert_eq!(log.append(payload(301)).unwrap(), 301);
    log.sync().unwrap();
    drop(log);
    assert_eq!(open(&fs, 2000).unwrap().1.len(), 301);
}

#[test]
fn group_commit_shares_fsyncs_between_threads() {
    let fs = MemFs::new();
    let (log, _) = open(&fs, 64 << 20).unwrap();
    let log = Arc::new(log);
    // A disk whose flush takes 2 ms: appenders arriving meanwhile share the next one.
    fs.set_sync_delay(std::time::Duration::from_millis(2));
    let syncs_before = fs.syncs();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let log = Arc::clone(&log);
            s.spawn(move || {
                for i in 0..200u64 {
                    log.append_sync(payload(t * 1000 + i)).unwrap();
                }
            });
        }
    });
    let syncs = fs.syncs() - syncs_before;
    assert!(syncs < 800, "{syncs} fsyncs for 1600 synced appends");
    drop(log);
    let (_, r) = open(&fs, 64 << 20).unwrap();
    assert_eq!(r.len(), 1600);
    assert!(r.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

/// The workload of the crash matrix: returns the highest sequence number
/// acknowledged as durable before the crash (0 if none).
fn workload(fs: &MemFs) -> u64 {
    let Ok((log, _)) = open(fs, 600) else {
        return 0;
    };
    let mut acked = 0;
    for i in 1..=40u64 {
        if log.append(payload(i)).is_err() {
            break;
        }
        if i % 3 == 0 {
            match log.sync() {
                Ok(()) => acked = i,
                Err(_) => break,
            }
        }
    }
    acked
}

#[test]
fn crash_at_every_write_with_every_torn_length_keeps_every_acknowledged_record() {
    let probe = MemFs::new();
    workload(&probe);
    let total = probe.writes();
    assert!(total > 10);
    for nth in 1..=total {
        for torn in [0usize, 1, 5, 16, 17, 40, 1000] {
            let fs = MemFs::new();
            fs.set_fault(Some(Fault::Crash { nth }));
            let acked = workload(&fs);
            let rebooted = fs.after_crash(torn);
            let (log, r) = open(&rebooted, 600)
                .unwrap_or_else(|e| panic!("crash at write {nth}, torn {torn}: {e}"));
            // A prefix of what was appended, containing everything acknowledged.
            assert!(
                r.len() as u64 >= acked,
                "write {nth} torn {torn}: {} < {acked}",
                r.len()
            );
            assert!(r
                .iter()
                .enumerate()
                .all(|(i, rec)| rec.seq == i as u64 + 1 && rec.payload == payload(i as u64 + 1)));
            // Appending after recovery works and survives another reopen.
            let next = log.append_sync(b"after".to_vec()).unwrap();
            assert_eq!(next, r.len() as u64 + 1);
            drop(log);
            let (_, again) = open(&rebooted, 600).unwrap();
            assert_eq!(again.len() as u64, next);
        }
    }
}

#[test]
fn appends_after_recovery_never_reuse_a_file() {
    let fs = MemFs::new();
    let (log, _) = open(&fs, 1 << 20).unwrap();
    log.append(payload(1)).unwrap();
    log.sync().unwrap();
    log.append(payload(2)).unwrap(); // written by nobody: lost in the crash
    fs.crash();
    let rebooted = fs.after_crash(0);
    let first = rebooted.contents(&dir().join(log_file_name(1))).unwrap();
    let (log, r) = open(&rebooted, 1 << 20).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(log.active_file_number(), 2);
    log.append_sync(payload(9)).unwrap();
    // The file keeps its records; the open cut only the zeros of the
    // writer's reserve after them (FORMAT.md §7.3).
    let now = rebooted.contents(&dir().join(log_file_name(1))).unwrap();
    assert!(now.len() < first.len());
    assert!(now[..] == first[..now.len()], "records unchanged");
    assert!(first[now.len()..].iter().all(|&b| b == 0));
}

#[test]
fn io_errors_reach_the_caller_and_stop_the_log() {
    // A failed fsync leaves durability unknown: the log stops.
    for errno in [5, 28] {
        let fs = MemFs::new();
        let (log, _) = open(&fs, 1 << 20).unwrap();
        log.append_sync(payload(1)).unwrap();
        let nth = fs.syncs() + 1;
        fs.set_fault(Some(Fault::Error {
            op: FaultOp::Sync,
            nth,
            errno,
        }));
        let e = log.append_sync(payload(2)).unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.raw_os_error() == Some(errno)),
            "{e:?}"
        );
        assert!(matches!(log.append(payload(3)), Err(Error::LogFailed(_))));
        assert!(matches!(log.sync(), Err(Error::LogFailed(_))));
        drop(log);
        fs.set_fault(None);
        let (_, r) = open(&fs, 1 << 20).unwrap();
        assert!(
            (r[0].seq, &r[0].payload) == (1, &payload(1)) && r.len() <= 2,
            "sync {errno}"
        );
    }
}

#[test]
fn a_failed_write_is_retried_in_a_new_file() {
    // A failed write (EIO, or ENOSPC on a full disk) reaches the caller,
    // keeps its records queued, and the next sync writes them, in order,
    // to a new log file: nothing is lost and no nonce is used twice.
    for errno in [5, 28] {
        let fs = MemFs::new();
        let (log, _) = open(&fs, 1 << 20).unwrap();
        log.append_sync(payload(1)).unwrap();
        let file_before = log.active_file_number();
        let nth = fs.writes() + 1;
        fs.set_fault(Some(Fault::Error {
            op: FaultOp::Write,
            nth,
            errno,
        }));
        let e = log.append_sync(payload(2)).unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.raw_os_error() == Some(errno)),
            "{e:?}"
        );
        log.append(payload(3)).unwrap();
        log.sync().unwrap();
        assert!(log.active_file_number() > file_before);
        drop(log);
        let (_, r) = open(&fs, 1 << 20).unwrap();
        let seqs: Vec<u64> = r.iter().map(|x| x.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3], "write {errno}");
        assert!(r.iter().all(|x| x.payload == payload(x.seq)));
    }
}

#[test]
fn damage_followed_by_valid_records_is_reported() {
    let fs = MemFs::new();
    let (log, _) = open(&fs, 1 << 20).unwrap();
    for i in 1..=20 {
        log.append(payload(i)).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let path = dir().join(log_file_name(1));
    // A flipped byte in the middle: checksum fails, valid records follow.
    fs.poke(&path, |b| b[80 + 100] ^= 1);
    assert!(
        matches!(open(&fs, 1 << 20), Err(Error::LogCorrupt(m)) if m.contains("followed by more data"))
    );
}

#[test]
fn a_record_that_checksums_but_does_not_open_is_tampering() {
    let fs = MemFs::new();
    let (log, _) = open(&fs, 1 << 20).unwrap();
    log.append_sync(payload(1)).unwrap();
    log.append_sync(payload(2)).unwrap();
    drop(log);
    let path = dir().join(log_file_name(1));
    fs.poke(&path, |b| {
        // Change a ciphertext byte of record 1 and fix up its body's CRC-32
        // (format 2: 80-byte header; record header: length, sequence
        // number, header check, body CRC).
        b[80 + 20] ^= 1;
        let p = u32::from_le_bytes(b[80..84].try_into().unwrap()) as usize;
        let crc = crc32fast::hash(&b[100..100 + p]).to_le_bytes();
        b[96..100].copy_from_slice(&crc);
    });
    assert!(
        matches!(open(&fs, 1 << 20), Err(Error::LogCorrupt(m)) if m.contains("authentication"))
    );
}

#[test]
fn a_missing_middle_file_or_foreign_vault_is_reported() {
    let fs = MemFs::new();
    let (log, _) = open(&fs, 300).unwrap();
    for i in 1..=60 {
        log.append_sync(payload(i)).unwrap();
    }
    drop(log);
    fs.remove(&dir().join(log_file_name(2))).unwrap();
    assert!(matches!(open(&fs, 300), Err(Error::LogCorrupt(m)) if m.contains("missing")));
    let other = MemFs::new();
    let (log, _) = open(&other, 1 << 20).unwrap();
    log.append_sync(payload(1)).unwrap();
    drop(log);
    let opts = LogOptions::default();
    let r = LogManager::open(
        Arc::new(other.clone()),
        dir(),
        [8; 16],
        SecretKey::from_bytes([3; 32]),
        opts,
    );
    assert!(matches!(r, Err(Error::LogCorrupt(m)) if m.contains("another vault")));
}

#[test]
fn a_gap_covered_by_a_snapshot_is_accepted() {
    let fs = MemFs::new();
    let (log, _) = open(&fs, 300).unwrap();
    for i in 1..=60 {
        log.append_sync(payload(i)).unwrap();
    }
    drop(log);
    // A compaction deleting covered files one by one, cut short: file 2 gone, file 1 kept.
    fs.remove(&dir().join(log_file_name(2))).unwrap();
    assert!(open(&fs, 300).is_err());
    let third = fs.contents(&dir().join(log_file_name(3))).unwrap();
    let first_seq_of_3 = u64::from_le_bytes(third[56..64].try_into().unwrap());
    let opts = LogOptions {
        rotate_bytes: 300,
        min_next_seq: first_seq_of_3,
        // What the snapshot covering the gap keeps: the tag of the record
        // before file 3 (file 3's chain in).
        chain_base: Some(third[64..80].try_into().unwrap()),
        ..Default::default()
    };
    let (_, records, _) = LogManager::open(
        Arc::new(fs.clone()),
        dir(),
        VAULT,
        SecretKey::from_bytes([3; 32]),
        opts,
    )
    .unwrap();
    assert_eq!(records.last().unwrap().seq, 60);
}

fn file_bytes(fs: &MemFs, name: &str) -> Vec<u8> {
    let f = fs.open(&dir().join(name)).unwrap();
    let mut bytes = vec![0; f.len().unwrap() as usize];
    assert_eq!(f.read_at(&mut bytes, 0).unwrap(), bytes.len());
    bytes
}

/// The reserve: zeros written past the last record of the active file (so a
/// sync of new records changes no file size), never past a record of a
/// file that is no longer appended to, and nothing a crash or a reopen
/// reports as lost.
#[test]
fn only_the_last_file_ends_in_the_zeros_of_the_reserve() {
    let reserve = crypto_core::log::unified::LOG_RESERVE_BYTES as usize;
    let fs = MemFs::new();
    let (log, _) = open(&fs, 4000).unwrap();
    for i in 1..=100 {
        log.append(payload(i)).unwrap();
        if i % 10 == 0 {
            log.sync().unwrap();
        }
    }
    let names = fs.list(dir()).unwrap();
    assert!(names.len() > 2, "rotated: {names:?}");
    let (last, earlier) = names.split_last().unwrap();
    for name in earlier {
        let bytes = file_bytes(&fs, name);
        assert!(
            bytes.len() < 8000,
            "{name} cut to its records: {}",
            bytes.len()
        );
        assert!(
            bytes[bytes.len() - 16..].iter().any(|&b| b != 0),
            "{name} ends in a tag"
        );
    }
    let bytes = file_bytes(&fs, last);
    assert!(
        bytes.len() >= reserve / 2,
        "the active file keeps its reserve"
    );
    assert!(bytes[bytes.len() - reserve / 2..].iter().all(|&b| b == 0));

    // A crash keeps the zeros: the reopen reads every synced record and
    // reports no torn bytes.
    let rebooted = fs.after_crash(0);
    let opts = LogOptions {
        rotate_bytes: 4000,
        ..Default::default()
    };
    let key = SecretKey::from_bytes([3; 32]);
    let (log2, r, report) =
        LogManager::open(Arc::new(rebooted.clone()), dir(), VAULT, key, opts).unwrap();
    assert_eq!(r.len(), 100);
    assert_eq!(report.torn_bytes_cut, 0);
    let cut = file_bytes(&rebooted, last);
    assert!(cut.len() < 8000, "the reopen cut the crashed file's zeros");
    assert!(cut[cut.len() - 16..].iter().any(|&b| b != 0));
    drop(log2);
    drop(log);

    // A clean close leaves no zeros either.
    for name in fs.list(dir()).unwrap() {
        let bytes = file_bytes(&fs, &name);
        assert!(bytes[bytes.len() - 16..].iter().any(|&b| b != 0), "{name}");
    }
}
