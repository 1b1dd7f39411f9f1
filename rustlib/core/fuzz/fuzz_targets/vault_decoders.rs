//! Any bytes as a log entry, a snapshot's state encoding, a log file header,
//! log records, a pack header or a fusefs.conf: typed errors, never a panic; what decodes
//! encodes back to the same bytes.
#![no_main]
use crypto_core::metadata::UnifiedEntry;
use crypto_core::log::format::{parse_record, LogFileHeader};
use crypto_core::metadata::state_codec::{decode_state, encode_state};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = UnifiedEntry::decode(data) {
        assert_eq!(e.encode(), data);
    }
    if let Ok(s) = decode_state(data, 2) {
        // Maps are re-encoded in order, so only the round trip of the
        // re-encoding is exact.
        let again = encode_state(&s);
        assert_eq!(encode_state(&decode_state(&again, 2).unwrap()), again);
    }
    let _ = LogFileHeader::decode(data);
    let _ = crypto_core::packs::PackHeader::decode(data);
    let _ = crypto_core::vault::config::VaultConfig::parse(data);
    let mut at = 0;
    while let crypto_core::log::format::Parsed::Record { len, .. } = parse_record(data, at) {
        at += len;
    }
});
