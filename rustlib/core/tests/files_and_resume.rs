//! File-level runs: write aside and rename, cleanup on failure, and resuming
//! from every checkpoint gives the same result as an uninterrupted run.

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use crypto_core::constants::DEFAULT_CHECKPOINT_BYTES;
use crypto_core::crypto::digest::StreamDigest;
use crypto_core::headers::StreamHeader;
use crypto_core::prelude::*;
use crypto_core::stream_v2::{self, ResumeCheckpointing as Checkpointing, ResumePoint, Run};
use crypto_core::telemetry::Telemetry;

#[test]
fn file_round_trip_leaves_no_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let (src, enc, dec) = (
        dir.path().join("a"),
        dir.path().join("a.fusefs"),
        dir.path().join("a.out"),
    );
    let plain = data(300_000, 3);
    fs::write(&src, &plain).unwrap();
    let mut p = fast_params(Format::V2, Cipher::Aes256Gcm, None);
    p.checkpoint_bytes = 3 * S as u64;
    encrypt_file(
        &src,
        &enc,
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        false,
        &Control::new(),
    )
    .unwrap();
    decrypt_file(
        &enc,
        &dec,
        &raw_key(),
        ParallelismProfile::Auto,
        false,
        DEFAULT_CHECKPOINT_BYTES,
        &Control::new(),
    )
    .unwrap();
    assert_eq!(fs::read(&dec).unwrap(), plain);
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "a.fusefs", "a.out"]);
}

#[test]
fn failed_decrypt_leaves_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (src, enc, dec) = (
        dir.path().join("a"),
        dir.path().join("a.fusefs"),
        dir.path().join("a.out"),
    );
    fs::write(&src, data(200_000, 3)).unwrap();
    let p = fast_params(Format::V2, Cipher::Aes256Gcm, None);
    encrypt_file(
        &src,
        &enc,
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        false,
        &Control::new(),
    )
    .unwrap();
    let mut bytes = fs::read(&enc).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1; // the trailer: detected only after every segment was written aside
    fs::write(&enc, &bytes).unwrap();
    let r = decrypt_file(
        &enc,
        &dec,
        &raw_key(),
        ParallelismProfile::Auto,
        false,
        DEFAULT_CHECKPOINT_BYTES,
        &Control::new(),
    );
    assert!(matches!(r, Err(Error::SegmentAuthFailed { .. })), "{r:?}");
    assert!(!dec.exists());
    assert!(!SideFiles::of(&dec).part.exists());
    assert!(!SideFiles::of(&dec).checkpoint.exists());
}

#[test]
fn missing_input_and_unwritable_output_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = fast_params(Format::V2, Cipher::Aes256Gcm, None);
    let r = encrypt_file(
        &dir.path().join("nope"),
        &dir.path().join("x"),
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        false,
        &Control::new(),
    );
    assert!(matches!(&r, Err(Error::Io { .. })), "{r:?}");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("No such file or directory"));
    fs::write(dir.path().join("in"), b"abc").unwrap();
    let r = encrypt_file(
        &dir.path().join("in"),
        &dir.path().join("no/such/dir/out"),
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        false,
        &Control::new(),
    );
    assert!(matches!(r, Err(Error::Io { .. })));
}

/// Run a v2 encrypt, recording every checkpoint with the output as it was then.
fn encrypt_recording(
    plain: &[u8],
    header: &StreamHeader,
    keys: &crypto_core::headers::StreamKeys,
) -> (Vec<u8>, Vec<(ResumePoint, usize)>) {
    let control = Control::new();
    let tel = Telemetry::default();
    let run = Run {
        workers: 3,
        control: &control,
        telemetry: &tel,
        positional: None,
        source: None,
    };
    let mut out = header.encode().to_vec();
    let mut points = Vec::new();
    let out_len = std::cell::Cell::new(0usize);
    let mut record = |p: &ResumePoint| {
        points.push((*p, out_len.get()));
        Ok(())
    };
    struct Tracking<'a>(&'a mut Vec<u8>, &'a std::cell::Cell<usize>);
    impl std::io::Write for Tracking<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.extend_from_slice(b);
            self.1.set(self.0.len());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // SAFETY of the test: Tracking is only used on this thread (the consumer).
    unsafe impl Send for Tracking<'_> {}
    impl Sink for Tracking<'_> {}
    let mut sink = Tracking(&mut out, &out_len);
    stream_v2::encrypt(
        &mut &plain[..],
        &mut sink,
        header,
        keys,
        Some(1),
        &run,
        ResumePoint::start(header, true),
        Some(Checkpointing {
            every_segments: 2,
            record: &mut record,
        }),
    )
    .unwrap();
    (out, points)
}

