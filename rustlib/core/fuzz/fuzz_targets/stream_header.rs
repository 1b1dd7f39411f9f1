//! Any bytes as a stream header: a typed error or a header, never a panic;
//! a parsed header encodes back to the same bytes.
#![no_main]
use crypto_core::headers::StreamHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = StreamHeader::parse(data) {
        assert_eq!(&h.encode()[..], &data[..108]);
    }
});
