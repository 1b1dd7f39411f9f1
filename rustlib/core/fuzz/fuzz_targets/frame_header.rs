//! Any 41 bytes as a v2 frame header, for any segment size.
#![no_main]
use crypto_core::framing::StreamFrameHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 45 {
        return;
    }
    let s = u32::from_le_bytes(data[41..45].try_into().unwrap()).clamp(4096, 16 << 20);
    let b: [u8; 41] = data[..41].try_into().unwrap();
    if let Ok(h) = StreamFrameHeader::parse(&b, s, 0) {
        assert_eq!(h.encode(), b);
    }
});
