//! Segment arithmetic: which segments a byte range touches and how, and
//! where a size cuts a segment. Pure functions of offsets and the segment
//! size `seg` (as gocryptfs keeps its `offsets.go`), so the data path reads
//! as what it does and each rule has its unit test.
//!
//! Segment `k` holds the file's bytes `[k * seg, (k + 1) * seg)`; the last
//! segment of a file may hold fewer. A missing segment is a hole.

use std::ops::Range;

/// Indexes of the segments that bytes `[offset, end)` touch (empty if the
/// range is).
pub fn touched(offset: u64, end: u64, seg: u64) -> Range<u64> {
    if end <= offset {
        return offset / seg..offset / seg;
    }
    offset / seg..end.div_ceil(seg)
}

/// Where segment `k` starts in the file.
pub fn start_of(k: u64, seg: u64) -> u64 {
    k * seg
}

/// Whether bytes `[offset, end)` cover segment `k` whole (nothing of its old
/// contents survives a write of them).
pub fn covers_whole(k: u64, offset: u64, end: u64, seg: u64) -> bool {
    offset <= k * seg && end >= (k + 1) * seg
}

/// The segments a write of `[offset, end)` may keep old bytes of: only the
/// first and the last can be covered in part (the same one if the write
/// stays inside one segment).
pub fn partial_candidates(offset: u64, end: u64, seg: u64) -> [u64; 2] {
    [offset / seg, (end - 1) / seg]
}

/// The part of segment `k` that bytes `[offset, end)` cover, in the file's
/// offsets, with the segment ending at `file_end` at the latest (the
/// file's size after the write): `(from, to, segment end)`.
pub fn covered_part(k: u64, offset: u64, end: u64, file_end: u64, seg: u64) -> (u64, u64, u64) {
    let seg_start = k * seg;
    let seg_end = (seg_start + seg).min(file_end);
    (offset.max(seg_start), end.min(seg_end), seg_end)
}

/// Where a file of `size` bytes ends inside a segment: `Some((index,
/// within))` when `size` falls inside segment `index`, `within` bytes into
/// it (truncating to `size` must cut that segment there); `None` when `size`
/// is at a segment boundary (whole segments are kept or dropped).
pub fn cut_at(size: u64, seg: u64) -> Option<(u64, u64)> {
    let within = size % seg;
    (within > 0).then_some((size / seg, within))
}

/// How many of segment `k`'s plaintext bytes belong to a file of `size`
/// bytes (bytes past the end, left by a crash between a truncate's two
/// records, are not the file's).
pub fn bytes_within_size(k: u64, size: u64, seg: u64) -> u64 {
    size.saturating_sub(k * seg).min(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 64;

    #[test]
    fn touched_segments() {
        assert_eq!(touched(0, 1, S), 0..1);
        assert_eq!(touched(0, S, S), 0..1);
        assert_eq!(touched(0, S + 1, S), 0..2);
        assert_eq!(touched(S - 1, S + 1, S), 0..2);
        assert_eq!(touched(S, 2 * S, S), 1..2);
        assert_eq!(touched(3 * S + 5, 3 * S + 6, S), 3..4);
        assert!(touched(10, 10, S).is_empty());
        assert!(touched(10, 5, S).is_empty());
    }

    #[test]
    fn whole_and_partial() {
        assert!(covers_whole(1, S, 2 * S, S));
        assert!(covers_whole(1, 0, 3 * S, S));
        assert!(!covers_whole(1, S + 1, 2 * S, S));
        assert!(!covers_whole(1, S, 2 * S - 1, S));
        assert_eq!(partial_candidates(S + 3, S + 4, S), [1, 1]);
        assert_eq!(partial_candidates(S + 3, 3 * S + 1, S), [1, 3]);
        assert_eq!(partial_candidates(0, S, S), [0, 0]);
    }

    #[test]
    fn covered_part_of_a_segment() {
        // A write of [70, 200) in a file growing to 200 bytes.
        assert_eq!(covered_part(1, 70, 200, 200, S), (70, 128, 128));
        assert_eq!(covered_part(2, 70, 200, 200, S), (128, 192, 192));
        assert_eq!(covered_part(3, 70, 200, 200, S), (192, 200, 200));
        // The file is longer than the write: the segment ends at its bound.
        assert_eq!(covered_part(3, 70, 200, 1000, S), (192, 200, 256));
    }

    #[test]
    fn where_a_size_cuts() {
        assert_eq!(cut_at(0, S), None);
        assert_eq!(cut_at(S, S), None);
        assert_eq!(cut_at(S + 1, S), Some((1, 1)));
        assert_eq!(cut_at(3 * S - 1, S), Some((2, S - 1)));
    }

    #[test]
    fn bytes_of_a_segment_within_the_size() {
        assert_eq!(bytes_within_size(0, 10, S), 10);
        assert_eq!(bytes_within_size(0, 1000, S), S);
        assert_eq!(bytes_within_size(2, 130, S), 2);
        assert_eq!(bytes_within_size(3, 130, S), 0);
        assert_eq!(start_of(3, S), 3 * S);
    }
}
