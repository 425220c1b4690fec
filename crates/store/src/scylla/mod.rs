//! The ScyllaDB backend.
