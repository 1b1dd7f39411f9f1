//! Little-endian field encoding shared by log entries and snapshots: fixed
//! integers, u32-length-prefixed byte strings, presence-byte options. The
//! reader checks every length against what is left and never panics.

use super::inode::Timespec;
use super::segment::SegmentRef;
use crate::error::{Error, Result};

pub struct Writer(Vec<u8>);

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Writer(Vec::with_capacity(64))
    }
    pub fn with_capacity(bytes: usize) -> Self {
        Writer(Vec::with_capacity(bytes))
    }
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
    pub fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    pub fn time(&mut self, t: Timespec) {
        self.u64(t.sec as u64);
        self.u32(t.nsec);
    }
    pub fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u32(x)
            }
            None => self.u8(0),
        }
    }
    pub fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u64(x)
            }
            None => self.u8(0),
        }
    }
    pub fn opt_time(&mut self, v: Option<Timespec>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.time(x)
            }
            None => self.u8(0),
        }
    }
    pub fn seg(&mut self, r: &SegmentRef) {
        self.u64(r.pack);
        self.u64(r.offset);
        self.u32(r.stored_len);
        self.u32(r.plain_len);
        self.u64(r.generation);
    }
}

pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

pub fn bad(m: &str) -> Error {
    Error::LogCorrupt(format!("undecodable entry: {m}"))
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, at: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.b.len() - self.at
    }
    /// Refuse bytes left over after the last field.
    pub fn finish(&self) -> Result<()> {
        if self.at != self.b.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(())
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.at < n {
            return Err(bad("cut short"));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        Ok(self.slice()?.to_vec())
    }
    /// What [`Reader::bytes`] reads, borrowed: for a caller that keeps
    /// the bytes in another form (a directory's names are `Arc<[u8]>`), so
    /// they are copied once, not twice.
    pub fn slice(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn time(&mut self) -> Result<Timespec> {
        let sec = self.u64()? as i64;
        let nsec = self.u32()?;
        if nsec >= 1_000_000_000 {
            return Err(bad("nanoseconds out of range"));
        }
        Ok(Timespec { sec, nsec })
    }
    pub fn present(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad("bad presence byte")),
        }
    }
    pub fn opt_u32(&mut self) -> Result<Option<u32>> {
        Ok(if self.present()? {
            Some(self.u32()?)
        } else {
            None
        })
    }
    pub fn opt_u64(&mut self) -> Result<Option<u64>> {
        Ok(if self.present()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    pub fn opt_time(&mut self) -> Result<Option<Timespec>> {
        Ok(if self.present()? {
            Some(self.time()?)
        } else {
            None
        })
    }
    pub fn seg(&mut self) -> Result<SegmentRef> {
        Ok(SegmentRef {
            pack: self.u64()?,
            offset: self.u64()?,
            stored_len: self.u32()?,
            plain_len: self.u32()?,
            generation: self.u64()?,
        })
    }
}