#[test]
fn encrypt_resumes_from_every_checkpoint() {
    let plain = data(23 * S as usize + 77, 5);
    let params = fast_params(Format::V2, Cipher::Aes256Gcm, Some(1));
    let (header, keys) = StreamHeader::create(&params, &raw_key()).unwrap();
    let (full, points) = encrypt_recording(&plain, &header, &keys);
    assert_eq!(points.len(), 11);
    for (point, len_then) in points {
        assert_eq!(point.output_offset as usize, len_then);
        // What an interrupted run left: everything up to the checkpoint.
        let mut resumed = full[..point.output_offset as usize].to_vec();
        let control = Control::new();
        let tel = Telemetry::default();
        let run = Run {
            workers: 2,
            control: &control,
            telemetry: &tel,
            positional: None,
            source: None,
        };
        stream_v2::encrypt(
            &mut &plain[point.input_offset as usize..],
            &mut resumed,
            &header,
            &keys,
            Some(1),
            &run,
            point,
            None,
        )
        .unwrap();
        assert_eq!(decrypt(&resumed, &raw_key()).unwrap(), plain);
        assert_eq!(
            resumed[..point.output_offset as usize],
            full[..point.output_offset as usize]
        );
        assert_eq!(resumed.len(), full.len());
    }
}

#[test]
fn decrypt_resumes_from_every_checkpoint_byte_identically() {
    let plain = data(17 * S as usize + 5, 6);
    let params = fast_params(Format::V2, Cipher::ChaCha20Poly1305, None);
    let enc = encrypt(&plain, &raw_key(), &params);
    let header = StreamHeader::parse(&enc[..108]).unwrap();
    let keys = header.unlock(&raw_key()).unwrap();
    let mut points = Vec::new();
    let mut record = |p: &ResumePoint| {
        points.push(*p);
        Ok(())
    };
    let control = Control::new();
    let tel = Telemetry::default();
    let run = Run {
        workers: 2,
        control: &control,
        telemetry: &tel,
        positional: None,
        source: None,
    };
    let mut out = Vec::new();
    stream_v2::decrypt(
        &mut &enc[108..],
        &mut out,
        &header,
        &keys,
        &run,
        ResumePoint::start(&header, false),
        Some(Checkpointing {
            every_segments: 1,
            record: &mut record,
        }),
    )
    .unwrap();
    assert_eq!(out, plain);
    assert_eq!(points.len(), 17);
    for p in points {
        let mut resumed = plain[..p.output_offset as usize].to_vec();
        stream_v2::decrypt(
            &mut &enc[p.input_offset as usize..],
            &mut resumed,
            &header,
            &keys,
            &run,
            p,
            None,
        )
        .unwrap();
        assert_eq!(resumed, plain);
    }
    // A checkpoint with a wrong digest state cannot smuggle frames past the trailer.
    let bogus = ResumePoint {
        digest: StreamDigest::new(&[0; 32]),
        ..ResumePoint::start(&header, false)
    };
    let r = stream_v2::decrypt(
        &mut &enc[108..],
        &mut Vec::new(),
        &header,
        &keys,
        &run,
        bogus,
        None,
    );
    assert!(matches!(r, Err(Error::DigestMismatch(_))));
}

#[test]
fn cancelled_file_run_resumes_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (src, enc, dec) = (
        dir.path().join("a"),
        dir.path().join("a.fusefs"),
        dir.path().join("a.out"),
    );
    let plain = data(3_000_000, 8);
    fs::write(&src, &plain).unwrap();
    let mut p = fast_params(Format::V2, Cipher::Aes256Gcm, None);
    p.checkpoint_bytes = 16 * S as u64;
    let control = Arc::new(Control::new());
    let c = Arc::clone(&control);
    let watcher = std::thread::spawn(move || {
        while c.done() < 1_500_000 {
            std::thread::yield_now();
        }
        c.cancel();
    });
    let r = encrypt_file(
        &src,
        &enc,
        &raw_key(),
        &p,
        ParallelismProfile::Fixed(1),
        false,
        &control,
    );
    watcher.join().unwrap();
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    let side = SideFiles::of(&enc);
    assert!(side.part.exists() && side.checkpoint.exists());
    assert!(!enc.exists());
    // Resumed with the wrong input: refused, and the side files are kept
    // for the right one (they were removed, 177 MB of work once).
    let other = dir.path().join("other");
    fs::write(&other, vec![7u8; 3_000_000]).unwrap();
    let part = fs::read(&side.part).unwrap();
    let r = encrypt_file(
        &other,
        &enc,
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        true,
        &Control::new(),
    );
    assert!(matches!(r, Err(Error::Resume(_))), "{r:?}");
    assert_eq!(fs::read(&side.part).unwrap(), part);
    assert!(side.checkpoint.exists());
    encrypt_file(
        &src,
        &enc,
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        true,
        &Control::new(),
    )
    .unwrap();
    assert!(!side.part.exists() && !side.checkpoint.exists());
    decrypt_file(
        &enc,
        &dec,
        &raw_key(),
        ParallelismProfile::Auto,
        false,
        DEFAULT_CHECKPOINT_BYTES,
        &Control::new(),
    )
    .unwrap();
    assert_eq!(fs::read(&dec).unwrap(), plain);
    // Resuming with nothing to resume is a clear error.
    let r = encrypt_file(
        &src,
        &enc,
        &raw_key(),
        &p,
        ParallelismProfile::Auto,
        true,
        &Control::new(),
    );
    assert!(matches!(r, Err(Error::Resume(_))), "{r:?}");
}

