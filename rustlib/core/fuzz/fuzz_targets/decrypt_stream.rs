//! Any bytes after a valid header (both formats, compression allowed): the
//! decoder returns an error and never panics or hangs. Forging a stream that
//! authenticates is out of the fuzzer's reach, so success is a finding.
#![no_main]
use crypto_core::prelude::*;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn headers() -> &'static [Vec<u8>; 2] {
    static H: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    H.get_or_init(|| {
        let key = KeyMaterial::raw(&[9; 32]).unwrap();
        let mk = |format, compression| {
            let p = EncryptParams { format, segment_size: 4096, compression, ..EncryptParams::default() };
            let mut out = Vec::new();
            encrypt_stream(&mut &b""[..], &mut out, &key, &p, ParallelismProfile::Single, &Control::new()).unwrap();
            out[..108].to_vec()
        };
        [mk(Format::V1, None), mk(Format::V2, Some(1))]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let mut stream = headers()[(which & 1) as usize].clone();
    stream.extend_from_slice(body);
    let key = KeyMaterial::raw(&[9; 32]).unwrap();
    let r = decrypt_stream(&mut &stream[..], &mut Vec::new(), &key, ParallelismProfile::Fixed(2), &Control::new());
    assert!(r.is_err());
});
