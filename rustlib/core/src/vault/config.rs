//! fusefs.conf (being written).
