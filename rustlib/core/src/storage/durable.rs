//! Whole files written crash-safely through the storage trait: the vault
//! config (`fusefs.conf`), resume checkpoints, and the second copies of the
//! metadata (`mirror/`). Going through
//! [`FileSystem`] lets tests fail or crash these writes like every other
//! durable write of the engine.

use std::path::Path;

use super::FileSystem;
use crate::error::{io_at, Result};

/// Replace `path` with `bytes` durably: a temporary file beside it
/// (`*.fusefs-tmp`), synced, renamed over `path`, and the directory synced.
/// A crash leaves either the old file or the new one, never a mix.
pub fn write_durably(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("fusefs-tmp");
    // Left by a crash before its rename: its content is of no use.
    let _ = fs.remove(&tmp);
    let file = fs.create_new(&tmp).map_err(io_at("cannot create", &tmp))?;
    file.write_all_at(bytes, 0)
        .map_err(io_at("cannot write", &tmp))?;
    file.sync_data().map_err(io_at("cannot sync", &tmp))?;
    drop(file);
    fs.rename(&tmp, path)
        .map_err(io_at("cannot rename", &tmp))?;
    sync_parent(fs, path)
}

/// Replace `to` with a copy of `from` durably (as [`write_durably`]),
/// read and written in chunks: a snapshot may be hundreds of MiB. Returns
/// the bytes copied.
pub fn copy_durably(fs: &dyn FileSystem, from: &Path, to: &Path) -> Result<u64> {
    const CHUNK: usize = 4 << 20;
    let src = fs.open_read(from).map_err(io_at("cannot open", from))?;
    let len = src.len().map_err(io_at("cannot read", from))?;
    let tmp = to.with_extension("fusefs-tmp");
    let _ = fs.remove(&tmp);
    let file = fs.create_new(&tmp).map_err(io_at("cannot create", &tmp))?;
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    let mut at = 0u64;
    while at < len {
        let want = ((len - at) as usize).min(CHUNK);
        let n = src
            .read_at(&mut buf[..want], at)
            .map_err(io_at("cannot read", from))?;
        if n == 0 {
            break; // shrank meanwhile: copy what there is
        }
        file.write_all_at(&buf[..n], at)
            .map_err(io_at("cannot write", &tmp))?;
        at += n as u64;
    }
    file.sync_data().map_err(io_at("cannot sync", &tmp))?;
    drop(file);
    fs.rename(&tmp, to).map_err(io_at("cannot rename", &tmp))?;
    sync_parent(fs, to)?;
    Ok(at)
}

/// [`copy_durably`] for a second copy, which may fail (a full disk): on
/// failure the temporary file is removed and `to` left as it was. Whether
/// it was copied.
pub fn try_copy_durably(fs: &dyn FileSystem, from: &Path, to: &Path) -> bool {
    let copied = copy_durably(fs, from, to).is_ok();
    if !copied {
        let _ = fs.remove(&to.with_extension("fusefs-tmp"));
    }
    copied
}

/// fsync the directory holding `path`, so a rename or creation in it is durable.
pub fn sync_parent(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs.sync_dir(dir)
        .map_err(io_at("cannot sync directory", dir))
}

/// Read a whole file of at most `limit` bytes; `None` if it holds more.
pub fn read_small(
    fs: &dyn FileSystem,
    path: &Path,
    limit: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let file = fs.open_read(path)?;
    let len = file.len()?;
    if len > limit {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len as usize];
    let n = file.read_at(&mut bytes, 0)?;
    bytes.truncate(n);
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memfs::{Fault, FaultOp, MemFs};

    fn old_file(fs: &MemFs, path: &Path) {
        fs.create_dir_all(path.parent().unwrap()).unwrap();
        write_durably(fs, path, b"old").unwrap();
    }

    #[test]
    fn a_crash_at_any_write_leaves_the_old_or_the_new_file() {
        let path = Path::new("/d/f");
        let probe = MemFs::new();
        old_file(&probe, path);
        let first = probe.writes();
        write_durably(&probe, path, b"new!").unwrap();
        assert_eq!(read_small(&probe, path, 100).unwrap().unwrap(), b"new!");
        let mut saw_new = false;
        for nth in first + 1..=probe.writes() {
            for torn in [0, 2, 100] {
                let fs = MemFs::new();
                old_file(&fs, path);
                fs.set_fault(Some(Fault::Crash { nth }));
                let _ = write_durably(&fs, path, b"new!");
                let got = read_small(&fs.after_crash(torn), path, 100)
                    .unwrap()
                    .unwrap();
                assert!(
                    got == b"old" || got == b"new!",
                    "write {nth}, torn {torn}: {got:?}"
                );
                saw_new |= got == b"new!";
            }
        }
        // Nothing is durable before the rename's directory sync, which is
        // not a write: every crash point above kept the old file.
        assert!(!saw_new);
    }

    #[test]
    fn failed_sync_is_reported_and_leaves_the_old_file() {
        let path = Path::new("/d/f");
        let fs = MemFs::new();
        old_file(&fs, path);
        fs.set_fault(Some(Fault::Error {
            op: FaultOp::Sync,
            nth: fs.syncs() + 1,
            errno: 28,
        }));
        let e = write_durably(&fs, path, b"new!").unwrap_err();
        assert!(e.to_string().contains("cannot sync"), "{e}");
        assert_eq!(read_small(&fs, path, 100).unwrap().unwrap(), b"old");
    }

    #[test]
    fn read_small_refuses_more_than_the_limit() {
        let path = Path::new("/d/f");
        let fs = MemFs::new();
        old_file(&fs, path);
        assert_eq!(read_small(&fs, path, 3).unwrap().unwrap(), b"old");
        assert_eq!(read_small(&fs, path, 2).unwrap(), None);
    }
}
