//! `MemFs`: an in-memory [`FileSystem`] with fault injection, for tests.
//!
//! Every file keeps two images: what a crash would keep (`durable`, set by
//! `sync_data`) and what readers see now (`current`). Names behave the same:
//! a create, rename or remove is durable after `sync_dir`. Faults:
//!
//! * [`Fault::Error`]: the Nth write (or sync) fails with an errno and changes
//!   nothing; later operations work again (a transient EIO / ENOSPC).
//! * [`Fault::Crash`]: the Nth write is the last one to happen; every later
//!   operation fails with EIO, as if the machine had stopped.
//! * [`Fault::CrashAtSync`]: the machine stops right before the Nth sync
//!   (of a file or a directory), which does not happen: the renames and
//!   removals since the last write are then in the picture, not durable
//!   unless an earlier directory sync made them so. [`MemFs::after_crash`]
//!   then builds the file system a reboot would find: durable images only,
//!   or durable images plus the first `torn` bytes of each file's unsynced tail.
//!
//! Space: [`MemFs::set_capacity`] makes it a small disk. Every named file
//! takes its length less its punched holes; a write or `set_len` that
//! would pass the capacity fails with ENOSPC and changes nothing. A punched
//! hole reads as zeros at once and is taken as durable at once (the worst
//! case for a crash: the punch reached the disk before anything written or
//! synced after it).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{FileSystem, LockGuard, StorageFile, TryLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOp {
    Write,
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The `nth` (1-based) operation of this kind fails with `errno`.
    Error { op: FaultOp, nth: u64, errno: i32 },
    /// Stop the machine right after the `nth` (1-based) write.
    Crash { nth: u64 },
    /// Stop the machine instead of the `nth` (1-based) sync.
    CrashAtSync { nth: u64 },
}

#[derive(Clone, Default, Debug)]
struct Image {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Punched ranges `[start, end)`, disjoint and sorted: they take no space.
    holes: Vec<(u64, u64)>,
}

impl Image {
    /// Bytes this file takes on the disk.
    fn used(&self) -> u64 {
        let end = self.current.len() as u64;
        let holes: u64 = self
            .holes
            .iter()
            .map(|&(a, b)| b.min(end).saturating_sub(a))
            .sum();
        end - holes
    }

    /// Bytes that writing `[a, b)` would add to `used`.
    fn taken_by(&self, a: u64, b: u64) -> u64 {
        let end = self.current.len() as u64;
        let refilled: u64 = self
            .holes
            .iter()
            .map(|&(s, e)| e.min(b).min(end).saturating_sub(s.max(a)))
            .sum();
        b.saturating_sub(end) + refilled
    }

    /// `[a, b)` takes space again (written to).
    fn fill(&mut self, a: u64, b: u64) {
        let mut kept = Vec::with_capacity(self.holes.len() + 1);
        for &(s, e) in &self.holes {
            if e <= a || s >= b {
                kept.push((s, e));
            } else {
                if s < a {
                    kept.push((s, a));
                }
                if e > b {
                    kept.push((b, e));
                }
            }
        }
        self.holes = kept;
    }

    /// `[a, b)` takes no space (punched).
    fn punch(&mut self, a: u64, b: u64) {
        self.fill(a, b);
        self.holes.push((a, b));
        self.holes.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.holes.len());
        for (s, e) in self.holes.drain(..) {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.holes = merged;
    }
}

#[derive(Default, Debug)]
struct State {
    /// Inodes by number; names point at them.
    files: BTreeMap<u64, Image>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: std::collections::BTreeSet<PathBuf>,
    next_inode: u64,
    writes: u64,
    syncs: u64,
    fault: Option<Fault>,
    crashed: bool,
    /// How long a file sync takes (a disk's flush latency), for group-commit tests.
    sync_delay: std::time::Duration,
    /// Locks held ([`FileSystem::try_lock`]), by path: in memory only, like
    /// `flock` (a crash releases them: `after_crash` starts with none).
    locks: std::collections::BTreeSet<PathBuf>,
    /// Shared locks held ([`FileSystem::try_lock_shared`]), how many per path.
    shared_locks: BTreeMap<PathBuf, usize>,
    /// Bytes the named files may take in all (see the module doc).
    capacity: Option<u64>,
}

