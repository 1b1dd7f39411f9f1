//! The working memory of one Argon2id derivation: a mapping of its own,
//! on transparent huge pages where the kernel has them, left out of core
//! dumps, and unmapped when the derivation ends.
//!
//! Why not the `argon2` crate's own `Vec` (`hash_password_into`): a vault's
//! 64 MiB were zero-filled with `memset` first, one page fault and one page
//! clear per 4 KiB (16,384 of them), and then read at random by the
//! algorithm through as many TLB entries. Here the kernel's zero pages are
//! the initial contents (no `memset`), and `MADV_HUGEPAGE` asks for 2 MiB
//! pages: 32 faults, and far fewer TLB misses. Same bytes out; an unlock
//! with a vault's default costs (64 MiB, 3 passes) took 155 → 107 ms on the
//! 2-core VM (fastest of 6 processes, opening an empty vault; median 172
//! → 134), and every mount pays one (issue 15: mount time).
//!
//! The blocks are derived from the password (the first ones cheaply), so
//! they are as sensitive as the password: `MADV_DONTDUMP` keeps them out
//! of a core dump, and `munmap` hands the pages back to the kernel, which
//! clears them before anyone else gets them.

use std::ptr::NonNull;

use argon2::Block;

use super::secret_memory::{map_anonymous, page_size};

/// The size of a transparent huge page on x86-64 and arm64 (4 KiB base
/// pages): the mapping starts on such a boundary so every 2 MiB of it can be one.
const HUGE_PAGE: usize = 2 << 20;

/// Argon2 blocks in an anonymous private mapping (see the module's documentation).
pub struct KdfMemory {
    blocks: NonNull<Block>,
    count: usize,
    /// The mapping as made (aligned start, length), for `munmap`.
    len: usize,
}

impl KdfMemory {
    /// `count` zeroed blocks. Aborts like any allocation if the kernel has
    /// no memory to map.
    pub fn new(count: usize) -> KdfMemory {
        let len = (count.max(1) * Block::SIZE).next_multiple_of(page_size());
        // Mapped with a huge page's worth to spare, then trimmed to a start
        // on a huge-page boundary (recent kernels align large anonymous
        // mappings themselves; older ones do not).
        let spare = len + HUGE_PAGE;
        let p = map_anonymous(spare, HUGE_PAGE).as_ptr();
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let head = start - p as usize;
        let tail = spare - head - len;
        // SAFETY: both ranges lie inside the mapping just made and are not
        // used; unmapping part of a mapping is allowed at page granularity
        // (head and tail are multiples of the page size, as are p and len).
        unsafe {
            if head > 0 {
                libc::munmap(p, head);
            }
            if tail > 0 {
                libc::munmap((start + len) as *mut libc::c_void, tail);
            }
        }
        let at = start as *mut libc::c_void;
        // SAFETY: (at, len) is exactly the mapping kept above. Both are
        // advice: a kernel without transparent huge pages refuses the first
        // (small pages then, as before), which changes nothing else.
        unsafe {
            libc::madvise(at, len, libc::MADV_HUGEPAGE);
            libc::madvise(at, len, libc::MADV_DONTDUMP);
        }
        KdfMemory {
            blocks: NonNull::new(at.cast::<Block>()).expect("mmap returned a mapping, not NULL"),
            count,
            len,
        }
    }

    /// The blocks, for `Argon2::hash_password_into_with_memory`.
    pub fn blocks_mut(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `count` blocks (len >= count * SIZE),
        // is aligned for Block (a page boundary, Block asks for 64 bytes),
        // was zero-filled by the kernel (all-zero bits are a valid Block:
        // it is an array of u64), and &mut self makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.count) }
    }

    /// Where the blocks start (tests look the mapping up in /proc/self/smaps).
    pub fn address(&self) -> usize {
        self.blocks.as_ptr() as usize
    }
}

impl Drop for KdfMemory {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once, here; the slice handed
        // out by blocks_mut borrowed self and so is gone.
        unsafe {
            libc::munmap(self.blocks.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is owned by this value alone; access needs &mut self.
unsafe impl Send for KdfMemory {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VmFlags line of the mapping that starts at `address` in /proc/self/smaps.
    fn vm_flags(address: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{address:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        lines
            .find(|l| l.starts_with("VmFlags:"))
            .unwrap_or_else(|| panic!("no mapping starts at {address:#x}"))
            .to_string()
    }

    #[test]
    fn blocks_are_zero_aligned_to_a_huge_page_advised_and_left_out_of_dumps() {
        let mut memory = KdfMemory::new(64 * 1024);
        assert_eq!(memory.address() % HUGE_PAGE, 0);
        let blocks = memory.blocks_mut();
        assert_eq!(blocks.len(), 64 * 1024);
        assert!(blocks.iter().all(|b| b.as_ref().iter().all(|&w| w == 0)));
        blocks[65535].as_mut()[127] = 7; // the last word is ours to write
        let flags = vm_flags(memory.address());
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        assert!(has("dd"), "{flags}");
        // "hg": MADV_HUGEPAGE taken, wherever the kernel has huge pages.
        if std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
            assert!(has("hg"), "{flags}");
        }
    }
}
