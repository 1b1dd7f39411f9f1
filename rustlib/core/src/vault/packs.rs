//! Pack files of sealed content frames (being written).
