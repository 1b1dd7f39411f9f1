//! Memory for key material: pages of their own, left out of core dumps and,
//! where the memory-lock limit allows, kept out of swap.
//!
//! A [`SecretPage`] is one anonymous private mapping of one page:
//! * `madvise(MADV_DONTDUMP)`: a core dump (or a `gcore`) of the process
//!   does not contain it;
//! * `mlock`: never written to swap. Best effort: an ordinary user's
//!   `RLIMIT_MEMLOCK` (often 8 MiB, sometimes 64 KiB) may refuse it
//!   (`EPERM`/`ENOMEM`), which is no error; [`status`] counts the pages
//!   that are locked so the daemon's log and `fusefs stats` can say so;
//! * zeroed before it is unmapped.
//!
//! A page per key is wasteful in bytes but not in count: a process holds a
//! few keys at a time (the master key, the keys of what it is reading or
//! writing).
//!
//! Making a page costs five system calls (mmap, madvise, mlock, then
//! munlock and munmap when it goes) and a TLB shootdown across CPUs at the
//! munmap, and a key is made for every file a mount reads or writes first
//! (its subkey lives only until the AEAD key schedule is made). So a
//! dropped page is zeroed and kept in a small pool ([`POOL_PAGES`]) for the
//! next key instead of unmapped: it stays excluded from dumps and locked as
//! it was, and holds nothing but zeros until it is handed out again.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Pages mapped now (in use or pooled), of which locked in RAM, of which
/// excluded from core dumps.
static PAGES: AtomicUsize = AtomicUsize::new(0);
static LOCKED: AtomicUsize = AtomicUsize::new(0);
static DONTDUMP: AtomicUsize = AtomicUsize::new(0);

/// How the process's key material is held right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub pages: usize,
    pub locked: usize,
    pub dontdump: usize,
}

pub fn status() -> Status {
    Status {
        pages: PAGES.load(Ordering::SeqCst),
        locked: LOCKED.load(Ordering::SeqCst),
        dontdump: DONTDUMP.load(Ordering::SeqCst),
    }
}

/// Zeroed pages kept mapped for the next keys (see the module's documentation).
pub const POOL_PAGES: usize = 16;

/// A page kept for reuse: its address (a `NonNull` is not `Send`), length
/// and how it was protected.
struct Pooled {
    addr: usize,
    len: usize,
    locked: bool,
    dontdump: bool,
}

/// Zeroed pages waiting for a key, at most `capacity`.
struct PagePool {
    pages: Mutex<Vec<Pooled>>,
    capacity: usize,
}

impl PagePool {
    const fn new(capacity: usize) -> PagePool {
        PagePool {
            pages: Mutex::new(Vec::new()),
            capacity,
        }
    }

    fn pages(&self) -> std::sync::MutexGuard<'_, Vec<Pooled>> {
        // Plain numbers: a panic while it was locked left the list valid.
        self.pages.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pooled page (zeroed when it was kept), if there is one.
    fn take(&self) -> Option<SecretPage> {
        let p = self.pages().pop()?;
        Some(SecretPage {
            ptr: NonNull::new(p.addr as *mut u8).expect("a pooled page is mapped"),
            len: p.len,
            locked: p.locked,
            dontdump: p.dontdump,
        })
    }

    /// Zero `page` and keep its mapping for the next key, unless the pool is
    /// full (then the caller unmaps it). Kept, the page belongs to the pool:
    /// the caller must not unmap it or use it again.
    fn keep(&self, page: &mut SecretPage) -> bool {
        zeroize::Zeroize::zeroize(page.as_mut_slice());
        let mut pages = self.pages();
        if pages.len() >= self.capacity {
            return false;
        }
        pages.push(Pooled {
            addr: page.ptr.as_ptr() as usize,
            len: page.len,
            locked: page.locked,
            dontdump: page.dontdump,
        });
        true
    }
}

static POOL: PagePool = PagePool::new(POOL_PAGES);

pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE always succeeds on Linux.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// A new anonymous private read-write mapping of `len` bytes (a multiple
/// of the page size), zero-filled by the kernel: memory of our own, apart
/// from the allocator's (here, and `kdf_memory`'s). Aborts like any
/// allocation if the kernel has no memory to map (`align` is what the
/// report names).
pub(super) fn map_anonymous(len: usize, align: usize) -> NonNull<libc::c_void> {
    // SAFETY: a new anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        let layout = std::alloc::Layout::from_size_align(len, align).expect("layout");
        std::alloc::handle_alloc_error(layout);
    }
    NonNull::new(p).expect("mmap returned a mapping, not NULL")
}

/// One page of zeroed memory for secrets (see the module's documentation).
pub struct SecretPage {
    ptr: NonNull<u8>,
    len: usize,
    locked: bool,
    dontdump: bool,
}

