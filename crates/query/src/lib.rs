//! History, lists, reports, audit replay and the schema registry API.
//!
//! Not built yet: this crate holds the workspace slot that its issue fills. It exports nothing.
