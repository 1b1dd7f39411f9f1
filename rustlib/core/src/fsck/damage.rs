//! Damage a repair has recorded: file data that cannot be read (a frame
//! that does not authenticate, a pack that is missing or too short) stays
//! in the file's segment map, so the range keeps reading as EIO, never as
//! zeros; repair records it in the inode's attribute `fusefs.damaged`, one
//! line per segment:
//!
//! ```text
//! segment INDEX generation GENERATION bytes START..END
//! ```
//!
//! A recorded segment is no longer a finding (a second fsck after a repair
//! finds nothing) but is listed as known damage. The record is plain text,
//! readable with `getfattr -n fusefs.damaged FILE` through the mount, which
//! does not let it be set or removed; a segment written again gets a new
//! generation, so a line for its old one no longer matches and the next
//! repair drops it.

use std::collections::HashSet;

use crate::metadata::Inode;

/// The attribute's name (outside the namespaces users may set).
pub const DAMAGE_XATTR: &[u8] = b"fusefs.damaged";

/// One damaged segment: (index, generation, start, end).
pub type Damaged = (u64, u64, u64, u64);

/// The (index, generation) pairs recorded for `inode`.
pub fn recorded(inode: &Inode) -> HashSet<(u64, u64)> {
    parse(
        inode
            .xattrs
            .get(DAMAGE_XATTR)
            .map_or(&[][..], |v| v.as_slice()),
    )
    .into_iter()
    .map(|(i, g, _, _)| (i, g))
    .collect()
}

/// The lines of a record; malformed lines are skipped.
pub fn parse(value: &[u8]) -> Vec<Damaged> {
    String::from_utf8_lossy(value)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let [_, index, _, generation, _, range] = w.as_slice() else {
                return None;
            };
            let (start, end) = range.split_once("..")?;
            Some((
                index.parse().ok()?,
                generation.parse().ok()?,
                start.parse().ok()?,
                end.parse().ok()?,
            ))
        })
        .collect()
}

/// The record of `inode` with `add` added, keeping only lines that still
/// match a segment of it (same index and generation); `None` if empty.
pub fn merged(inode: &Inode, add: &[Damaged]) -> Option<Vec<u8>> {
    let mut all = parse(
        inode
            .xattrs
            .get(DAMAGE_XATTR)
            .map_or(&[][..], |v| v.as_slice()),
    );
    all.extend_from_slice(add);
    all.retain(|(i, g, _, _)| inode.segments.get(i).is_some_and(|r| r.generation == *g));
    all.sort_unstable();
    all.dedup();
    if all.is_empty() {
        return None;
    }
    let text: String = all
        .iter()
        .map(|(i, g, s, e)| format!("segment {i} generation {g} bytes {s}..{e}\n"))
        .collect();
    Some(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_junk_is_skipped() {
        let text = b"segment 3 generation 9 bytes 49152..65536\nnonsense\nsegment x generation 1 bytes 0..1\n";
        assert_eq!(parse(text), vec![(3, 9, 49152, 65536)]);
    }
}
