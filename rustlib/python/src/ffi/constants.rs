//! Format constants exposed to Python.

use crypto_core::constants as c;
use pyo3::prelude::*;

pub fn register(_py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("HEADER_LEN", c::HEADER_LEN)?;
    m.add("FRAME_HEADER_LEN", c::FRAME_HEADER_LEN)?;
    m.add("DEFAULT_SEGMENT_SIZE_V2", c::DEFAULT_SEGMENT_SIZE_V2)?;
    m.add("DEFAULT_CHUNK_SIZE_V1", c::DEFAULT_CHUNK_SIZE_V1)?;
    m.add("MIN_SEGMENT_SIZE", c::MIN_SEGMENT_SIZE)?;
    m.add("MAX_SEGMENT_SIZE", c::MAX_SEGMENT_SIZE)?;
    m.add("DEFAULT_CHECKPOINT_BYTES", c::DEFAULT_CHECKPOINT_BYTES)?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
