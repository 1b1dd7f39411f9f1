//! Which Argon2id costs this process agrees to pay, and which it agrees to
//! create.
//!
//! The costs of a stream header (FORMAT.md §2) and of a vault config are
//! read before anything is authenticated: the MAC that covers them is keyed
//! by the very key they derive. A crafted file could otherwise make one
//! unlock take the format's maximum (4 GiB × 64 passes: many minutes and
//! all the RAM) before it says "wrong password". So reading obeys a
//! [`KdfLimit`], which a caller that trusts the file lifts explicitly
//! ([`allow_expensive`]: the CLI's `--allow-expensive-kdf`).
//!
//! Creating refuses costs below a floor ([`floor_problem`]) unless the
//! caller says it accepts weak ones (the CLI's `--insecure-kdf`).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::constants::{MAX_ARGON2_M_KIB, MAX_ARGON2_P, MAX_ARGON2_T};
use crate::error::{Error, Result};
use crate::types::Argon2Params;

/// Upper bounds on the costs of one key derivation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimit {
    pub max_m_kib: u32,
    pub max_t: u32,
    pub max_p: u32,
    /// Bound on memory × passes (KiB × passes): the work, roughly the time.
    pub max_work: u64,
}

/// What is paid without being asked. The vault default is 64 MiB × 3
/// passes and the stream default 32 MiB × 3; the limit leaves 16× headroom
/// over the vault default's memory (1 GiB) and its work (64 MiB × 3 × 16 =
/// 3 GiB·passes, about ten seconds where the default takes half a second),
/// so any file made with costs someone would choose opens, while a crafted
/// one costs at most that before being refused or failing. 16 passes and 16
/// lanes are far beyond any recommendation (RFC 9106 §4: t=1..3, p=4);
/// lanes split the work over threads rather than adding to it.
pub const READ_LIMIT: KdfLimit = KdfLimit {
    max_m_kib: 1 << 20,
    max_t: 16,
    max_p: 16,
    max_work: (64 * 1024) * 3 * 16,
};

/// The format's own bounds ([`Argon2Params::validate`]): no limit beyond them.
pub const FORMAT_LIMIT: KdfLimit = KdfLimit {
    max_m_kib: MAX_ARGON2_M_KIB,
    max_t: MAX_ARGON2_T,
    max_p: MAX_ARGON2_P,
    max_work: u64::MAX,
};

/// Set once by a caller that trusts the files it opens (`--allow-expensive-kdf`).
/// Process-wide, like a resource limit: one CLI command is one process, and
/// the derivations it causes run on whichever thread reads the header.
static EXPENSIVE_ALLOWED: AtomicBool = AtomicBool::new(false);

/// Lift (or restore) [`READ_LIMIT`] for every later key derivation of this process.
pub fn allow_expensive(allowed: bool) {
    EXPENSIVE_ALLOWED.store(allowed, Ordering::SeqCst);
}

/// The limit key derivations obey now.
pub fn current_limit() -> KdfLimit {
    if EXPENSIVE_ALLOWED.load(Ordering::SeqCst) {
        FORMAT_LIMIT
    } else {
        READ_LIMIT
    }
}

impl KdfLimit {
    /// `Err(KdfTooExpensive)` when `params` exceed this limit.
    pub fn check(&self, params: Argon2Params) -> Result<()> {
        let work = u64::from(params.m_kib) * u64::from(params.t);
        if params.m_kib > self.max_m_kib
            || params.t > self.max_t
            || params.p > self.max_p
            || work > self.max_work
        {
            return Err(Error::KdfTooExpensive {
                m_kib: params.m_kib,
                t: params.t,
                p: params.p,
                limit: self.describe(),
            });
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "m ≤ {} MiB, t ≤ {}, p ≤ {}, m×t ≤ {} MiB×passes",
            self.max_m_kib / 1024,
            self.max_t,
            self.max_p,
            self.max_work / 1024
        )
    }
}

/// The weakest costs accepted when creating, as OWASP's password storage
/// cheat sheet lists them for Argon2id (equivalent strengths, one lane):
/// (memory KiB, passes). RFC 9106's second recommendation (64 MiB, 3
/// passes, 4 lanes) would refuse this project's own one-lane defaults;
/// OWASP's floor is met by both (64 MiB × 3 for vaults, 32 MiB × 3 for
/// streams) and still refuses what is cheap to attack (8 MiB × 1).
pub const FLOOR: [(u32, u32); 5] = [
    (46 * 1024, 1),
    (19 * 1024, 2),
    (12 * 1024, 3),
    (9 * 1024, 4),
    (7 * 1024, 5),
];

/// Why `params` are too weak to create with, or `None` when they meet [`FLOOR`].
pub fn floor_problem(params: Argon2Params) -> Option<String> {
    let meets = FLOOR
        .iter()
        .any(|&(m_kib, t)| params.m_kib >= m_kib && params.t >= t);
    if meets {
        return None;
    }
    Some(format!(
        "Argon2id costs m={} KiB t={} are below the floor (OWASP: 19 MiB with 2 passes, \
         46 MiB with 1, 12 MiB with 3, 9 MiB with 4, 7 MiB with 5)",
        params.m_kib, params.t
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m_kib: u32, t: u32, p: u32) -> Argon2Params {
        Argon2Params { m_kib, t, p }
    }

    #[test]
    fn the_read_limit_takes_the_defaults_and_refuses_the_format_maximum() {
        assert!(READ_LIMIT.check(p(64 * 1024, 3, 1)).is_ok());
        assert!(READ_LIMIT.check(p(1 << 20, 3, 16)).is_ok());
        assert!(READ_LIMIT.check(p(64 * 1024, 16, 1)).is_ok());
        for too_much in [
            p(4 << 20, 64, 64),
            p((1 << 20) + 1, 1, 1),
            p(1024, 17, 1),
            p(1024, 1, 17),
            p(1 << 20, 4, 1), // each within, the work not: 20 s measured
        ] {
            let e = READ_LIMIT.check(too_much).unwrap_err();
            assert!(matches!(e, Error::KdfTooExpensive { .. }), "{too_much:?}");
        }
        assert!(FORMAT_LIMIT.check(p(4 << 20, 64, 64)).is_ok());
    }

    #[test]
    fn the_message_names_the_costs_and_the_limit() {
        let e = READ_LIMIT.check(p(4 << 20, 64, 1)).unwrap_err().to_string();
        assert!(e.contains("m=4194304 KiB t=64 p=1"), "{e}");
        assert!(e.contains("m ≤ 1024 MiB, t ≤ 16"), "{e}");
    }

    #[test]
    fn the_floor_is_owasps_table() {
        assert_eq!(floor_problem(p(64 * 1024, 3, 1)), None);
        assert_eq!(floor_problem(p(32 * 1024, 3, 1)), None);
        assert_eq!(floor_problem(p(19 * 1024, 2, 1)), None);
        assert_eq!(floor_problem(p(46 * 1024, 1, 1)), None);
        assert!(floor_problem(p(45 * 1024, 1, 1)).is_some());
        assert!(floor_problem(p(19 * 1024 - 1, 2, 1)).is_some());
        assert!(floor_problem(p(8, 1, 1)).unwrap().contains("m=8 KiB t=1"));
    }
}
