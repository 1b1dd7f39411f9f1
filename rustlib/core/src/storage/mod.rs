//! File access of the vault engine, behind a trait so tests can inject faults
//! (as raft-engine's `FileSystem`): [`RealFs`] for the disk, and
//! [`memfs::MemFs`], an in-memory file system that fails the Nth write or
//! sync with a chosen errno, or "crashes" after the Nth write and comes back
//! with only what was made durable (optionally plus a torn prefix of the
//! rest).
//!
//! [`durable`] writes whole small files (the vault config, resume
//! checkpoints) crash-safely through the same trait.

pub mod durable;
pub mod memfs;
pub mod readonly;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An open file of the vault. Writes are positional; nothing is durable
/// until `sync_data` returns.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Read up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn sync_data(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Free the storage of `[offset, offset + len)` and make it read as
    /// zeros, keeping the file's length (`fallocate(PUNCH_HOLE |
    /// KEEP_SIZE)`). How pack frames nothing refers to any more give their
    /// space back at once (see `Vault::punch_freed_frames`). Like a write,
    /// it may reach the disk before the next sync: callers punch only bytes
    /// no durable record refers to. `Unsupported` where the file system
    /// cannot (the bytes then stay until compaction).
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()>;
}

/// The directory-level operations the engine needs. A new name (create or
/// rename) is durable only after `sync_dir` of its directory.
pub trait FileSystem: Send + Sync {
    /// Create a new file; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Open an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Open an existing file for reading only (a vault on read-only media
    /// still has its config read).
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.open(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Names (not paths) of the entries of `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// Size in bytes of the file at `path` (for statistics).
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.open(path)?.len()
    }
    /// Take the exclusive, non-blocking lock named by `path` for this
    /// process, held until the returned guard is dropped. `Busy` names the
    /// holder's process id when it is known.
    fn try_lock(&self, path: &Path) -> io::Result<TryLock>;
    /// Take the lock named by `path` shared (an open that writes nothing:
    /// several may hold it at once, and none while the exclusive lock is
    /// held, nor it while they are). The lock file is neither created nor
    /// written: where it does not exist (a vault never opened for writing,
    /// or on read-only media) nobody holds the exclusive lock, and the
    /// guard returned holds nothing.
    fn try_lock_shared(&self, path: &Path) -> io::Result<TryLock>;
}

/// Something held while a lock is held; dropping it releases the lock.
pub trait LockGuard: Send + Sync {}

/// The outcome of [`FileSystem::try_lock`].
pub enum TryLock {
    Acquired(Box<dyn LockGuard>),
    /// Someone else holds the lock (process `holder`, when it said so).
    Busy {
        holder: Option<u32>,
    },
}

impl std::fmt::Debug for TryLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryLock::Acquired(_) => f.write_str("Acquired"),
            TryLock::Busy { holder } => write!(f, "Busy {{ holder: {holder:?} }}"),
        }
    }
}

/// A held `flock`: the open lock file (closing it releases the lock).
struct FlockGuard(#[allow(dead_code)] File);

impl LockGuard for FlockGuard {}

/// A shared lock on a lock file that does not exist: holds nothing.
struct NoLock;

impl LockGuard for NoLock {}

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;

extern "C" {
    // libc's flock(2); std links libc on every Unix target, so no crate is needed.
    fn flock(fd: i32, operation: i32) -> i32;
    // libc's fallocate(2) (Linux; off_t is 64-bit on the targets we build).
    fn fallocate(fd: i32, mode: i32, offset: i64, len: i64) -> i32;
}

const FALLOC_FL_KEEP_SIZE: i32 = 1;
const FALLOC_FL_PUNCH_HOLE: i32 = 2;

/// `fallocate(fd, mode, offset, len)`, retried on EINTR; EOPNOTSUPP (a file
/// system without it) becomes `Unsupported`.
fn fallocate_range(f: &File, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return Ok(());
    }
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(22));
    };
    loop {
        // SAFETY: fallocate only reads its integer arguments; the descriptor
        // is valid for as long as `f` is borrowed.
        let r = unsafe { fallocate(f.as_raw_fd(), mode, offset, len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(4) => continue,                                                 // EINTR
            Some(95) => return Err(io::Error::from(io::ErrorKind::Unsupported)), // EOPNOTSUPP
            _ => return Err(e),
        }
    }
}

/// `flock(fd, mode | LOCK_NB)`: Ok(true) if taken, Ok(false) if another
/// open file description holds it in a mode that excludes `mode`.
fn flock_nonblocking(f: &File, mode: i32) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock only reads its integer arguments; the descriptor is
        // valid for as long as `f` is borrowed.
        let r = unsafe { flock(f.as_raw_fd(), mode | LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

struct RealFile(File);

impl StorageFile for RealFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.0.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        fallocate_range(
            &self.0,
            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
    }
}

impl FileSystem for RealFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(RealFile(f)))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let f = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(RealFile(f)))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(RealFile(File::open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
            .collect();
        names.sort();
        Ok(names)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }
    /// `flock(LOCK_EX | LOCK_NB)` on `path` (created, mode 0600, if missing).
    /// The holder writes its process id (only that) into the file, for the
    /// message a second opener gets. The lock belongs to the open file
    /// description, so a second open in the same process is refused too, and
    /// the kernel releases it when the process dies, however it dies. The
    /// file is left in place when the lock is released (removing it would
    /// let two openers lock two different files of one name).
    fn try_lock(&self, path: &Path) -> io::Result<TryLock> {
        use std::io::{Seek, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        if !flock_nonblocking(&f, LOCK_EX)? {
            // Held shared (by opens that write nothing, which leave the
            // last writer's pid in the file): no pid to name.
            let holder = if flock_nonblocking(&f, LOCK_SH)? {
                None
            } else {
                lock_holder(&mut f)
            };
            return Ok(TryLock::Busy { holder });
        }
        f.set_len(0)?;
        f.seek(io::SeekFrom::Start(0))?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        Ok(TryLock::Acquired(Box::new(FlockGuard(f))))
    }
    /// `flock(LOCK_SH | LOCK_NB)` on `path` opened read-only; nothing is
    /// written (the exclusive holder's pid stays in the file).
    fn try_lock_shared(&self, path: &Path) -> io::Result<TryLock> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(TryLock::Acquired(Box::new(NoLock)))
            }
            Err(e) => return Err(e),
        };
        if !flock_nonblocking(&f, LOCK_SH)? {
            return Ok(TryLock::Busy {
                holder: lock_holder(&mut f),
            });
        }
        Ok(TryLock::Acquired(Box::new(FlockGuard(f))))
    }
}

/// The process id the exclusive holder wrote into the lock file, if any.
fn lock_holder(f: &mut File) -> Option<u32> {
    use std::io::Read;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// `dir/name` as a path.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
