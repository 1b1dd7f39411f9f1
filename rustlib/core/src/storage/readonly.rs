//! [`ReadOnlyFs`]: a file system through which nothing can be changed, for
//! an open that must write nothing (`fusefs mount --read-only`, fsck of a
//! mounted vault). The engine skips every write such an open would make
//! (cutting a torn tail, starting a log file, mending copies, reclaiming
//! orphans, removing stray packs); this wrapper makes sure of it: any
//! write that slipped through fails with `EROFS` instead of reaching the
//! vault.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{FileSystem, StorageFile, TryLock};

/// errno of "read-only file system".
pub const EROFS: i32 = 30;

fn refused<T>() -> io::Result<T> {
    Err(io::Error::from_raw_os_error(EROFS))
}

/// `inner` with every change refused (`EROFS`); files open read-only.
pub struct ReadOnlyFs(pub Arc<dyn FileSystem>);

/// A file opened for reading only: writes, syncs and space changes refused.
struct ReadOnlyFile(Box<dyn StorageFile>);

impl StorageFile for ReadOnlyFile {
    fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        refused()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        refused()
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, _: u64) -> io::Result<()> {
        refused()
    }
    fn punch_hole(&self, _: u64, _: u64) -> io::Result<()> {
        refused()
    }
}

impl FileSystem for ReadOnlyFs {
    fn create_new(&self, _: &Path) -> io::Result<Box<dyn StorageFile>> {
        refused()
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.open_read(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(ReadOnlyFile(self.0.open_read(path)?)))
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        refused()
    }
    fn remove(&self, _: &Path) -> io::Result<()> {
        refused()
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    /// Succeeds only where the directory exists already.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if self.0.list(dir).is_ok() {
            Ok(())
        } else {
            refused()
        }
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        refused()
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.exists(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.0.file_len(path)
    }
    /// Nothing that writes nothing needs the exclusive lock: taken shared.
    fn try_lock(&self, path: &Path) -> io::Result<TryLock> {
        self.0.try_lock_shared(path)
    }
    fn try_lock_shared(&self, path: &Path) -> io::Result<TryLock> {
        self.0.try_lock_shared(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memfs::MemFs;

    #[test]
    fn every_change_is_refused_and_reads_go_through() {
        let mem = MemFs::new();
        mem.create_dir_all(Path::new("/v")).unwrap();
        let f = mem.create_new(Path::new("/v/a")).unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        f.sync_data().unwrap();
        let ro = ReadOnlyFs(Arc::new(mem.clone()));
        let writes = mem.writes();
        let erofs = |r: io::Result<()>| assert_eq!(r.unwrap_err().raw_os_error(), Some(EROFS));
        erofs(ro.create_new(Path::new("/v/b")).map(|_| ()));
        erofs(ro.remove(Path::new("/v/a")));
        erofs(ro.rename(Path::new("/v/a"), Path::new("/v/c")));
        erofs(ro.sync_dir(Path::new("/v")));
        erofs(ro.create_dir_all(Path::new("/v/new")));
        ro.create_dir_all(Path::new("/v")).unwrap();
        let g = ro.open(Path::new("/v/a")).unwrap();
        erofs(g.write_all_at(b"x", 0));
        erofs(g.set_len(0));
        erofs(g.sync_data());
        erofs(g.punch_hole(0, 1));
        let mut buf = [0u8; 3];
        assert_eq!(g.read_at(&mut buf, 0).unwrap(), 3);
        assert_eq!(&buf, b"abc");
        assert_eq!(ro.list(Path::new("/v")).unwrap(), vec!["a".to_string()]);
        assert_eq!(mem.writes(), writes);
    }

    #[test]
    fn shared_locks_exclude_the_exclusive_one_only() {
        let mem = MemFs::new();
        let p = Path::new("/v/fusefs.lock");
        let ro = ReadOnlyFs(Arc::new(mem.clone()));
        let a = ro.try_lock(p).unwrap();
        let b = ro.try_lock(p).unwrap();
        assert!(matches!(
            (&a, &b),
            (TryLock::Acquired(_), TryLock::Acquired(_))
        ));
        assert!(matches!(mem.try_lock(p).unwrap(), TryLock::Busy { .. }));
        drop((a, b));
        let w = mem.try_lock(p).unwrap();
        assert!(matches!(w, TryLock::Acquired(_)));
        assert!(matches!(ro.try_lock(p).unwrap(), TryLock::Busy { .. }));
    }
}