/// In-memory file system with fault injection. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl State {
    fn check_alive(&self) -> io::Result<()> {
        if self.crashed {
            Err(eio())
        } else {
            Ok(())
        }
    }

    /// Count an operation; returns Err if it must fail, and whether it is
    /// the crash point (it happens, then the machine stops).
    fn count(&mut self, op: FaultOp) -> io::Result<bool> {
        self.check_alive()?;
        let n = match op {
            FaultOp::Write => {
                self.writes += 1;
                self.writes
            }
            FaultOp::Sync => {
                self.syncs += 1;
                self.syncs
            }
        };
        match self.fault {
            Some(Fault::Error { op: o, nth, errno }) if o == op && nth == n => {
                Err(io::Error::from_raw_os_error(errno))
            }
            Some(Fault::Crash { nth }) if op == FaultOp::Write && nth == n => Ok(true),
            Some(Fault::CrashAtSync { nth }) if op == FaultOp::Sync && nth == n => {
                self.crashed = true;
                Err(eio())
            }
            _ => Ok(false),
        }
    }

    /// Bytes the named files take.
    fn used(&self) -> u64 {
        let named: std::collections::BTreeSet<u64> = self.names.values().copied().collect();
        named.iter().map(|ino| self.files[ino].used()).sum()
    }

    /// ENOSPC if file `ino` taking `after` bytes instead of what it takes
    /// now would pass the capacity.
    fn check_space(&self, ino: u64, after: u64) -> io::Result<()> {
        let Some(capacity) = self.capacity else {
            return Ok(());
        };
        let now = self.files.get(&ino).map_or(0, Image::used);
        if after > now && self.used() - now + after > capacity {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }
}

impl MemFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every file sync take `d` (without blocking other operations).
    pub fn set_sync_delay(&self, d: std::time::Duration) {
        self.state.lock().unwrap().sync_delay = d;
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Make the file system a disk of `bytes` (`None`: unlimited).
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.lock().unwrap().capacity = bytes;
    }

    /// Bytes the named files take now (what `du` of the vault would say).
    pub fn used_bytes(&self) -> u64 {
        self.state.lock().unwrap().used()
    }

    /// Punched ranges of a file (for assertions).
    pub fn holes(&self, path: &Path) -> Vec<(u64, u64)> {
        let s = self.state.lock().unwrap();
        s.names
            .get(path)
            .map(|ino| s.files[ino].holes.clone())
            .unwrap_or_default()
    }

    /// Writes performed so far (to size a crash matrix).
    pub fn writes(&self) -> u64 {
        self.state.lock().unwrap().writes
    }

    /// Syncs (of files and directories) performed so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().unwrap().syncs
    }

    pub fn crashed(&self) -> bool {
        self.state.lock().unwrap().crashed
    }

    /// Stop the machine now (as a crash right after the last write).
    pub fn crash(&self) {
        self.state.lock().unwrap().crashed = true;
    }

    /// The file system a reboot finds: durable names, durable bytes, plus
    /// up to `torn` bytes of each file's unsynced tail (never more than was
    /// written; bytes overwritten in place are not modelled as torn).
    pub fn after_crash(&self, torn: usize) -> MemFs {
        let s = self.state.lock().unwrap();
        let mut files = BTreeMap::new();
        for (&ino, img) in &s.files {
            let mut kept = img.durable.clone();
            if img.current.len() > kept.len() && img.current.starts_with(&kept) {
                let extra = (img.current.len() - kept.len()).min(torn);
                kept.extend_from_slice(&img.current[img.durable.len()..img.durable.len() + extra]);
            }
            files.insert(
                ino,
                Image {
                    current: kept.clone(),
                    durable: kept,
                    holes: img.holes.clone(),
                },
            );
        }
        let state = State {
            files,
            names: s.durable_names.clone(),
            durable_names: s.durable_names.clone(),
            dirs: s.dirs.clone(),
            next_inode: s.next_inode,
            capacity: s.capacity,
            ..State::default()
        };
        MemFs {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Every file's name and current contents (for assertions).
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let s = self.state.lock().unwrap();
        let named = s.names.iter();
        named
            .map(|(p, ino)| (p.clone(), s.files[ino].current.clone()))
            .collect()
    }

    /// Current contents of a file (for assertions).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state.lock().unwrap();
        s.names.get(path).map(|ino| s.files[ino].current.clone())
    }

    /// Overwrite a file's bytes directly (to simulate corruption in tests).
    pub fn poke(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut s = self.state.lock().unwrap();
        let ino = s.names[path];
        let img = s.files.get_mut(&ino).unwrap();
        f(&mut img.current);
        img.durable = img.current.clone();
    }
}

struct MemFile {
    fs: MemFs,
    ino: u64,
}

