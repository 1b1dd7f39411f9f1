//! Reading and writing the bytes of a stream: full reads and syncable sinks.

use std::fs::File;
use std::io::{self, Read, Write};

/// Read until `buf` is full or the input ends; returns the bytes read.
pub fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An output that can be made durable (checkpoints sync it before recording
/// how far it got).
pub trait Sink: Write + Send {
    fn sync(&mut self) -> io::Result<()> {
        self.flush()
    }
}

impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Sink for Vec<u8> {}
impl Sink for io::Stdout {}
impl Sink for io::Sink {}
impl<W: Write + Send> Sink for io::BufWriter<W> {}
