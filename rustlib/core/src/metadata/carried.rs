//! What a write's log record carries of a frame not yet durable in its pack
//! (FORMAT.md §9.2, entries 17 and 18): nothing, the frame's stored bytes,
//! or a patch — how the frame's plaintext differs from the frame its segment
//! referred to before — from which the frame is sealed again after a crash.
//!
//! ```text
//! entry 17 item:  segment item (40) ‖ frame bytes (u32 len ‖ bytes; empty: nothing)
//! entry 18 item:  segment item (40) ‖ kind u8, then
//!                 0: nothing
//!                 1: frame bytes (u32 len ‖ bytes)
//!                 2: base generation u64 ‖ keep u32 ‖ offset u32 ‖ patch (u32 len ‖ bytes)
//! ```

use super::codec::{bad, Reader, Writer};
use super::segment::SegmentRef;
use crate::error::Result;

/// How a frame's plaintext is made from its base's (the frame its segment
/// referred to just before the record): the base's first `keep` bytes,
/// zeros to the frame's plaintext length, then `bytes` written at `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramePatch {
    /// Generation of the base frame; 0: no base (then `keep` is 0).
    pub base_generation: u64,
    pub keep: u32,
    pub offset: u32,
    pub bytes: Vec<u8>,
}

impl FramePatch {
    /// The patched plaintext of `plain_len` bytes over `base` (the base
    /// frame's plaintext; empty for none). `None` if `base` is shorter than
    /// `keep` or the patch does not fit (never for a decoded patch over the
    /// right base).
    pub fn apply(&self, base: &[u8], plain_len: u32) -> Option<Vec<u8>> {
        let (keep, offset) = (self.keep as usize, self.offset as usize);
        let end = offset.checked_add(self.bytes.len())?;
        if keep > base.len() || keep > plain_len as usize || end > plain_len as usize {
            return None;
        }
        let mut plain = Vec::with_capacity(plain_len as usize);
        plain.extend_from_slice(&base[..keep]);
        plain.resize(plain_len as usize, 0);
        plain[offset..end].copy_from_slice(&self.bytes);
        Some(plain)
    }

    /// Whether the patch can describe segment `r`'s frame (§9.2's refusals).
    fn fits(&self, r: &SegmentRef) -> bool {
        let end = self.offset as u64 + self.bytes.len() as u64;
        self.keep <= r.plain_len
            && end <= r.plain_len as u64
            && self.base_generation < r.generation
            && (self.base_generation != 0 || self.keep == 0)
    }
}

/// What one item of a write's record carries of its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Carried {
    /// Nothing: the frame was durable in its pack.
    Nothing,
    /// The frame's stored bytes, exactly as its pack holds them.
    Frame(Vec<u8>),
    /// A patch over the segment's previous frame, to seal the frame from.
    Patch(FramePatch),
}

impl Carried {
    /// Bytes an entry-18 item takes past its segment item, at least.
    pub const MIN_ITEM_LEN: usize = 1;

    pub fn is_nothing(&self) -> bool {
        matches!(self, Carried::Nothing)
    }

    /// The entry's tag for these items: 17 while no item is a patch (a
    /// reader of entry 17 reads it), else 18.
    pub fn tag_for(items: &[Carried]) -> u8 {
        match items.iter().any(|c| matches!(c, Carried::Patch(_))) {
            true => 18,
            false => 17,
        }
    }

    /// Encode as an item of entry `tag` (17: no patch may be among the items).
    pub fn encode(&self, tag: u8, w: &mut Writer) {
        match (tag, self) {
            (17, Carried::Nothing) => w.bytes(&[]),
            (17, Carried::Frame(b)) => w.bytes(b),
            (_, Carried::Nothing) => w.u8(0),
            (_, Carried::Frame(b)) => {
                w.u8(1);
                w.bytes(b);
            }
            (_, Carried::Patch(p)) => {
                w.u8(2);
                w.u64(p.base_generation);
                w.u32(p.keep);
                w.u32(p.offset);
                w.bytes(&p.bytes);
            }
        }
    }

    /// Decode the item of entry `tag` that follows segment item `r`.
    pub fn decode(tag: u8, r: &mut Reader<'_>, seg: &SegmentRef) -> Result<Carried> {
        let kind = match tag {
            17 => 1,
            _ => r.u8()?,
        };
        let carried = match kind {
            0 => Carried::Nothing,
            1 => match r.bytes()? {
                b if b.is_empty() && tag == 17 => Carried::Nothing,
                b if b.len() == seg.stored_len as usize => Carried::Frame(b),
                _ => return Err(bad("a carried frame's length is not its stored length")),
            },
            2 => {
                let p = FramePatch {
                    base_generation: r.u64()?,
                    keep: r.u32()?,
                    offset: r.u32()?,
                    bytes: r.bytes()?,
                };
                if !p.fits(seg) {
                    return Err(bad("a frame's patch does not fit its segment"));
                }
                Carried::Patch(p)
            }
            k => return Err(bad(&format!("unknown carry kind {k}"))),
        };
        Ok(carried)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_keeps_a_prefix_zero_fills_and_writes_its_bytes() {
        let p = FramePatch {
            base_generation: 3,
            keep: 2,
            offset: 4,
            bytes: b"xy".to_vec(),
        };
        assert_eq!(p.apply(b"abcdef", 7).unwrap(), b"ab\0\0xy\0");
        assert_eq!(p.apply(b"a", 7), None, "base shorter than keep");
        assert_eq!(p.apply(b"abcdef", 5), None, "patch past the plain length");
    }
}