#[allow(clippy::len_without_is_empty)]
impl StorageFile for MemFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.fs.state.lock().unwrap();
        let crash_after = s.count(FaultOp::Write)?;
        let end = offset as usize + buf.len();
        let img = s.files.get(&self.ino).ok_or_else(eio)?;
        s.check_space(self.ino, img.used() + img.taken_by(offset, end as u64))?;
        let img = s.files.get_mut(&self.ino).ok_or_else(eio)?;
        if img.current.len() < end {
            img.current.resize(end, 0);
        }
        img.current[offset as usize..end].copy_from_slice(buf);
        img.fill(offset, end as u64);
        if crash_after {
            s.crashed = true;
        }
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let s = self.fs.state.lock().unwrap();
        s.check_alive()?;
        let img = s.files.get(&self.ino).ok_or_else(eio)?;
        let start = (offset as usize).min(img.current.len());
        let n = buf.len().min(img.current.len() - start);
        buf[..n].copy_from_slice(&img.current[start..start + n]);
        Ok(n)
    }

    fn sync_data(&self) -> io::Result<()> {
        let delay = self.fs.state.lock().unwrap().sync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut s = self.fs.state.lock().unwrap();
        s.count(FaultOp::Sync)?;
        let img = s.files.get_mut(&self.ino).ok_or_else(eio)?;
        img.durable = img.current.clone();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let s = self.fs.state.lock().unwrap();
        s.check_alive()?;
        Ok(s.files.get(&self.ino).ok_or_else(eio)?.current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.fs.state.lock().unwrap();
        let crash_after = s.count(FaultOp::Write)?;
        let img = s.files.get(&self.ino).ok_or_else(eio)?;
        let grows = len.saturating_sub(img.current.len() as u64);
        s.check_space(self.ino, img.used() + grows)?;
        let img = s.files.get_mut(&self.ino).ok_or_else(eio)?;
        if len < img.current.len() as u64 {
            img.fill(len, u64::MAX);
        }
        img.current.resize(len as usize, 0);
        if crash_after {
            s.crashed = true;
        }
        Ok(())
    }

    /// Zeros `[offset, offset + len)` within the file, now and in what a
    /// crash keeps (see the module doc), and frees its space. Counted as a
    /// write (a crash point).
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut s = self.fs.state.lock().unwrap();
        let crash_after = s.count(FaultOp::Write)?;
        let img = s.files.get_mut(&self.ino).ok_or_else(eio)?;
        for image in [&mut img.current, &mut img.durable] {
            let end = (offset + len).min(image.len() as u64) as usize;
            if (offset as usize) < end {
                image[offset as usize..end].fill(0);
            }
        }
        img.punch(offset, offset + len);
        if crash_after {
            s.crashed = true;
        }
        Ok(())
    }
}

impl FileSystem for MemFs {
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let mut s = self.state.lock().unwrap();
        s.check_alive()?;
        if s.names.contains_key(path) {
            return Err(io::Error::from_raw_os_error(17));
        }
        if let Some(parent) = path.parent() {
            if !s.dirs.contains(parent) {
                return Err(io::Error::from_raw_os_error(2));
            }
        }
        s.next_inode += 1;
        let ino = s.next_inode;
        s.files.insert(ino, Image::default());
        s.names.insert(path.to_path_buf(), ino);
        Ok(Box::new(MemFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let s = self.state.lock().unwrap();
        s.check_alive()?;
        let ino = *s
            .names
            .get(path)
            .ok_or_else(|| io::Error::from_raw_os_error(2))?;
        Ok(Box::new(MemFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.check_alive()?;
        let ino = s
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from_raw_os_error(2))?;
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.check_alive()?;
        s.names
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::from_raw_os_error(2))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock().unwrap();
        s.check_alive()?;
        if !s.dirs.contains(dir) {
            return Err(io::Error::from_raw_os_error(2));
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.check_alive()?;
        // Directories are durable at once: the engine creates them before any data.
        for a in dir.ancestors() {
            if !a.as_os_str().is_empty() {
                s.dirs.insert(a.to_path_buf());
            }
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.count(FaultOp::Sync)?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        s.durable_names.retain(|p, _| !in_dir(p));
        let now: Vec<_> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        s.durable_names.extend(now);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.state.lock().unwrap().names.contains_key(path)
    }

    /// A lock table in memory, not a file: taking the lock writes nothing,
    /// so it neither counts as a write for fault injection nor shifts the
    /// write points of crash matrices. The holder is always this process.
    fn try_lock(&self, path: &Path) -> io::Result<TryLock> {
        let mut s = self.state.lock().unwrap();
        s.check_alive()?;
        if s.shared_locks.contains_key(path) || !s.locks.insert(path.to_path_buf()) {
            return Ok(TryLock::Busy {
                holder: Some(std::process::id()),
            });
        }
        Ok(TryLock::Acquired(Box::new(MemLock {
            fs: self.clone(),
            path: path.to_path_buf(),
            shared: false,
        })))
    }
    /// As `try_lock`, shared: refused only while the exclusive lock is held.
    fn try_lock_shared(&self, path: &Path) -> io::Result<TryLock> {
        let mut s = self.state.lock().unwrap();
        s.check_alive()?;
        if s.locks.contains(path) {
            return Ok(TryLock::Busy {
                holder: Some(std::process::id()),
            });
        }
        *s.shared_locks.entry(path.to_path_buf()).or_default() += 1;
        Ok(TryLock::Acquired(Box::new(MemLock {
            fs: self.clone(),
            path: path.to_path_buf(),
            shared: true,
        })))
    }
}

struct MemLock {
    fs: MemFs,
    path: PathBuf,
    shared: bool,
}

impl LockGuard for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        let mut s = self.fs.state.lock().unwrap_or_else(|p| p.into_inner());
        if !self.shared {
            s.locks.remove(&self.path);
        } else if let Some(n) = s.shared_locks.get_mut(&self.path) {
            *n -= 1;
            if *n == 0 {
                s.shared_locks.remove(&self.path);
            }
        }
    }
}

#[cfg(test)]
#[path = "memfs_tests.rs"]
mod tests;
