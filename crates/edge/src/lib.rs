//! The WebSocket gateway: auth, live fan-out, gapless resume.
//!
//! Not built yet: this crate holds the workspace slot that its issue fills. It exports nothing.
