//! A bounded LRU cache of decrypted segments, so repeated and small reads,
//! and the read half of small unaligned writes (read-modify-write of a
//! partial segment), do not read and open the same frame again.
//!
//! Keys are (file id, segment index, generation). A generation comes from
//! the vault-wide counter that never goes back within an open vault (see
//! `MetadataState::generation_high`), and a frame is bound to its
//! generation, so a key always names the same plaintext: a rewritten segment
//! has a new generation and can never be served from its old entry. Entries
//! of segments a truncate or an unlink drops are removed at once (they could
//! not be served, but would hold memory until evicted).
//!
//! Bounded by plaintext bytes (`capacity`); a segment larger than the whole
//! capacity is not kept, and capacity 0 turns the cache off. Every
//! operation is O(log n) under one short lock; the bytes are shared
//! (`Arc`), never copied under the lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

/// (file id, segment index, generation).
pub type CacheKey = ([u8; 16], u64, u64);

struct Entry {
    plain: Arc<Vec<u8>>,
    /// Position in `Inner::lru`.
    tick: u64,
}

#[derive(Default)]
struct Inner {
    map: BTreeMap<CacheKey, Entry>,
    /// Recency: tick → key, oldest first.
    lru: BTreeMap<u64, CacheKey>,
    bytes: usize,
    tick: u64,
}

impl Inner {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(e) = self.map.remove(key) {
            self.lru.remove(&e.tick);
            self.bytes -= e.plain.len();
        }
    }
}

