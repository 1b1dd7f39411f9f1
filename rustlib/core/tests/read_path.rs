//! Reads at any offset and length against a model: segments taken whole
//! (opened straight into the read's buffer), in part (through the cache),
//! holes, short segments, the end of the file, cached or not, raw or
//! compressed. (Both frame formats are covered by `packs::read_into`'s own
//! tests.)

mod common;

use common::memvault::{options, MemVault};
use crypto_core::metadata::AttrChange;
use crypto_core::vault::config::VaultOptions;
use crypto_core::vault::engine::{EngineOptions, Vault, ROOT};
use proptest::prelude::*;

const SEG: u64 = common::memvault::SEG as u64;

fn open(compression: Option<i32>, cache_bytes: usize) -> Vault {
    let m = MemVault::with(VaultOptions {
        compression,
        ..options()
    });
    m.open_on_with(
        &m.fs,
        EngineOptions {
            cache_bytes,
            ..Default::default()
        },
    )
}

#[derive(Clone, Debug)]
enum Op {
    /// Write `len` bytes (compressible or not) at an offset.
    Write(u32, u16, bool),
    Truncate(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..150_000, 1u16..50_000, any::<bool>()).prop_map(|(o, l, c)| Op::Write(o, l, c)),
        1 => (0u32..160_000).prop_map(Op::Truncate),
    ]
}

fn data(len: usize, seed: u32, compressible: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if compressible {
                (i / 100) as u8
            } else {
                x as u8
            }
        })
        .collect()
}

/// Reads that start and end on segment boundaries, inside segments, at
/// and past the end.
fn windows(size: u64) -> Vec<(u64, usize)> {
    let mut w = vec![
        (0, size as usize + 10),
        (0, SEG as usize),
        (SEG, 4 * SEG as usize),
    ];
    for k in 0..=size / SEG + 1 {
        let s = k * SEG;
        w.extend([
            (s, SEG as usize),
            (s + 1, SEG as usize),
            (s, 2 * SEG as usize - 3),
        ]);
        w.extend([(s.saturating_sub(5), 10), (s + 7, 3 * SEG as usize)]);
    }
    w.extend([(size.saturating_sub(1), 100), (size, 10), (size + 5, 10)]);
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_window_reads_as_the_model_says(
        ops in proptest::collection::vec(op(), 1..12),
        compress in any::<bool>(),
        cache_bytes in prop_oneof![Just(0usize), Just(32 << 20)],
    ) {
        let v = open(compress.then_some(1), cache_bytes);
        let ino = v.create(ROOT, b"f", 0o600, 0, 0).unwrap().ino;
        let mut model: Vec<u8> = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            match *o {
                Op::Write(off, len, compressible) => {
                    let d = data(len as usize, i as u32, compressible);
                    v.write(ino, off as u64, &d).unwrap();
                    let end = off as usize + d.len();
                    if model.len() < end { model.resize(end, 0); }
                    model[off as usize..end].copy_from_slice(&d);
                }
                Op::Truncate(size) => {
                    v.setattr(ino, AttrChange { size: Some(size as u64), ..Default::default() }).unwrap();
                    model.resize(size as usize, 0);
                }
            }
        }
        // Twice: the second time, segments read in part before are cached.
        for round in 0..2 {
            for (offset, len) in windows(model.len() as u64) {
                let from = (offset as usize).min(model.len());
                let to = (offset as usize).saturating_add(len).min(model.len());
                let got = v.read_bytes(ino, offset, len).unwrap();
                prop_assert!(got[..] == model[from..to], "round {} read of {} at {}", round, len, offset);
            }
        }
    }
}
