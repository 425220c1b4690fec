//! The read side: history, conversation lists, reports, audit replay and verification, and the
//! schema registry API.

pub mod registry_api;
