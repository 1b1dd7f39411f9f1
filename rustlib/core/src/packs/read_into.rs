//! Frames read and opened straight into a reader's buffer: the read path
//! of large reads (`Vault::read_bytes`).
//!
//! A raw frame's plaintext is its body, which lies [`body_lead`] bytes into
//! the frame (after the nonce and encoding byte, or the encoding byte and
//! body length). So the frame is read that many bytes *before* the place
//! the plaintext belongs in the reader's buffer and opened in place there:
//! the body is decrypted where it is wanted. Each byte is then copied once
//! by the kernel (pack → buffer) and written once by the AEAD, where
//! reading into a buffer of its own, moving the body to its start and
//! copying it into the reply cost two more passes and a zeroed
//! allocation per frame.
//!
//! The frame's bytes around its body (up to [`ROOM_BEFORE`] before it; the
//! tag and any padding after it) land on the buffer's neighbouring bytes:
//! they are saved first and put back after, so a segment read this way
//! changes nothing in the buffer but its own plaintext. Nothing is put in
//! place until the frame authenticated: on an error the caller drops the
//! buffer (its plaintext ranges are unspecified then).

use super::frame::{body_lead, open_frame_in_place, threads_for, FrameBody, MAX_BODY_LEAD};
use super::PackStore;
use crate::crypto::aead::AeadKey;
use crate::error::Result;
use crate::metadata::SegmentRef;

/// Bytes a buffer needs before the first plaintext it places.
pub const ROOM_BEFORE: usize = MAX_BODY_LEAD;

/// One segment of a file to read into a buffer: its index, its frame, and
/// where its plaintext goes in the buffer.
#[derive(Clone, Copy, Debug)]
pub struct Placed {
    pub index: u64,
    pub r: SegmentRef,
    pub at: usize,
}

impl PackStore {
    /// The buffer's length `s` needs: its plaintext and what its frame
    /// holds after the body (tag and padding).
    pub fn reach(&self, s: &Placed) -> usize {
        let lead = body_lead(self.opts.layout, s.r.generation);
        let plain_end = s.at + s.r.plain_len as usize;
        plain_end.max(s.at - lead.min(s.at) + s.r.stored_len as usize)
    }

    /// Read, authenticate and decode `segments` of one file into `buf`,
    /// each plaintext at its `at`. Every `at` is at least [`ROOM_BEFORE`],
    /// `buf` is at least as long as each one's [`PackStore::reach`], and the
    /// plaintexts do not overlap. Bytes of `buf` outside them are left as
    /// they were. Calls that are worth splitting over threads (2 MiB and
    /// more) open the frames as [`PackStore::read_segments`] does and copy.
    pub fn read_segments_into(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        segments: &[Placed],
        buf: &mut [u8],
    ) -> Result<()> {
        let bytes = segments.iter().map(|s| s.r.plain_len as usize).sum();
        if threads_for(segments.len(), bytes) > 1 {
            let refs: Vec<(u64, SegmentRef)> = segments.iter().map(|s| (s.index, s.r)).collect();
            let plains = self.read_segments(key, file_id, &refs)?;
            for (s, plain) in segments.iter().zip(plains) {
                buf[s.at..s.at + plain.len()].copy_from_slice(&plain);
            }
            return Ok(());
        }
        for s in segments {
            self.read_segment_into(key, file_id, s, buf)?;
        }
        Ok(())
    }

