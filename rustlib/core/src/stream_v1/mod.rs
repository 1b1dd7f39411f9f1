//! Stream v1: the sequential STREAM construction on one thread (FORMAT.md §3).
//!
//! Chunk `i` is sealed with nonce `i` (11 bytes, big-endian) ‖ last-chunk flag
//! and AAD = header MAC. The counter fixes each chunk's position and the flag
//! marks the end, so truncation, reordering and appending are all detected.

use std::io::Read;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::constants::*;
use crate::crypto::aead::AeadKey;
use crate::error::{Error, Result};
use crate::headers::{StreamHeader, StreamKeys};
use crate::pipeline::Control;
use crate::stream_io::{read_full, Sink};
use crate::telemetry::{add_since, Telemetry};

/// How far a decoder looks around a failed chunk to name what happened to it.
const DIAGNOSE_WINDOW: u64 = 32;

pub fn chunk_nonce(counter: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    n
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// Seal `input` as v1 chunks onto `output` (the header is already written).
pub fn encrypt(
    input: &mut dyn Read,
    output: &mut dyn Sink,
    header: &StreamHeader,
    keys: &StreamKeys,
    control: &Control,
    tel: &Telemetry,
) -> Result<()> {
    let s = header.segment_size as usize;
    tel.workers.store(1, Relaxed);
    let mut read = |buf: &mut Vec<u8>| -> Result<usize> {
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let t0 = Instant::now();
        let n = read_full(input, &mut buf[..s]).map_err(io_err("cannot read the input"))?;
        add_since(&tel.io_ns, t0);
        tel.bytes_in.fetch_add(n as u64, Relaxed);
        control.add_done(n as u64);
        Ok(n)
    };
    let mut cur = vec![0u8; s + TAG_LEN];
    let mut next = vec![0u8; s + TAG_LEN];
    let mut n = read(&mut cur)?;
    let mut counter = 0u64;
    loop {
        // A full chunk is the last one only if nothing follows it.
        if n == s {
            let m = read(&mut next)?;
            if m > 0 {
                seal_and_write(
                    &keys.payload,
                    &keys.header_mac,
                    counter,
                    false,
                    &mut cur,
                    n,
                    output,
                    tel,
                )?;
                counter += 1;
                std::mem::swap(&mut cur, &mut next);
                n = m;
                continue;
            }
        }
        seal_and_write(
            &keys.payload,
            &keys.header_mac,
            counter,
            true,
            &mut cur,
            n,
            output,
            tel,
        )?;
        output.flush().map_err(io_err("cannot write the output"))?;
        return Ok(());
    }
}

#[allow(clippy::too_many_arguments)]
fn seal_and_write(
    key: &AeadKey,
    aad: &[u8; MAC_LEN],
    counter: u64,
    last: bool,
    buf: &mut [u8],
    n: usize,
    output: &mut dyn Sink,
    tel: &Telemetry,
) -> Result<()> {
    let t0 = Instant::now();
    let tag = key.seal(&chunk_nonce(counter, last), aad, &mut buf[..n]);
    buf[n..n + TAG_LEN].copy_from_slice(&tag);
    add_since(&tel.crypto_ns, t0);
    let t0 = Instant::now();
    output
        .write_all(&buf[..n + TAG_LEN])
        .map_err(io_err("cannot write the output"))?;
    add_since(&tel.io_ns, t0);
    tel.bytes_out.fetch_add((n + TAG_LEN) as u64, Relaxed);
    tel.plaintext_bytes.fetch_add(n as u64, Relaxed);
    tel.stored_bytes.fetch_add(n as u64, Relaxed);
    tel.segments.fetch_add(1, Relaxed);
    Ok(())
}

/// Open the v1 chunks of `input` (positioned after the header) onto `output`.
pub fn decrypt(
    input: &mut dyn Read,
    output: &mut dyn Sink,
    header: &StreamHeader,
    keys: &StreamKeys,
    control: &Control,
    tel: &Telemetry,
) -> Result<()> {
    let full = header.segment_size as usize + TAG_LEN;
    tel.workers.store(1, Relaxed);
    let mut read = |buf: &mut [u8]| -> Result<usize> {
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let t0 = Instant::now();
        let n = read_full(input, buf).map_err(io_err("cannot read the input"))?;
        add_since(&tel.io_ns, t0);
        tel.bytes_in.fetch_add(n as u64, Relaxed);
        control.add_done(n as u64);
        Ok(n)
    };
    let mut cur = vec![0u8; full];
    let mut next = vec![0u8; full];
    // A pristine copy of the chunk being opened, to diagnose a failure.
    let mut copy = vec![0u8; full];
    let mut n = read(&mut cur)?;
    let mut counter = 0u64;
    loop {
        if n < TAG_LEN {
            return Err(Error::Truncated(format!(" (chunk {counter} is cut short)")));
        }
        let (last, m) = if n < full {
            (true, 0)
        } else {
            let m = read(&mut next)?;
            (m == 0, m)
        };
        copy[..n].copy_from_slice(&cur[..n]);
        let t0 = Instant::now();
        let opened =
            keys.payload
                .open(&chunk_nonce(counter, last), &keys.header_mac, &mut cur[..n]);
        add_since(&tel.crypto_ns, t0);
        let plain = match opened {
            Ok(p) => p,
            Err(_) => {
                return Err(diagnose(
                    &keys.payload,
                    &keys.header_mac,
                    counter,
                    last,
                    &mut copy[..n],
                ))
            }
        };
        if last && plain == 0 && counter > 0 {
            return Err(Error::InvalidFrame {
                index: counter,
                reason: "empty final chunk".into(),
            });
        }
        let t0 = Instant::now();
        output
            .write_all(&cur[..plain])
            .map_err(io_err("cannot write the output"))?;
        add_since(&tel.io_ns, t0);
        tel.bytes_out.fetch_add(plain as u64, Relaxed);
        tel.plaintext_bytes.fetch_add(plain as u64, Relaxed);
        tel.stored_bytes.fetch_add(plain as u64, Relaxed);
        tel.segments.fetch_add(1, Relaxed);
        if last {
            output.flush().map_err(io_err("cannot write the output"))?;
            return Ok(());
        }
        counter += 1;
        std::mem::swap(&mut cur, &mut next);
        n = m;
    }
}

/// Name what happened to chunk `counter`, which failed to open as `last`.
fn diagnose(
    key: &AeadKey,
    aad: &[u8; MAC_LEN],
    counter: u64,
    last: bool,
    chunk: &mut [u8],
) -> Error {
    let try_open = |c: u64, l: bool, chunk: &[u8]| {
        let mut b = chunk.to_vec();
        key.open(&chunk_nonce(c, l), aad, &mut b).is_ok()
    };
    if try_open(counter, !last, chunk) {
        return if last {
            Error::Truncated(format!(
                " (input ends after chunk {counter}, which is not the last)"
            ))
        } else {
            Error::TrailingData
        };
    }
    let lo = counter.saturating_sub(DIAGNOSE_WINDOW);
    for c in lo..counter + DIAGNOSE_WINDOW {
        if c == counter {
            continue;
        }
        if try_open(c, false, chunk) || try_open(c, true, chunk) {
            return if c < counter {
                Error::DuplicateSegment { index: c }
            } else {
                Error::OutOfOrder {
                    expected: counter,
                    found: c,
                }
            };
        }
    }
    Error::SegmentAuthFailed { index: counter }
}
