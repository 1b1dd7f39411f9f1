//! Metadata snapshots: the whole [`MetadataState`] in one sealed file,
//! `snap/NNNNNNNNNNNNNNNN.snap` (FORMAT.md §9).
//!
//! ```text
//! prefix (64 bytes, in clear, repeated as the first 64 plaintext bytes so
//! that it is authenticated):
//!   0  8 magic "fusefssn"   8 1 version 1   9 3 reserved   12 4 prefix length 64
//!  16 16 vault id          32 8 snapshot number          40 16 snapshot id (random)
//!  56  8 covers_seq: the state is the one after log record covers_seq
//! then a stream-v2 stream (FORMAT.md §4, zstd segments) under the raw key
//! subkey(master, "snapshot", snapshot id), whose plaintext is
//! prefix ‖ encoded state.
//! ```
//!
//! Written to a temporary name, synced, renamed, and the directory synced:
//! a snapshot either exists whole or not at all.

use std::io::Write;
use std::path::Path;

use crate::codec::{bad, Reader, Writer};
use crate::crypto::keys::{KeyMaterial, SecretKey};
use crate::crypto::random;
use crate::error::{io_at, Error, Result};
use crate::log::entry::InodeKind;
use crate::pipeline::Control;
use crate::storage::{FileSystem, StorageFile};
use crate::stream_io::Sink;
use crate::types::{EncryptParams, ParallelismProfile};
use crate::vault::config::{purpose, subkey};
use crate::vault::metadata::{Inode, MetadataState, PackUsage};
use imbl::OrdMap;

pub const SNAP_MAGIC: &[u8; 8] = b"fusefssn";
pub const SNAP_PREFIX_LEN: usize = 64;

pub fn snapshot_file_name(number: u64) -> String {
    format!("{number:016x}.snap")
}

pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".snap")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Encode the state; inodes, entries and packs in number order, so equal
/// states give equal bytes. Meant to run on a copy of the state taken under
/// the engine's lock (O(1), see `metadata`), without the lock.
pub fn encode_state(s: &MetadataState) -> Vec<u8> {
    // Sized up front (about 128 bytes an inode with its entry): growing a
    // buffer of hundreds of MiB by doubling remaps it each time, and a
    // remap stops every other thread's page faults and mappings meanwhile.
    let mut w = Writer::with_capacity(s.inodes.len() * 128 + 4096);
    w.u32(s.segment_size);
    w.u64(s.next_ino);
    w.u64(s.scheduler_cycles);
    w.u64(s.generation_high);
    // Sorted with their inodes: one pass over the map, no lookup per inode.
    let mut inodes: Vec<(u64, &Inode)> = s.inodes.iter().map(|(n, i)| (*n, &**i)).collect();
    inodes.sort_unstable_by_key(|(n, _)| *n);
    w.u64(inodes.len() as u64);
    for (ino, i) in inodes {
        w.u64(ino);
        w.u8(i.kind.id());
        w.u32(i.mode);
        w.u32(i.uid);
        w.u32(i.gid);
        w.u64(i.rdev);
        w.u64(i.size);
        w.u32(i.links);
        w.time(i.atime);
        w.time(i.mtime);
        w.time(i.ctime);
        w.raw(&i.file_id);
        w.bytes(&i.target);
        w.u64(i.parent);
        w.u32(i.xattrs.len() as u32);
        for (k, v) in &i.xattrs {
            w.bytes(k);
            w.bytes(v);
        }
        w.u64(i.segments.len() as u64);
        for (index, r) in &i.segments {
            w.u64(*index);
            w.seg(r);
        }
    }
    let mut dirs: Vec<_> = s.dirs.iter().collect();
    dirs.sort_unstable_by_key(|(d, _)| **d);
    w.u64(dirs.len() as u64);
    for (d, entries) in dirs {
        w.u64(*d);
        w.u64(entries.len() as u64);
        for (name, child) in entries.iter() {
            w.bytes(name);
            w.u64(child);
        }
    }
    w.u64(s.packs.len() as u64);
    for (p, u) in &s.packs {
        w.u64(*p);
        w.u64(u.live);
        w.u64(u.dead);
    }
    w.finish()
}

