//! The event contract of switchboard.

pub mod partition;
