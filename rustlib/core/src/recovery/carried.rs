//! The frames the log's records carry (entries 17 and 18, FORMAT.md §9.2),
//! gathered while the log is replayed: per segment, the chain that the
//! newest carried frame is rebuilt from after a crash.
//!
//! A frame carried whole stands alone. A patched frame needs its base, the
//! frame its segment referred to just before the record: if an earlier
//! record carried exactly that frame, the patch joins that chain; otherwise
//! the base is durable in its pack (a writer carries every frame its records
//! refer to that is not) and heads a new chain as `Carried::Nothing`.

use std::collections::HashMap;

use crate::metadata::{Carried, MetadataState, SegmentRef, UnifiedEntry};

/// One segment's carried frames, oldest first: the first is carried whole,
/// a patch with no base, or the base its pack holds (`Carried::Nothing`);
/// each later one is a patch over the one before. The last is the newest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarriedChain {
    pub ino: u64,
    pub index: u64,
    pub links: Vec<(SegmentRef, Carried)>,
}

/// The chains of the records replayed so far, by (inode, segment index).
#[derive(Default)]
pub struct CarriedFrames {
    chains: HashMap<(u64, u64), Vec<(SegmentRef, Carried)>>,
}

impl CarriedFrames {
    /// Note what `entry` carries; `state` is the state before it applies.
    pub fn note(&mut self, state: &MetadataState, entry: &UnifiedEntry) {
        let UnifiedEntry::WriteSegmentsCarried {
            ino,
            segments,
            carried,
            ..
        } = entry
        else {
            return;
        };
        for ((index, r), c) in segments.iter().zip(carried) {
            let key = (*ino, *index);
            match c {
                // Durable in its pack: nothing to rebuild.
                Carried::Nothing => {
                    self.chains.remove(&key);
                }
                Carried::Frame(_) => {
                    self.chains.insert(key, vec![(*r, c.clone())]);
                }
                Carried::Patch(p) if p.base_generation == 0 => {
                    self.chains.insert(key, vec![(*r, c.clone())]);
                }
                Carried::Patch(p) => {
                    let before = state.inode(*ino).ok().and_then(|i| i.segments.get(index));
                    match before.filter(|b| b.generation == p.base_generation) {
                        Some(base) => {
                            let chain = self.chains.entry(key).or_default();
                            if chain.last().map(|(last, _)| last) != Some(base) {
                                *chain = vec![(*base, Carried::Nothing)];
                            }
                            chain.push((*r, c.clone()));
                        }
                        // Not the base the patch was made over: the frame
                        // cannot be rebuilt (a read of it reports damage).
                        None => {
                            self.chains.remove(&key);
                        }
                    }
                }
            }
        }
    }

    /// The chains whose newest frame its segment still refers to in `state`
    /// (the state after the whole log): a frame no segment refers to any
    /// more is dead, never written back (its place may have been punched).
    pub fn live(self, state: &MetadataState) -> Vec<CarriedChain> {
        let mut out: Vec<CarriedChain> = self
            .chains
            .into_iter()
            .filter(|((ino, index), links)| {
                let newest = links.last().map(|(r, _)| r);
                state
                    .inode(*ino)
                    .is_ok_and(|i| i.segments.get(index) == newest)
            })
            .map(|((ino, index), links)| CarriedChain { ino, index, links })
            .collect();
        out.sort_unstable_by_key(|c| (c.ino, c.index));
        out
    }
}