    /// One segment into `buf` at `s.at` (see the module's comment).
    fn read_segment_into(
        &self,
        key: &AeadKey,
        file_id: &[u8; 16],
        s: &Placed,
        buf: &mut [u8],
    ) -> Result<()> {
        let lead = body_lead(self.opts.layout, s.r.generation);
        let (plain, stored) = (s.r.plain_len as usize, s.r.stored_len as usize);
        assert!(
            s.at >= lead && buf.len() >= self.reach(s),
            "no room around the segment"
        );
        let start = s.at - lead;
        let frame = start..start + stored;
        let after = (s.at + plain).min(frame.end)..frame.end;
        let mut before = [0u8; MAX_BODY_LEAD];
        before[..lead].copy_from_slice(&buf[start..s.at]);
        let kept_after = buf[after.clone()].to_vec();
        let opened = self
            .read_frame_into(&s.r, &mut buf[frame.clone()])
            .and_then(|()| {
                let layout = self.opts.layout;
                let frame = &mut buf[frame];
                open_frame_in_place(key, &self.vault_id, file_id, s.index, &s.r, layout, frame)
            });
        buf[start..s.at].copy_from_slice(&before[..lead]);
        buf[after].copy_from_slice(&kept_after);
        let decoded = match opened? {
            FrameBody::InPlace(body) => {
                debug_assert_eq!(body, lead..lead + plain, "a raw body follows its lead");
                None
            }
            FrameBody::Decoded(out) => Some(out),
        };
        if let Some(out) = decoded {
            // zstd (rare: only where it made the frame smaller): the
            // decompressed plaintext is copied into place.
            buf[s.at..s.at + plain].copy_from_slice(&out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::crypto::keys::SecretKey;
    use crate::error::Error;
    use crate::packs::{FrameLayout, PackOptions};
    use crate::storage::memfs::MemFs;
    use crate::types::Cipher;

    const FILL: u8 = 0xab;

    fn key() -> AeadKey {
        AeadKey::new(Cipher::Aes256Gcm, &SecretKey::from_bytes([5; 32]))
    }

    /// Bytes zstd cannot shrink (`compressible`: ones it can).
    fn bytes(len: usize, seed: u32, compressible: bool) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2654435761) | 1;
        (0..len)
            .map(|i| match compressible {
                true => b"segment "[i % 8],
                false => {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                }
            })
            .collect()
    }

    fn store(fs: &MemFs, layout: FrameLayout, compression: Option<i32>) -> PackStore {
        let opts = PackOptions {
            compression,
            layout,
            ..PackOptions::default()
        };
        PackStore::open(
            Arc::new(fs.clone()),
            Path::new("/v/packs"),
            [1; 16],
            Cipher::Aes256Gcm,
            opts,
        )
        .unwrap()
    }

    /// Format 1, format 2, each raw and with zstd: three segments (one
    /// compressible, the last short and padded) placed with a gap and back
    /// to back; then one of them damaged.
    fn layouts() -> Vec<(FrameLayout, Option<i32>)> {
        let v2 = FrameLayout {
            legacy_high: 0,
            segment_size: 8192,
        };
        let mut all = Vec::new();
        for layout in [FrameLayout::V1, v2] {
            for compression in [None, Some(3)] {
                all.push((layout, compression));
            }
        }
        all
    }

    /// The segments written, their refs, and where each goes in the buffer.
    fn placed(store: &PackStore) -> (Vec<Vec<u8>>, Vec<Placed>, usize) {
        let plains = vec![
            bytes(8192, 1, false),
            bytes(8192, 2, true),
            bytes(700, 3, false),
        ];
        let segs: Vec<(u64, u64, &[u8])> = plains
            .iter()
            .enumerate()
            .map(|(k, p)| (k as u64, 10 + k as u64, &p[..]))
            .collect();
        let refs = store.write_segments(&key(), &[2; 16], &segs).unwrap();
        // The first two back to back, a gap of 100 bytes before the third.
        let ats = [
            ROOM_BEFORE,
            ROOM_BEFORE + 8192,
            ROOM_BEFORE + 2 * 8192 + 100,
        ];
        let placed: Vec<Placed> = refs
            .iter()
            .zip(ats)
            .enumerate()
            .map(|(k, (r, at))| Placed {
                index: k as u64,
                r: *r,
                at,
            })
            .collect();
        let len = placed.iter().map(|s| store.reach(s)).max().unwrap();
        (plains, placed, len)
    }

    #[test]
    fn each_plaintext_lands_at_its_place_and_nothing_else_changes() {
        for (layout, compression) in layouts() {
            let fs = MemFs::new();
            let store = store(&fs, layout, compression);
            let (plains, placed, len) = placed(&store);
            let mut buf = vec![FILL; len];
            // Every order: each call leaves the others' bytes as they were.
            for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
                buf.fill(FILL);
                for i in order {
                    store
                        .read_segments_into(&key(), &[2; 16], &placed[i..=i], &mut buf)
                        .unwrap();
                }
                let mut expect = vec![FILL; len];
                for (s, p) in placed.iter().zip(&plains) {
                    expect[s.at..s.at + p.len()].copy_from_slice(p);
                }
                assert!(buf == expect, "{layout:?} {compression:?} {order:?}");
            }
            buf.fill(FILL);
            store
                .read_segments_into(&key(), &[2; 16], &placed, &mut buf)
                .unwrap();
            for (s, p) in placed.iter().zip(&plains) {
                assert_eq!(&buf[s.at..s.at + p.len()], &p[..]);
            }
        }
    }

    #[test]
    fn a_damaged_frame_fails_and_puts_no_byte_of_it_around_its_place() {
        for (layout, compression) in layouts() {
            let fs = MemFs::new();
            let store = store(&fs, layout, compression);
            let (plains, placed, len) = placed(&store);
            let path = Path::new("/v/packs").join(crate::packs::pack_file_name(1));
            let r = placed[1].r;
            for at in [r.offset, r.offset + 5, r.offset + r.stored_len as u64 - 1] {
                fs.poke(&path, |b| b[at as usize] ^= 0x04);
                let mut buf = vec![FILL; len];
                let e = store
                    .read_segments_into(&key(), &[2; 16], &placed, &mut buf)
                    .unwrap_err();
                assert!(
                    matches!(e, Error::PackCorrupt { offset, .. } if offset == r.offset),
                    "{e}"
                );
                // The one before it was put in place; around the damaged
                // one, nothing of its frame was left.
                let (a, b) = (placed[1].at, placed[1].at + plains[1].len());
                assert!(buf[..placed[0].at].iter().all(|&x| x == FILL));
                assert_eq!(&buf[placed[0].at..a], &plains[0][..]);
                assert!(buf[b..].iter().all(|&x| x == FILL), "{layout:?}");
                fs.poke(&path, |b| b[at as usize] ^= 0x04);
            }
        }
    }
}
