//! The test oracle (as s3ql's tests end with fsck): a vault a test leaves
//! meant to be healthy must check clean, frames included. Tests of
//! deliberately damaged vaults do not call it.

use crypto_core::fsck::{self, FsckOptions};
use crypto_core::vault::engine::Vault;

/// Panic, naming `what` and every finding, unless fsck finds nothing.
pub fn assert_fsck_clean(v: &Vault, what: &str) {
    let report = fsck::check(v, FsckOptions::default(), &mut |_, _| {})
        .unwrap_or_else(|e| panic!("{what}: fsck failed: {e}"));
    let found: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
    assert!(found.is_empty(), "{what}: fsck found {found:#?}");
}

/// The end of a test that leaves `v` healthy: it checks clean open (inodes
/// the test still holds open or looked up are allowed to be nameless), then
/// closed and opened again by `reopen`, it checks clean once more.
pub fn close_and_check(v: Vault, reopen: impl FnOnce() -> Vault, what: &str) {
    assert_fsck_clean(&v, what);
    v.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
    assert_fsck_clean(&reopen(), &format!("{what}, reopened"));
}

/// The metadata half of the oracle, for tests that bootstrap a state from a
/// log without a vault around it (no packs to check against): every
/// invariant of the state alone must hold.
pub fn assert_state_clean(s: &crypto_core::metadata::MetadataState, what: &str) {
    let found: Vec<String> = fsck::state_checks::check_state(s)
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert!(
        found.is_empty(),
        "{what}: the state checks found {found:#?}"
    );
}
