//! The WebSocket gateway: customers and agents connect here, with a JWT, and speak protocol
//! v1 (`docs/protocol.md`). The edge authenticates and authorizes every frame, sends commands
//! to the write side, delivers live events from the conversation topic to the connections
//! subscribed to them, resumes without gap or duplicate (`src/resume.md`), carries ephemeral
//! signals between instances, and serves the web UI.
//!
//! Entry point: [`Edge::new`]`(config, deps).start()` gives the routes and the [`Drain`]; the
//! binary serves them on its listener. `serve(listener, shutdown)` does both, for tests.
//!
//! Invariant: the edge never writes read models, and appends to the log only on the
//! ephemeral signals topic; events of record go through the command handler.

mod auth;
mod config;
mod conn;
mod frames;
mod hub;
mod lanes;
mod limits;
pub mod metrics;
mod presence;
pub mod protocol;
mod recency;
mod render;
mod resume;
mod server;
mod sessions;
mod signals;
mod subscribe;
mod ui;

pub use config::{EdgeConfig, Rate};
pub use server::{Drain, Edge, EdgeDeps, EdgeError};
pub use sessions::{SessionIssuer, SessionsConfig};
pub use signals::{LogBus, MemoryBus, SIGNALS_TOPIC, Signal, SignalBus};
