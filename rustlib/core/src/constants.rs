//! Sizes, limits and magic numbers of the on-disk formats (see FORMAT.md).

/// First six bytes of every standalone stream.
pub const STREAM_MAGIC: &[u8; 6] = b"fusefs";
/// Length of the stream header shared by v1 and v2 (FORMAT.md §2).
pub const HEADER_LEN: usize = 108;
/// Bytes of the header covered by the header MAC.
pub const HEADER_MAC_OFFSET: usize = 76;
/// Length of a v2 stream frame header (FORMAT.md §4.1; a pack frame has no
/// header).
pub const FRAME_HEADER_LEN: usize = 41;
/// Bytes of the stream frame header that are AAD (length, stream id, index,
/// kind).
pub const STREAM_FRAME_AAD_LEN: usize = 29;

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
pub const STREAM_ID_LEN: usize = 16;
pub const SALT_LEN: usize = 16;
pub const KEY_CHECK_LEN: usize = 16;
pub const MAC_LEN: usize = 32;
pub const DIGEST_LEN: usize = 32;
/// Serialized digest state: chain value and frame count.
pub const DIGEST_STATE_LEN: usize = DIGEST_LEN + 8;

pub const MIN_SEGMENT_SIZE: u32 = 4096;
pub const MAX_SEGMENT_SIZE: u32 = 16 << 20;
/// v2 default: big segments keep per-frame overhead (41 + 17 bytes) and
/// syscalls negligible; memory stays bounded by segments in flight.
pub const DEFAULT_SEGMENT_SIZE_V2: u32 = 1 << 20;
/// v1 default: 64 KiB chunks, as age's STREAM.
pub const DEFAULT_CHUNK_SIZE_V1: u32 = 64 << 10;

/// A vault's segment size (fixed at `init`, in fusefs.conf): a power of two
/// in this range. Packs refuse frames of more plaintext than the maximum.
pub const DEFAULT_VAULT_SEGMENT_SIZE: u32 = 64 << 10;
pub const MIN_VAULT_SEGMENT_SIZE: u32 = 16 << 10;
pub const MAX_VAULT_SEGMENT_SIZE: u32 = 1 << 20;

/// Sealed plaintext of the trailer: encoding, digest, frame count, length.
pub const TRAILER_PLAINTEXT_LEN: usize = 1 + DIGEST_LEN + 8 + 8;

/// Argon2id defaults for standalone streams: 32 MiB, 3 passes, 1 lane
/// (about 0.1 s here, and within the 64 MiB RSS budget of a v2 run).
pub const DEFAULT_ARGON2_M_KIB: u32 = 32 * 1024;
pub const DEFAULT_ARGON2_T: u32 = 3;
pub const DEFAULT_ARGON2_P: u32 = 1;
pub const MAX_ARGON2_M_KIB: u32 = 4 * 1024 * 1024;
pub const MAX_ARGON2_T: u32 = 64;
pub const MAX_ARGON2_P: u32 = 64;

/// Default zstd level when compression is on.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Resume checkpoint file: length and magic (FORMAT.md §5).
pub const RESUME_CHECKPOINT_LEN: usize = 144;
pub const RESUME_CHECKPOINT_MAGIC: &[u8; 8] = b"fusefsck";
/// Default distance between resume checkpoints, in input bytes.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 64 << 20;

/// HKDF info strings (FORMAT.md §1).
pub mod info {
    pub const HEADER_MAC: &[u8] = b"fusefs/stream/header-mac";
    pub const KEY_CHECK: &[u8] = b"fusefs/stream/key-check";
    pub const CHECKPOINT_MAC: &[u8] = b"fusefs/stream/checkpoint-mac";
    pub const DIGEST_DOMAIN: &[u8] = b"fusefs/stream/v2/digest";
}
