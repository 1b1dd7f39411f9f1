//! Is the vault an open found behind what this machine saw of it? Pure
//! functions of what the local state holds ([`Seen`]) and what the open
//! found ([`VaultEnd`]), so that every rule has a test of its own; the open
//! reads the vault, asks, and refuses with [`Error::RolledBack`] unless the
//! user accepts the rollback.
//!
//! The rules (FORMAT.md §11):
//!
//! * the vault is behind if its newest snapshot is older than the one seen
//!   here, or if neither its log nor its snapshot reaches the last record
//!   seen durable here;
//! * the record seen last, where the log still holds it, must be the very
//!   record seen (its tag is the chain head): otherwise this is another
//!   copy or another history of the vault;
//! * that record may be gone where a snapshot covers it (log compaction);
//! * a vault *ahead* of what was seen is fine: another machine, or a
//!   session whose last notes a crash lost, wrote more.
//!
//! [`refuse_headless`] is the part that needs no local state: metadata
//! deleted outright (a vault with packs but neither log nor snapshot, or a
//! log that starts after record 1 with no snapshot) would otherwise open
//! as an empty or partial vault on any machine.

use super::Seen;
use crate::constants::TAG_LEN;
use crate::error::{Error, Result};

/// What an open found at the end of the vault (after torn tails were cut).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VaultEnd {
    /// The last record of the log (0: none).
    pub last_seq: u64,
    /// The tag of record `seen.seq` where the log still holds that record
    /// (the caller looks it up); `None` where it does not.
    pub chain_at: Option<[u8; TAG_LEN]>,
    /// The newest readable snapshot (0: none).
    pub snapshot: u64,
    /// What that snapshot covers (0 without one).
    pub covers_seq: u64,
}

/// What [`judge`] says of a vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Never seen on this machine: nothing to compare with.
    New,
    /// At or ahead of what this machine saw.
    Ok,
    /// Behind what this machine saw, or another history: one line naming
    /// what is missing.
    RolledBack(String),
}

/// The note an open prints for a vault never seen on this machine.
pub const NEW_NOTE: &str =
    "this vault was never opened on this machine: rollback protection starts now";

impl Verdict {
    /// The outcome of an open: `Err(RolledBack)` for a vault behind unless
    /// `accept_rollback`; otherwise the note to tell the user, if any (a
    /// new vault, a rollback accepted).
    pub fn outcome(self, accept_rollback: bool) -> Result<Option<String>> {
        match self {
            Verdict::Ok => Ok(None),
            Verdict::New => Ok(Some(NEW_NOTE.to_string())),
            Verdict::RolledBack(what) if accept_rollback => Ok(Some(format!(
                "rollback accepted: {what}; this machine now takes the vault as it is"
            ))),
            Verdict::RolledBack(what) => Err(Error::RolledBack(what)),
        }
    }
}

/// Compare the vault an open found with what this machine saw of it
/// (`None`: nothing, or nothing usable). The rules are in the module doc.
pub fn judge(seen: Option<&Seen>, vault: &VaultEnd) -> Verdict {
    let Some(seen) = seen else {
        return Verdict::New;
    };
    // Snapshot numbers are not compared: a number can come back (a
    // snapshot deleted, damaged or replaced by a repair, the next takes the
    // highest left + 1) without any record lost; what the vault holds is
    // told by its records and their chain.
    let end = vault.last_seq.max(vault.covers_seq);
    if end < seen.seq {
        return Verdict::RolledBack(format!(
            "the vault ends at record {end} but record {} was durable on this machine \
             (its log was cut, or an older copy put back)",
            seen.seq
        ));
    }
    match vault.chain_at {
        Some(tag) if tag != seen.chain => Verdict::RolledBack(format!(
            "record {} differs from the one this machine saw (another copy of the vault, \
             or a different history)",
            seen.seq
        )),
        Some(_) => Verdict::Ok,
        // Compacted away: the snapshot stands for it.
        None if vault.covers_seq >= seen.seq => Verdict::Ok,
        None => Verdict::RolledBack(format!(
            "record {} was durable on this machine but is missing from the vault's log, \
             and no snapshot covers it",
            seen.seq
        )),
    }
}

