//! The write side: commands validated against conversation state and appended as events.
//!
//! Not built yet: this crate holds the workspace slot that its issue fills. It exports nothing.