/// Decode a state; every count is checked against the bytes left.
pub fn decode_state(b: &[u8]) -> Result<MetadataState> {
    let mut r = Reader::new(b);
    let count = |r: &mut Reader<'_>, min_item: usize| -> Result<usize> {
        let n = r.u64()? as usize;
        if n > r.remaining() / min_item.max(1) {
            return Err(bad("count past the end"));
        }
        Ok(n)
    };
    let segment_size = r.u32()?;
    if segment_size == 0 {
        return Err(bad("segment size 0"));
    }
    let next_ino = r.u64()?;
    let scheduler_cycles = r.u64()?;
    let generation_high = r.u64()?;
    let n = count(&mut r, 90)?;
    let mut inodes = Vec::with_capacity(n);
    for _ in 0..n {
        let ino = r.u64()?;
        let kind = InodeKind::from_id(r.u8()?).ok_or_else(|| bad("unknown inode kind"))?;
        let (mode, uid, gid, rdev, size, links) =
            (r.u32()?, r.u32()?, r.u32()?, r.u64()?, r.u64()?, r.u32()?);
        let (atime, mtime, ctime) = (r.time()?, r.time()?, r.time()?);
        let file_id: [u8; 16] = r.take(16)?.try_into().expect("16");
        let target = r.bytes()?;
        let parent = r.u64()?;
        let mut xattrs = OrdMap::new();
        let nx = r.u32()? as usize;
        if nx > r.remaining() / 8 {
            return Err(bad("count past the end"));
        }
        for _ in 0..nx {
            let k = r.bytes()?;
            xattrs.insert(k, r.bytes()?);
        }
        let mut segments = OrdMap::new();
        for _ in 0..count(&mut r, 40)? {
            let index = r.u64()?;
            segments.insert(index, r.seg()?);
        }
        let inode = Inode {
            kind,
            mode,
            uid,
            gid,
            rdev,
            size,
            links,
            atime,
            mtime,
            ctime,
            file_id,
            target,
            xattrs,
            segments,
            parent,
            stored: 0, // derived, computed by from_parts
        };
        inodes.push((ino, std::sync::Arc::new(inode))); // from_parts refuses an inode twice
    }
    let mut dirs = Vec::new();
    for _ in 0..count(&mut r, 16)? {
        let d = r.u64()?;
        let mut entries = Vec::new();
        for _ in 0..count(&mut r, 12)? {
            let name = r.bytes()?;
            entries.push((name, r.u64()?));
        }
        dirs.push((d, entries));
    }
    let mut packs = OrdMap::new();
    for _ in 0..count(&mut r, 24)? {
        let p = r.u64()?;
        packs.insert(
            p,
            PackUsage {
                live: r.u64()?,
                dead: r.u64()?,
            },
        );
    }
    r.finish()?;
    MetadataState::from_parts(
        segment_size,
        inodes,
        dirs,
        packs,
        next_ino,
        scheduler_cycles,
        generation_high,
    )
    .map_err(|e| bad(&e))
}

struct Prefix {
    vault_id: [u8; 16],
    number: u64,
    snapshot_id: [u8; 16],
    covers_seq: u64,
}

