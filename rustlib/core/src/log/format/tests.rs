use super::*;

#[test]
fn header_layout_and_what_each_fault_reports() {
    let h = LogFileHeader {
        format: LogFormat::V1,
        vault_id: [1; 16],
        number: 2,
        file_id: [3; 16],
        first_seq: 4,
        chain_in: CHAIN_START,
    };
    let b: [u8; 64] = h.encode().try_into().unwrap();
    assert_eq!(&b[0..16], b"fusefslg\x01\0\0\0\x40\0\0\0");
    assert_eq!(&b[16..32], &[1; 16]);
    assert_eq!(&b[32..40], &2u64.to_le_bytes());
    assert_eq!(&b[40..56], &[3; 16]);
    assert_eq!(&b[56..64], &4u64.to_le_bytes());
    assert_eq!(LogFileHeader::decode(&b).unwrap(), h);
    let msg = |changes: &[(usize, u8)], len: usize| {
        let mut c = b;
        for &(at, v) in changes {
            c[at] = v;
        }
        LogFileHeader::decode(&c[..len])
            .err()
            .map(|e| e.to_string())
    };
    let damaged = |m: &str| Some(format!("log damaged: log file header: {m}"));
    assert_eq!(msg(&[], 63), damaged("truncated"));
    assert_eq!(msg(&[(7, b'G')], 64), damaged("bad magic"));
    assert_eq!(msg(&[(8, 3)], 64), Some("unsupported version 3".into()));
    assert_eq!(msg(&[(11, 1)], 64), damaged("unknown layout"));
    assert_eq!(msg(&[(15, 1)], 64), damaged("unknown layout"));
    // The version is judged before the layout.
    assert_eq!(
        msg(&[(8, 3), (9, 1)], 64),
        Some("unsupported version 3".into())
    );
}

#[test]
fn version_2_header_ends_with_the_chain() {
    let h = LogFileHeader {
        format: LogFormat::V2,
        vault_id: [1; 16],
        number: 2,
        file_id: [3; 16],
        first_seq: 4,
        chain_in: [9; 16],
    };
    let b = h.encode();
    assert_eq!(b.len(), 80);
    assert_eq!(&b[0..16], b"fusefslg\x02\0\0\0\x50\0\0\0");
    assert_eq!(&b[64..80], &[9; 16]);
    assert_eq!(LogFileHeader::decode(&b).unwrap(), h);
    assert!(LogFileHeader::decode(&b[..79]).is_err());
}

#[test]
fn padding_buckets() {
    assert_eq!(padded_len(1), 128);
    assert_eq!(padded_len(124), 128);
    assert_eq!(padded_len(125), 256);
    assert_eq!(padded_len(2044), 2048);
    assert_eq!(padded_len(2045), 4608);
    // A 4 KiB write's patch and its entry fit in the 4608 bucket.
    assert_eq!(padded_len(4096 + 400), 4608);
    assert_eq!(padded_len(4604), 4608);
    assert_eq!(padded_len(4605), 8704);
    assert_eq!(padded_len(8700), 8704);
    assert_eq!(padded_len(8701), 12800);
    // Never past what a reader accepts.
    assert!(padded_len(MAX_RECORD) <= MAX_PADDED);
    assert!(padded_len(MAX_RECORD) >= 4 + MAX_RECORD);
}

/// A version 2 file's header (first record: sequence number 7) and a key.
fn v2_file() -> (LogFileHeader, AeadKey) {
    let header = LogFileHeader {
        format: LogFormat::V2,
        vault_id: [1; 16],
        number: 2,
        file_id: [3; 16],
        first_seq: 7,
        chain_in: [5; 16],
    };
    let key = AeadKey::new(Cipher::Aes256Gcm, &SecretKey::from_bytes([7u8; 32]));
    (header, key)
}

#[test]
fn version_2_records_chain_and_pad() {
    let (header, key) = v2_file();
    let mut out = Vec::new();
    let t0 = encode_record(&mut out, &key, &header, 0, 7, &header.chain_in, b"first");
    let at1 = out.len();
    assert_eq!(at1, 20 + 128 + 16);
    let t1 = encode_record(&mut out, &key, &header, 1, 8, &t0, b"second");
    let Parsed::Record {
        sealed_at,
        sealed_len,
        len,
        seq,
    } = parse_record(&out, at1, LogFormat::V2)
    else {
        panic!("not a record");
    };
    assert_eq!((seq, len), (8, out.len() - at1));
    let sealed = &out[sealed_at..sealed_at + sealed_len];
    assert_eq!(tag_of(sealed), t1);
    assert_eq!(
        open_record(&key, &header, 1, 8, &t0, sealed).unwrap(),
        b"second"
    );
    // Another chain (a record put after another history) does not open.
    assert!(open_record(&key, &header, 1, 8, &[0; 16], sealed).is_err());
    assert_eq!(record_starts(&out, at1, LogFormat::V2), Some(8));
    assert_eq!(record_starts(&out, at1 + 1, LogFormat::V2), None);
    // A flipped byte of the body fails the body's checksum only.
    let mut bad = out.clone();
    bad[at1 + 30] ^= 1;
    assert!(matches!(
        parse_record(&bad, at1, LogFormat::V2),
        Parsed::Broken
    ));
    assert_eq!(record_starts(&bad, at1, LogFormat::V2), Some(8));
}

/// A record of the earlier writer rule (past 4096: multiples of 4096),
/// up to its largest padded length, is read; one byte longer is not.
#[test]
fn records_padded_by_the_earlier_rule_are_read() {
    let (header, key) = v2_file();
    let chain = header.chain_in;
    for (entry_len, padded) in [(4200, 8192), (MAX_RECORD, MAX_PADDED)] {
        let payload = vec![9u8; entry_len];
        let mut out = Vec::new();
        encode_padded(&mut out, &key, &header, 0, 7, &chain, &payload, padded);
        let Parsed::Record {
            sealed_at,
            sealed_len,
            ..
        } = parse_record(&out, 0, LogFormat::V2)
        else {
            panic!("a record padded to {padded} is not read");
        };
        let sealed = &out[sealed_at..sealed_at + sealed_len];
        assert_eq!(
            open_record(&key, &header, 0, 7, &chain, sealed).unwrap(),
            payload
        );
    }
    let mut out = Vec::new();
    let payload = vec![9u8; 16];
    encode_padded(
        &mut out,
        &key,
        &header,
        0,
        7,
        &chain,
        &payload,
        MAX_PADDED + 1,
    );
    assert!(matches!(
        parse_record(&out, 0, LogFormat::V2),
        Parsed::Broken
    ));
}

#[test]
fn names() {
    assert_eq!(LOG_FILE.file_name(1), "0000000000000001.ulog");
    assert_eq!(LOG_FILE.parse_file_name("00000000000000ff.ulog"), Some(255));
    assert_eq!(LOG_FILE.parse_file_name("0000000000000000.ulog"), Some(0));
    for bad in [
        "00000000000000FF.ulog",
        "ff.ulog",
        "00000000000000ff.pack",
        "00000000000000ff.ulog.tmp",
    ] {
        assert_eq!(LOG_FILE.parse_file_name(bad), None, "{bad}");
    }
}
