//! Where a file's segment lives: the entry of a file's segment map.

/// A segment of a file, stored as one sealed frame in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentRef {
    /// Pack file number.
    pub pack: u64,
    /// Offset of the frame in the pack file.
    pub offset: u64,
    /// Bytes the frame takes in the pack (nonce + sealed payload + tag).
    pub stored_len: u32,
    /// Plaintext bytes of the segment (≤ the vault's segment size).
    pub plain_len: u32,
    /// Generation of this version of the segment: bumped on every rewrite,
    /// bound into the frame's AAD so an older version cannot be replayed.
    pub generation: u64,
}
