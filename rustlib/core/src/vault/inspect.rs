//! Read-only views of an open vault for its checker ([`crate::fsck`]) and
//! for messages: a consistent copy of the state, a path of an inode, the
//! pack files on disk, and one frame authenticated as the data path would.

use super::engine::Vault;
use crate::error::Result;
use crate::metadata::{MetadataState, SegmentRef};

impl Vault {
    /// A copy of the metadata state as of now (O(1): persistent maps).
    pub fn state_copy(&self) -> MetadataState {
        self.lock_state().clone()
    }

    /// A path of inode `ino` from the root, for messages (see
    /// [`crate::metadata::paths`]: a walk of the directories, not for the
    /// data path).
    pub fn path_of(&self, ino: u64) -> Option<String> {
        crate::metadata::paths::path_of(&self.state_copy(), ino)
    }

    /// Something besides a name refers to `ino` (an open handle, a lookup
    /// the kernel holds): a nameless inode that is, is no orphan yet.
    pub fn in_use(&self, ino: u64) -> bool {
        super::engine::lock(&self.references).in_use(ino)
    }

    /// The pack files on disk: (number, length in bytes), ascending.
    pub fn pack_files(&self) -> Result<Vec<(u64, u64)>> {
        self.packs
            .pack_numbers()?
            .into_iter()
            .map(|n| Ok((n, self.packs.pack_len(n)?)))
            .collect()
    }

    /// True if the vault was opened to write nothing (`EngineOptions::read_only`).
    pub fn read_only(&self) -> bool {
        self.log.read_only()
    }

    /// The pack being appended to this session, if any.
    pub fn active_pack(&self) -> Option<u64> {
        self.packs.active_pack()
    }

    /// Read and authenticate segment `index` of the file whose id is
    /// `file_id` (its key, and the frame's binding to vault, file, index and
    /// generation, as every read does); the plaintext length.
    pub fn verify_segment(&self, file_id: &[u8; 16], index: u64, r: &SegmentRef) -> Result<usize> {
        let key = self.key_for(file_id);
        Ok(self.packs.read_segment(&key, file_id, index, r)?.len())
    }
}
