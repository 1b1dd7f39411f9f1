//! The buffers reads are gathered in ([`ReadBytes`]), and a few of them
//! kept for the next reads.
//!
//! Why keep them: a fresh buffer for a large read is zeroed first (or its
//! fresh pages are, by the kernel, one fault at a time), a pass over every
//! byte that the frames opened into it then overwrite anyway. A buffer
//! taken back instead is only zeroed where the read puts nothing
//! ([`ReadBytes::zero_gaps`]): holes and the bytes past a short segment.
//! At most [`KEPT`] buffers of at most [`KEPT_MAX_BYTES`] are kept, for the
//! whole process (like an allocator's cache: they hold no vault's state).
//! They hold plaintext of earlier reads meanwhile, as the segment cache
//! and the kernel's page cache do.

use std::ops::{Deref, Range};
use std::sync::Mutex;

/// Buffers kept (about the reads in flight at once: the kernel's readahead
/// keeps a few, each on a worker thread).
const KEPT: usize = 4;
/// Larger buffers are not kept (a FUSE read is at most 1 MiB).
const KEPT_MAX_BYTES: usize = 2 << 20;

static KEPT_BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The bytes of one read, in the buffer they were decrypted in: the read's
/// bytes are a window of it, with room before and after that the frames
/// opened in place needed (never part of what [`Deref`] shows).
pub struct ReadBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
    /// Whether `buf` may hold bytes of an earlier read.
    reused: bool,
}

impl ReadBytes {
    /// `len` zero bytes.
    pub(super) fn zeros(len: usize) -> ReadBytes {
        ReadBytes {
            buf: vec![0; len],
            start: 0,
            len,
            reused: false,
        }
    }

    /// A buffer of `buf_len` bytes for a read of `len` bytes at `start`.
    /// Its bytes are unspecified (a kept buffer's old ones) until the read
    /// has filled it and called [`ReadBytes::zero_gaps`].
    pub(super) fn for_read(buf_len: usize, start: usize, len: usize) -> ReadBytes {
        debug_assert!(start + len <= buf_len);
        let kept = match buf_len <= KEPT_MAX_BYTES {
            true => KEPT_BUFFERS.lock().unwrap_or_else(|p| p.into_inner()).pop(),
            false => None,
        };
        let (buf, reused) = match kept {
            Some(mut buf) => {
                buf.resize(buf_len, 0);
                (buf, true)
            }
            None => (vec![0; buf_len], false),
        };
        ReadBytes {
            buf,
            start,
            len,
            reused,
        }
    }

    /// The whole buffer, room included, for the read to fill.
    pub(super) fn buffer_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Zero the read's bytes outside `filled` (ranges of the buffer the
    /// read wrote, in any order): they read as zeros (holes), not as what
    /// a kept buffer held before.
    pub(super) fn zero_gaps(&mut self, mut filled: Vec<Range<usize>>) {
        if !self.reused {
            return; // zeroed when allocated
        }
        filled.sort_by_key(|r| r.start);
        let mut at = self.start;
        let end = self.start + self.len;
        for r in filled {
            if r.start > at {
                self.buf[at..r.start.min(end)].fill(0);
            }
            at = at.max(r.end);
        }
        if at < end {
            self.buf[at..end].fill(0);
        }
    }

    /// The bytes as a `Vec` of their own (moved to the buffer's start).
    pub fn into_vec(mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.truncate(self.start + self.len);
        buf.drain(..self.start);
        buf
    }
}

impl Drop for ReadBytes {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() == 0 || buf.capacity() > KEPT_MAX_BYTES {
            return;
        }
        let mut kept = KEPT_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < KEPT {
            kept.push(buf);
        }
    }
}

impl Deref for ReadBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for ReadBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadBytes({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_gaps_are_zeroed_in_a_reused_buffer() {
        let mut b = ReadBytes {
            buf: vec![7; 40],
            start: 4,
            len: 30,
            reused: true,
        };
        b.zero_gaps(vec![20..25, 6..10, 8..12]);
        let mut want = [0u8; 30];
        want[2..8].fill(7); // 6..12
        want[16..21].fill(7); // 20..25
        assert_eq!(&b[..], &want[..]);
        assert_eq!(&b.buf[..4], &[7; 4], "the room is not the read's");
        b.zero_gaps(Vec::new());
        assert_eq!(&b[..], &[0; 30][..]);
    }
}