impl Prefix {
    fn encode(&self) -> [u8; SNAP_PREFIX_LEN] {
        let mut b = [0u8; SNAP_PREFIX_LEN];
        b[0..8].copy_from_slice(SNAP_MAGIC);
        b[8] = 1;
        b[12..16].copy_from_slice(&(SNAP_PREFIX_LEN as u32).to_le_bytes());
        b[16..32].copy_from_slice(&self.vault_id);
        b[32..40].copy_from_slice(&self.number.to_le_bytes());
        b[40..56].copy_from_slice(&self.snapshot_id);
        b[56..64].copy_from_slice(&self.covers_seq.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Prefix> {
        let c = |m: &str| Err(Error::SnapshotCorrupt(m.into()));
        if b.len() < SNAP_PREFIX_LEN {
            return c("truncated prefix");
        }
        if &b[0..8] != SNAP_MAGIC
            || b[9..12] != [0, 0, 0]
            || b[12..16] != (SNAP_PREFIX_LEN as u32).to_le_bytes()
        {
            return c("not a fusefs snapshot");
        }
        if b[8] != 1 {
            return Err(Error::UnsupportedVersion(b[8]));
        }
        let mut p = Prefix {
            vault_id: [0; 16],
            number: 0,
            snapshot_id: [0; 16],
            covers_seq: 0,
        };
        p.vault_id.copy_from_slice(&b[16..32]);
        p.number = u64::from_le_bytes(b[32..40].try_into().expect("8"));
        p.snapshot_id.copy_from_slice(&b[40..56]);
        p.covers_seq = u64::from_le_bytes(b[56..64].try_into().expect("8"));
        Ok(p)
    }
}

fn key(master: &SecretKey, snapshot_id: &[u8; 16]) -> Result<KeyMaterial> {
    KeyMaterial::raw(subkey(master, purpose::SNAPSHOT, snapshot_id).as_bytes())
}

struct FileSink<'a> {
    file: &'a dyn StorageFile,
    offset: u64,
}

impl Write for FileSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all_at(buf, self.offset)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for FileSink<'_> {}

/// Write snapshot `number` of `state` (the state after record `covers_seq`), durably.
pub fn write_snapshot(
    fs: &dyn FileSystem,
    dir: &Path,
    vault_id: [u8; 16],
    master: &SecretKey,
    number: u64,
    covers_seq: u64,
    state: &MetadataState,
) -> Result<()> {
    fs.create_dir_all(dir)
        .map_err(io_at("cannot create", dir))?;
    let prefix = Prefix {
        vault_id,
        number,
        snapshot_id: random::bytes()?,
        covers_seq,
    }
    .encode();
    let body = encode_state(state);
    let final_path = dir.join(snapshot_file_name(number));
    let tmp = dir.join(format!("{}.tmp", snapshot_file_name(number)));
    let _ = fs.remove(&tmp);
    let file = fs.create_new(&tmp).map_err(io_at("cannot create", &tmp))?;
    file.write_all_at(&prefix, 0)
        .map_err(io_at("cannot write", &tmp))?;
    let params = EncryptParams {
        compression: Some(3),
        checkpoint_bytes: 0,
        ..EncryptParams::default()
    };
    let mut sink = FileSink {
        file: &*file,
        offset: SNAP_PREFIX_LEN as u64,
    };
    let snapshot_id: [u8; 16] = prefix[40..56].try_into().expect("16");
    // The sealed stream covers the prefix too (read from its own bytes and
    // the body's: the encoded state is not copied again). A snapshot is
    // written by a compaction beside live work, so it leaves one core to the
    // readers and writers (at 1M inodes it still writes in 0.42 s).
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::api::encrypt_stream(
        &mut std::io::Read::chain(&prefix[..], &body[..]),
        &mut sink,
        &key(master, &snapshot_id)?,
        &params,
        ParallelismProfile::Fixed(workers.saturating_sub(1).max(1)),
        &Control::new(),
    )?;
    drop(body);
    file.sync_data().map_err(io_at("cannot sync", &tmp))?;
    drop(file);
    fs.rename(&tmp, &final_path)
        .map_err(io_at("cannot rename", &tmp))?;
    fs.sync_dir(dir).map_err(io_at("cannot sync", dir))?;
    Ok(())
}

/// Read and authenticate a snapshot; returns (covers_seq, state).
pub fn read_snapshot(
    fs: &dyn FileSystem,
    path: &Path,
    vault_id: [u8; 16],
    master: &SecretKey,
) -> Result<(u64, MetadataState)> {
    let io = io_at("cannot read", path);
    let file = fs.open(path).map_err(&io)?;
    let len = file.len().map_err(&io)? as usize;
    let mut bytes = vec![0u8; len];
    let n = file.read_at(&mut bytes, 0).map_err(&io)?;
    bytes.truncate(n);
    let prefix = Prefix::decode(&bytes)?;
    if prefix.vault_id != vault_id {
        return Err(Error::SnapshotCorrupt("belongs to another vault".into()));
    }
    let mut plain = Vec::new();
    crate::api::decrypt_stream(
        &mut &bytes[SNAP_PREFIX_LEN..],
        &mut plain,
        &key(master, &prefix.snapshot_id)?,
        ParallelismProfile::Auto,
        &Control::new(),
    )
    .map_err(|e| Error::SnapshotCorrupt(e.to_string()))?;
    if plain.len() < SNAP_PREFIX_LEN || plain[..SNAP_PREFIX_LEN] != bytes[..SNAP_PREFIX_LEN] {
        return Err(Error::SnapshotCorrupt(
            "prefix does not match its sealed copy".into(),
        ));
    }
    let state = decode_state(&plain[SNAP_PREFIX_LEN..])
        .map_err(|e| Error::SnapshotCorrupt(e.to_string()))?;
    Ok((prefix.covers_seq, state))
}
