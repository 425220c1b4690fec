//! The read-model port: one trait over the read access patterns, with an embedded backend and a ScyllaDB backend.
//!
//! Not built yet: this crate holds the workspace slot that its issue fills. It exports nothing.