/// Refuse a vault whose metadata was deleted outright, whatever this
/// machine saw: with no snapshot, a vault with packs but no log record, or
/// whose log starts after record 1 (`first_seq_of_log`: the first sequence
/// number the log holds; `None` for no log or an empty one), is missing
/// the records that made it. `None`: nothing to refuse.
pub fn refuse_headless(
    has_packs: bool,
    has_snapshot: bool,
    first_seq_of_log: Option<u64>,
) -> Option<String> {
    if has_snapshot {
        return None;
    }
    match first_seq_of_log {
        None if has_packs => Some(
            "the vault has file contents (packs) but neither a log nor a snapshot: its \
             metadata was deleted, and it would open empty"
                .to_string(),
        ),
        Some(first) if first > 1 => Some(format!(
            "the vault's log starts at record {first} and there is no snapshot: records 1 to {} \
             are missing",
            first - 1
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 16] = [0xa; 16];
    const B: [u8; 16] = [0xb; 16];

    fn seen(seq: u64, chain: [u8; 16], snapshot: u64, covers_seq: u64) -> Seen {
        Seen {
            seq,
            chain,
            snapshot,
            covers_seq,
            clean: false,
        }
    }

    fn end(last_seq: u64, chain_at: Option<[u8; 16]>, snapshot: u64, covers_seq: u64) -> VaultEnd {
        VaultEnd {
            last_seq,
            chain_at,
            snapshot,
            covers_seq,
        }
    }

    /// Each row: what was seen, what the vault shows, and `None` for Ok or
    /// a piece of the RolledBack message.
    #[test]
    fn judge_rules() {
        let rows: &[(&str, Seen, VaultEnd, Option<&str>)] = &[
            ("same end", seen(10, A, 1, 4), end(10, Some(A), 1, 4), None),
            (
                "ahead, log",
                seen(10, A, 1, 4),
                end(50, Some(A), 1, 4),
                None,
            ),
            (
                "ahead, new snapshot",
                seen(10, A, 1, 4),
                end(50, None, 2, 30),
                None,
            ),
            (
                "compacted exactly at seq",
                seen(10, A, 1, 4),
                end(10, None, 2, 10),
                None,
            ),
            (
                "nothing durable yet",
                seen(0, [0; 16], 0, 0),
                end(0, None, 0, 0),
                None,
            ),
            (
                "log cut",
                seen(1097, A, 0, 0),
                end(1041, None, 0, 0),
                Some("the vault ends at record 1041 but record 1097 was durable on this machine"),
            ),
            (
                "newest log file deleted",
                seen(10, A, 1, 4),
                end(6, None, 1, 4),
                Some("ends at record 6 but record 10"),
            ),
            (
                "last record differs",
                seen(1097, A, 0, 0),
                end(1097, Some(B), 0, 0),
                Some("record 1097 differs from the one this machine saw"),
            ),
            (
                "differs, vault ahead",
                seen(10, A, 0, 0),
                end(20, Some(B), 0, 0),
                Some("record 10 differs"),
            ),
            (
                // The records are all there: a snapshot number going back
                // (deleted, repaired) loses nothing.
                "snapshot number lower, records whole",
                seen(10, A, 12, 8),
                end(10, Some(A), 9, 5),
                None,
            ),
            (
                "log and snap deleted",
                seen(10, A, 2, 8),
                end(0, None, 0, 0),
                Some("the vault ends at record 0 but record 10"),
            ),
            (
                "record gone, not covered",
                seen(10, A, 1, 4),
                end(12, None, 1, 4),
                Some("record 10 was durable on this machine but is missing"),
            ),
        ];
        for (name, s, v, want) in rows {
            match (judge(Some(s), v), want) {
                (Verdict::Ok, None) => {}
                (Verdict::RolledBack(msg), Some(piece)) => {
                    assert!(msg.contains(piece), "{name}: {msg}");
                    assert!(!msg.contains('\n'), "{name}: one line");
                }
                (got, _) => panic!("{name}: {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn a_vault_never_seen_is_new() {
        assert_eq!(judge(None, &end(100, None, 3, 50)), Verdict::New);
        assert_eq!(judge(None, &VaultEnd::default()), Verdict::New);
    }

    #[test]
    fn the_outcome_refuses_unless_accepted() {
        let behind = || Verdict::RolledBack("the vault ends at record 1".into());
        let err = behind().outcome(false).unwrap_err();
        assert_eq!(err.kind(), "rolled_back");
        assert!(
            err.to_string().contains("the vault ends at record 1"),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("--accept-rollback opens it anyway"),
            "{err}"
        );
        let note = behind().outcome(true).unwrap().unwrap();
        assert!(
            note.starts_with("rollback accepted: the vault ends at record 1"),
            "{note}"
        );
        assert_eq!(Verdict::Ok.outcome(false).unwrap(), None);
        assert_eq!(
            Verdict::New.outcome(false).unwrap().as_deref(),
            Some(NEW_NOTE)
        );
    }

    #[test]
    fn headless_vaults_are_refused() {
        let packs_only = refuse_headless(true, false, None).unwrap();
        assert!(
            packs_only.contains("neither a log nor a snapshot"),
            "{packs_only}"
        );
        let late_log = refuse_headless(false, false, Some(42)).unwrap();
        assert!(late_log.contains("starts at record 42"), "{late_log}");
        assert!(
            late_log.contains("records 1 to 41 are missing"),
            "{late_log}"
        );
        assert_eq!(refuse_headless(true, false, Some(42)), Some(late_log));
    }

    #[test]
    fn whole_vaults_are_not_refused() {
        assert_eq!(
            refuse_headless(false, false, None),
            None,
            "new, empty vault"
        );
        assert_eq!(refuse_headless(true, false, Some(1)), None, "log from 1");
        assert_eq!(refuse_headless(true, true, None), None, "snapshot only");
        assert_eq!(refuse_headless(true, true, Some(900)), None, "compacted");
        assert_eq!(refuse_headless(false, true, Some(2)), None);
    }
}