// SAFETY: the page is owned by this value alone (like a Box<[u8]>); no
// other reference to the mapping exists.
unsafe impl Send for SecretPage {}
// SAFETY: shared access only reads (`as_slice`); writing needs `&mut self`.
unsafe impl Sync for SecretPage {}

impl SecretPage {
    /// A zeroed page: one from the pool, or a fresh one. Aborts like any
    /// allocation if the kernel has no memory to map.
    pub fn new() -> SecretPage {
        POOL.take().unwrap_or_else(SecretPage::map)
    }

    /// A freshly mapped zeroed page.
    fn map() -> SecretPage {
        let len = page_size();
        let ptr = map_anonymous(len, len).cast::<u8>();
        let p = ptr.as_ptr().cast::<libc::c_void>();
        // SAFETY: (p, len) is exactly the mapping made above.
        let dontdump = unsafe { libc::madvise(p, len, libc::MADV_DONTDUMP) } == 0;
        // SAFETY: as above; mlock only pins the pages, failure changes nothing.
        let locked = unsafe { libc::mlock(p, len) } == 0;
        PAGES.fetch_add(1, Ordering::SeqCst);
        LOCKED.fetch_add(usize::from(locked), Ordering::SeqCst);
        DONTDUMP.fetch_add(usize::from(dontdump), Ordering::SeqCst);
        SecretPage {
            ptr,
            len,
            locked,
            dontdump,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is a live readable mapping of len bytes owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, writable, and &mut self makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    pub fn is_dontdump(&self) -> bool {
        self.dontdump
    }

    /// The page's address (tests look it up in /proc/self/smaps).
    pub fn address(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl Default for SecretPage {
    fn default() -> Self {
        SecretPage::new()
    }
}

impl Drop for SecretPage {
    fn drop(&mut self) {
        if POOL.keep(self) {
            return; // zeroed, still mapped and counted: held for the next key
        }
        let p = self.ptr.as_ptr().cast::<libc::c_void>();
        // SAFETY: (p, len) is our own mapping, unmapped once, here; nothing
        // refers to it after drop.
        unsafe {
            if self.locked {
                libc::munlock(p, self.len);
            }
            libc::munmap(p, self.len);
        }
        PAGES.fetch_sub(1, Ordering::SeqCst);
        LOCKED.fetch_sub(usize::from(self.locked), Ordering::SeqCst);
        DONTDUMP.fetch_sub(usize::from(self.dontdump), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VmFlags line of the mapping that holds `address` in /proc/self/smaps.
    fn vm_flags(address: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&address);
                        continue;
                    }
                }
            }
            if inside && line.starts_with("VmFlags:") {
                return line.to_string();
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    #[test]
    fn a_page_is_zeroed_excluded_from_dumps_and_counted() {
        let mut page = SecretPage::new();
        assert!(page.as_slice().iter().all(|&b| b == 0));
        page.as_mut_slice()[..4].copy_from_slice(b"key!");
        assert_eq!(&page.as_slice()[..4], b"key!");
        assert!(page.is_dontdump());
        let flags = vm_flags(page.address());
        assert!(flags.split_whitespace().any(|f| f == "dd"), "{flags}");
        if page.is_locked() {
            assert!(flags.split_whitespace().any(|f| f == "lo"), "{flags}");
        }
        // Other tests make and drop pages concurrently: only lower bounds hold.
        assert!(status().pages >= 1 && status().dontdump >= 1);
    }

    #[test]
    fn a_kept_page_comes_back_zeroed_and_protected_and_the_pool_is_bounded() {
        // A pool of its own: other tests use the process's pool concurrently.
        let pool = PagePool::new(2);
        let mut pages: Vec<SecretPage> = (0..3).map(|_| SecretPage::map()).collect();
        for p in &mut pages {
            p.as_mut_slice()[..4].copy_from_slice(b"key!");
        }
        let addresses: Vec<usize> = pages.iter().map(SecretPage::address).collect();
        let mut refused = pages.pop().unwrap();
        for mut p in pages {
            assert!(pool.keep(&mut p));
            std::mem::forget(p); // the pool owns the mapping now
        }
        assert!(!pool.keep(&mut refused), "full at its capacity");
        assert!(
            refused.as_slice().iter().all(|&b| b == 0),
            "zeroed even when refused"
        );
        drop(refused);
        for _ in 0..2 {
            let page = pool.take().expect("a kept page");
            assert!(
                addresses[..2].contains(&page.address()),
                "the same mapping again"
            );
            assert!(
                page.as_slice().iter().all(|&b| b == 0),
                "nothing of the old key"
            );
            let flags = vm_flags(page.address());
            assert!(flags.split_whitespace().any(|f| f == "dd"), "{flags}");
            if page.is_locked() {
                assert!(flags.split_whitespace().any(|f| f == "lo"), "{flags}");
            }
        }
        assert!(pool.take().is_none());
    }
}
