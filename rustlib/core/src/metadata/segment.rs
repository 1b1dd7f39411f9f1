//! Where a file's segments live: [`SegmentRef`], the entry of a file's
//! segment map, and [`SegmentMap`], the map.

use std::ops::{Index, RangeBounds};

use imbl::shared_ptr::DefaultSharedPtr;
use imbl::OrdMap;

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

/// A file's segment map: segment index → where its current frame is, in
/// index order.
///
/// Most files of a vault are small, one segment or none, so such a map is
/// held inline in its inode; a map of two segments or more is a persistent
/// ordered map (`imbl`, cloned in O(1) like the rest of the state). A
/// persistent map of one entry takes a 16-slot node (~800 bytes) on the
/// heap: inline, a mount of 100,000 small files decodes its snapshot without
/// 100,000 such allocations (`examples/state_load.rs`). Invariant: `Many`
/// holds at least two entries, so equal maps have equal representations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentMap(Repr);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Repr {
    #[default]
    Empty,
    One(u64, SegmentRef),
    Many(OrdMap<u64, SegmentRef>),
}

impl SegmentMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// A map of one segment.
    pub fn unit(index: u64, r: SegmentRef) -> Self {
        Self(Repr::One(index, r))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Empty => 0,
            Repr::One(..) => 1,
            Repr::Many(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self.0, Repr::Empty)
    }

    pub fn get(&self, index: &u64) -> Option<&SegmentRef> {
        match &self.0 {
            Repr::One(k, r) if k == index => Some(r),
            Repr::Many(m) => m.get(index),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, index: &u64) -> Option<&mut SegmentRef> {
        match &mut self.0 {
            Repr::One(k, r) if k == index => Some(r),
            Repr::Many(m) => m.get_mut(index),
            _ => None,
        }
    }

    /// Set `index` to `r`; returns the reference it replaces.
    pub fn insert(&mut self, index: u64, r: SegmentRef) -> Option<SegmentRef> {
        match &mut self.0 {
            Repr::Empty => {
                self.0 = Repr::One(index, r);
                None
            }
            Repr::One(k, old) if *k == index => Some(std::mem::replace(old, r)),
            Repr::One(k, old) => {
                let mut m = OrdMap::unit(*k, *old);
                m.insert(index, r);
                self.0 = Repr::Many(m);
                None
            }
            Repr::Many(m) => m.insert(index, r),
        }
    }

    /// Remove `index`; returns its reference.
    pub fn remove(&mut self, index: &u64) -> Option<SegmentRef> {
        match &mut self.0 {
            Repr::One(k, r) if k == index => {
                let r = *r;
                self.0 = Repr::Empty;
                Some(r)
            }
            Repr::Many(m) => {
                let removed = m.remove(index);
                if m.len() == 1 {
                    let (k, r) = m.iter().next().map(|(k, r)| (*k, *r)).expect("one");
                    self.0 = Repr::One(k, r);
                }
                removed
            }
            _ => None,
        }
    }

    /// Remove the segments from index `from` on; returns them in index order.
    pub fn cut_from(&mut self, from: u64) -> Vec<SegmentRef> {
        if from == 0 {
            // All of them (a truncate to 0, a file deleted): no lookups.
            return std::mem::take(self).values().copied().collect();
        }
        let cut: Vec<u64> = self.range(from..).map(|(k, _)| *k).collect();
        cut.iter()
            .map(|k| self.remove(k).expect("listed"))
            .collect()
    }

    /// The segments in index order.
    pub fn iter(&self) -> Iter<'_> {
        self.range(..)
    }

    /// The segments whose index is in `range`, in index order.
    pub fn range<R: RangeBounds<u64>>(&self, range: R) -> Iter<'_> {
        Iter(match &self.0 {
            Repr::Empty => IterRepr::One(None),
            Repr::One(k, r) => IterRepr::One(range.contains(k).then_some((k, r))),
            Repr::Many(m) => {
                IterRepr::Many(m.range((range.start_bound().cloned(), range.end_bound().cloned())))
            }
        })
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u64> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &SegmentRef> {
        self.iter().map(|(_, r)| r)
    }
}

/// Iterator over (index, reference) pairs of a [`SegmentMap`].
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    One(Option<(&'a u64, &'a SegmentRef)>),
    Many(imbl::ordmap::RangedIter<'a, u64, SegmentRef, DefaultSharedPtr>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a u64, &'a SegmentRef);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::One(one) => one.take(),
            IterRepr::Many(it) => it.next(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::One(one) => one.take(),
            IterRepr::Many(it) => it.next_back(),
        }
    }
}

impl<'a> IntoIterator for &'a SegmentMap {
    type Item = (&'a u64, &'a SegmentRef);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl Index<&u64> for SegmentMap {
    type Output = SegmentRef;

    fn index(&self, index: &u64) -> &SegmentRef {
        self.get(index).expect("no such segment in the map")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(generation: u64) -> SegmentRef {
        SegmentRef {
            pack: 1,
            offset: generation * 100,
            stored_len: 40,
            plain_len: 10,
            generation,
        }
    }

    /// The map against a `BTreeMap` under inserts, removes and cuts: same
    /// contents, order and ranges, and equal maps compare equal however
    /// they were reached.
    #[test]
    fn behaves_as_an_ordered_map() {
        use std::collections::BTreeMap;
        let mut m = SegmentMap::new();
        let mut b = BTreeMap::new();
        let ops: [(u8, u64); 14] = [
            (0, 3),
            (0, 3),
            (0, 1),
            (1, 3),
            (1, 1),
            (0, 7),
            (0, 2),
            (0, 9),
            (2, 5),
            (0, 4),
            (1, 2),
            (0, 0),
            (2, 0),
            (0, 6),
        ];
        for (step, (op, k)) in ops.into_iter().enumerate() {
            let g = step as u64 + 1;
            match op {
                0 => assert_eq!(m.insert(k, r(g)), b.insert(k, r(g))),
                1 => assert_eq!(m.remove(&k), b.remove(&k)),
                _ => {
                    let tail = b.split_off(&k);
                    assert_eq!(m.cut_from(k), tail.into_values().collect::<Vec<_>>());
                }
            }
            let got: Vec<(u64, SegmentRef)> = m.iter().map(|(k, r)| (*k, *r)).collect();
            let want: Vec<(u64, SegmentRef)> = b.iter().map(|(k, r)| (*k, *r)).collect();
            assert_eq!(got, want);
            assert_eq!(m.len(), b.len());
            assert_eq!(m.is_empty(), b.is_empty());
            let mut rebuilt = SegmentMap::new();
            for (k, r) in &want {
                rebuilt.insert(*k, *r);
            }
            assert_eq!(rebuilt, m);
            for lo in 0..10 {
                let got: Vec<u64> = m.range(lo..lo + 3).map(|(k, _)| *k).collect();
                let want: Vec<u64> = b.range(lo..lo + 3).map(|(k, _)| *k).collect();
                assert_eq!(got, want);
                assert_eq!(m.get(&lo), b.get(&lo));
            }
            let back: Vec<u64> = m.keys().rev().copied().collect();
            assert_eq!(back, b.keys().rev().copied().collect::<Vec<_>>());
        }
    }

    #[test]
    fn get_mut_changes_the_entry_in_either_form() {
        let mut m = SegmentMap::unit(4, r(1));
        m.get_mut(&4).unwrap().generation = 9;
        assert_eq!(m[&4].generation, 9);
        m.insert(5, r(2));
        m.get_mut(&5).unwrap().generation = 10;
        assert_eq!(m[&5].generation, 10);
        assert!(m.get_mut(&6).is_none());
    }
}