pub struct SegmentCache {
    capacity: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SegmentCache {
    pub fn new(capacity: usize) -> SegmentCache {
        SegmentCache {
            capacity,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Look up each key (counting hits and misses); a hit becomes the most
    /// recently used entry.
    pub fn get_many(&self, keys: impl Iterator<Item = CacheKey>) -> Vec<Option<Arc<Vec<u8>>>> {
        if !self.enabled() {
            return keys.map(|_| None).collect();
        }
        let mut inner = lock(&self.inner);
        let mut hits = 0;
        let out: Vec<_> = keys
            .map(|key| {
                inner.tick += 1;
                let tick = inner.tick;
                let e = inner.map.get_mut(&key)?;
                let old = std::mem::replace(&mut e.tick, tick);
                let plain = Arc::clone(&e.plain);
                inner.lru.remove(&old);
                inner.lru.insert(tick, key);
                hits += 1;
                Some(plain)
            })
            .collect();
        drop(inner);
        self.hits.fetch_add(hits, Relaxed);
        self.misses.fetch_add(out.len() as u64 - hits, Relaxed);
        out
    }

    pub fn get(&self, key: CacheKey) -> Option<Arc<Vec<u8>>> {
        self.get_many(std::iter::once(key)).pop().flatten()
    }

    /// Take the plaintext of `key` out of the cache (a hit): for a write,
    /// whose segment gets a new generation, so that the entry would never
    /// be served again. No copy unless a reader still shares it.
    pub fn take(&self, key: CacheKey) -> Option<Vec<u8>> {
        if !self.enabled() {
            return None;
        }
        let entry = {
            let mut inner = lock(&self.inner);
            inner.map.remove(&key).inspect(|e| {
                inner.lru.remove(&e.tick);
                inner.bytes -= e.plain.len();
            })
        };
        let Some(entry) = entry else {
            self.misses.fetch_add(1, Relaxed);
            return None;
        };
        self.hits.fetch_add(1, Relaxed);
        Some(Arc::try_unwrap(entry.plain).unwrap_or_else(|p| p.as_ref().clone()))
    }

    /// Keep these segments (most recently used), evicting the least
    /// recently used entries as needed.
    pub fn insert_many(&self, items: impl Iterator<Item = (CacheKey, Arc<Vec<u8>>)>) {
        if !self.enabled() {
            return;
        }
        let mut inner = lock(&self.inner);
        for (key, plain) in items {
            if plain.len() > self.capacity {
                continue;
            }
            inner.remove(&key);
            while inner.bytes + plain.len() > self.capacity {
                let Some((_, oldest)) = inner.lru.pop_first() else {
                    break;
                };
                let e = inner.map.remove(&oldest).expect("lru and map agree");
                inner.bytes -= e.plain.len();
            }
            inner.tick += 1;
            let tick = inner.tick;
            inner.bytes += plain.len();
            inner.lru.insert(tick, key);
            inner.map.insert(key, Entry { plain, tick });
        }
    }

    /// Drop every entry of `file_id` at segment index `from` or above.
    pub fn invalidate(&self, file_id: &[u8; 16], from: u64) {
        if !self.enabled() {
            return;
        }
        let mut inner = lock(&self.inner);
        let doomed: Vec<CacheKey> = inner
            .map
            .range((*file_id, from, 0)..=(*file_id, u64::MAX, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in &doomed {
            inner.remove(k);
        }
    }

    /// Plaintext bytes held.
    pub fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }

    /// Segments held.
    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(n: usize, b: u8) -> Arc<Vec<u8>> {
        Arc::new(vec![b; n])
    }

    #[test]
    fn lru_by_bytes_and_invalidation() {
        let c = SegmentCache::new(100);
        let f = [1u8; 16];
        c.insert_many([((f, 0, 1), seg(40, 0)), ((f, 1, 2), seg(40, 1))].into_iter());
        assert_eq!(c.bytes(), 80);
        // Touch index 0, so index 1 is the oldest and goes first.
        assert!(c.get((f, 0, 1)).is_some());
        c.insert_many(std::iter::once(((f, 2, 3), seg(40, 2))));
        assert_eq!(c.bytes(), 80);
        assert!(c.get((f, 1, 2)).is_none());
        assert_eq!(c.get((f, 0, 1)).unwrap()[0], 0);
        // Another generation of a segment is another key.
        assert!(c.get((f, 0, 9)).is_none());
        // Too big to keep at all.
        c.insert_many(std::iter::once(((f, 5, 4), seg(101, 5))));
        assert!(c.get((f, 5, 4)).is_none());
        assert!(c.bytes() <= 100);
        // Replacing an entry does not count it twice.
        c.insert_many(std::iter::once(((f, 0, 1), seg(40, 0))));
        assert_eq!(c.bytes(), 80);
        let g = [2u8; 16];
        c.insert_many(std::iter::once(((g, 0, 7), seg(10, 7))));
        c.invalidate(&f, 1);
        assert_eq!(c.len(), 2);
        assert!(c.get((f, 0, 1)).is_some() && c.get((f, 2, 3)).is_none());
        c.invalidate(&f, 0);
        assert_eq!((c.len(), c.bytes()), (1, 10));
        assert_eq!((c.hits(), c.misses()), (3, 4));
    }

    #[test]
    fn a_taken_entry_is_gone_and_not_copied_unless_shared() {
        let c = SegmentCache::new(100);
        let f = [1u8; 16];
        let shared = seg(30, 3);
        c.insert_many([((f, 0, 1), seg(40, 0)), ((f, 1, 2), Arc::clone(&shared))].into_iter());
        assert_eq!(c.take((f, 0, 1)), Some(vec![0; 40]));
        assert_eq!((c.len(), c.bytes()), (1, 30));
        assert!(c.take((f, 0, 1)).is_none());
        assert_eq!(c.take((f, 1, 2)).as_deref(), Some(&shared[..]));
        assert!(c.is_empty());
        assert_eq!((c.hits(), c.misses()), (2, 1));
    }

    #[test]
    fn capacity_zero_is_off() {
        let c = SegmentCache::new(0);
        c.insert_many(std::iter::once((([0; 16], 0, 1), seg(1, 1))));
        assert!(c.get(([0; 16], 0, 1)).is_none());
        assert!(c.is_empty());
        assert_eq!((c.hits(), c.misses()), (0, 0));
    }
}
