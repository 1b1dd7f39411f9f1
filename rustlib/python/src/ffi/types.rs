//! `TelemetrySnapshot` as a Python class.

use crypto_core::prelude as core;
use pyo3::prelude::*;
use pyo3::types::PyDict;

#[pyclass(module = "fusefs._native", name = "TelemetrySnapshot", frozen, get_all)]
#[derive(Clone)]
pub struct TelemetrySnapshot {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub plaintext_bytes: u64,
    pub segments: u64,
    pub compressed_segments: u64,
    pub compression_ratio: f64,
    pub crypto_seconds: f64,
    pub io_seconds: f64,
    pub compression_seconds: f64,
    pub elapsed_seconds: f64,
    pub throughput_mib_s: f64,
    pub workers: u32,
}

impl From<core::TelemetrySnapshot> for TelemetrySnapshot {
    fn from(t: core::TelemetrySnapshot) -> Self {
        TelemetrySnapshot {
            bytes_in: t.bytes_in,
            bytes_out: t.bytes_out,
            plaintext_bytes: t.plaintext_bytes,
            segments: t.segments,
            compressed_segments: t.compressed_segments,
            compression_ratio: t.compression_ratio,
            crypto_seconds: t.crypto_seconds,
            io_seconds: t.io_seconds,
            compression_seconds: t.compression_seconds,
            elapsed_seconds: t.elapsed_seconds,
            throughput_mib_s: t.throughput_mib_s,
            workers: t.workers,
        }
    }
}

#[pymethods]
impl TelemetrySnapshot {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("bytes_in", self.bytes_in)?;
        d.set_item("bytes_out", self.bytes_out)?;
        d.set_item("plaintext_bytes", self.plaintext_bytes)?;
        d.set_item("segments", self.segments)?;
        d.set_item("compressed_segments", self.compressed_segments)?;
        d.set_item("compression_ratio", self.compression_ratio)?;
        d.set_item("crypto_seconds", self.crypto_seconds)?;
        d.set_item("io_seconds", self.io_seconds)?;
        d.set_item("compression_seconds", self.compression_seconds)?;
        d.set_item("elapsed_seconds", self.elapsed_seconds)?;
        d.set_item("throughput_mib_s", self.throughput_mib_s)?;
        d.set_item("workers", self.workers)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "TelemetrySnapshot(plaintext_bytes={}, segments={}, ratio={:.3}, {:.1} MiB/s, workers={})",
            self.plaintext_bytes, self.segments, self.compression_ratio, self.throughput_mib_s, self.workers
        )
    }
}

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<TelemetrySnapshot>()
}