#[test]
fn positional_writes_resume_from_every_checkpoint() {
    // The resumed run writes frames at their offsets in a real file, as the
    // file-level API does.
    let dir = tempfile::tempdir().unwrap();
    let plain = data(19 * S as usize + 300, 4);
    // The prefix was written compressed (frames of varying length); the
    // resumed part is not, so its frames go straight to their offsets.
    let params = fast_params(Format::V2, Cipher::Aes256Gcm, Some(1));
    let (header, keys) = StreamHeader::create(&params, &raw_key()).unwrap();
    let (full, points) = encrypt_recording(&plain, &header, &keys);
    for (i, (point, _)) in points.into_iter().enumerate() {
        let path = dir.path().join(format!("out{i}"));
        fs::write(&path, &full[..point.output_offset as usize]).unwrap();
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let handle = f.try_clone().unwrap();
        let control = Control::new();
        let tel = Telemetry::default();
        let run = Run {
            workers: 2,
            control: &control,
            telemetry: &tel,
            positional: Some(&handle),
            source: None,
        };
        let mut input = &plain[point.input_offset as usize..];
        stream_v2::encrypt(&mut input, &mut f, &header, &keys, None, &run, point, None).unwrap();
        let got = fs::read(&path).unwrap();
        eprintln!(
            "{i} {:?} len {} off {}",
            &got[..8],
            got.len(),
            point.output_offset
        );
        assert_eq!(decrypt(&got, &raw_key()).unwrap(), plain);
    }
}

#[test]
fn positional_decrypt_of_damaged_compressed_stream_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (enc, dec) = (dir.path().join("a.fusefs"), dir.path().join("a.out"));
    let mut bytes = encrypt(
        &data(40 * S as usize, 1),
        &raw_key(),
        &fast_params(Format::V2, Cipher::Aes256Gcm, Some(3)),
    );
    let (h, mut frames) = v2_frames(&bytes);
    let mid = frames[20].len() / 2;
    frames[20][mid] ^= 0x20;
    bytes = join(&h, &frames);
    fs::write(&enc, &bytes).unwrap();
    let r = decrypt_file(
        &enc,
        &dec,
        &raw_key(),
        ParallelismProfile::Fixed(2),
        false,
        DEFAULT_CHECKPOINT_BYTES,
        &Control::new(),
    );
    assert!(
        matches!(r, Err(Error::SegmentAuthFailed { index: 20 })),
        "{r:?}"
    );
    assert!(!dec.exists() && !SideFiles::of(&dec).part.exists());
}

#[test]
fn file_sizes_at_segment_boundaries_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = S as usize;
    for len in [0, 1, s - 1, s, s + 1, 3 * s, 3 * s + 1] {
        for comp in [None, Some(1)] {
            let (src, enc, dec) = (
                dir.path().join("a"),
                dir.path().join("a.f"),
                dir.path().join("a.o"),
            );
            let plain = data(len, len as u64);
            fs::write(&src, &plain).unwrap();
            let p = fast_params(Format::V2, Cipher::Aes256Gcm, comp);
            encrypt_file(
                &src,
                &enc,
                &raw_key(),
                &p,
                ParallelismProfile::Fixed(2),
                false,
                &Control::new(),
            )
            .unwrap();
            // Same bytes as the stream API gives, frame for frame (lengths).
            assert_eq!(
                fs::read(&enc).unwrap().len(),
                encrypt(&plain, &raw_key(), &p).len(),
                "{len} {comp:?}"
            );
            decrypt_file(
                &enc,
                &dec,
                &raw_key(),
                ParallelismProfile::Fixed(2),
                false,
                DEFAULT_CHECKPOINT_BYTES,
                &Control::new(),
            )
            .unwrap();
            assert_eq!(fs::read(&dec).unwrap(), plain, "{len} {comp:?}");
        }
    }
}

#[test]
fn an_input_that_shrinks_during_encryption_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in");
    fs::write(&path, data(5 * S as usize, 1)).unwrap();
    let file = fs::File::open(&path).unwrap();
    let params = fast_params(Format::V2, Cipher::Aes256Gcm, None);
    let (header, keys) = StreamHeader::create(&params, &raw_key()).unwrap();
    let control = Control::new();
    let tel = Telemetry::default();
    // The run believes the file is bigger than it now is.
    let run = Run {
        workers: 2,
        control: &control,
        telemetry: &tel,
        positional: None,
        source: Some((&file, 6 * S as u64)),
    };
    let r = stream_v2::encrypt(
        &mut std::io::empty(),
        &mut Vec::new(),
        &header,
        &keys,
        None,
        &run,
        ResumePoint::start(&header, true),
        None,
    );
    assert!(
        matches!(&r, Err(Error::Io { context, .. }) if context.contains("shrank")),
        "{r:?}"
    );
}
