//! The read side: history, conversation lists, reports, audit replay and verification, exports,
//! and the schema registry API, over HTTP/JSON (axum) and gRPC (tonic).
//!
//! [`QueryService`] holds the operations, each authorised for the caller's token
//! (`access.rs`) and scoped to its tenant; `http.rs` and `grpc.rs` are thin protocol layers
//! over it, and [`serve`] runs both. Hot history pages and summaries are cached (`cache.rs`);
//! replay reads the hot store, the archive and the log through one small trait (`source.rs`).
//! The service never writes events.

pub mod access;
mod archived;
pub mod audit;
pub mod cache;
mod day;
pub mod error;
pub mod export;
pub mod follow;
pub mod grpc;
pub mod http;
pub mod lists;
pub mod metrics;
pub mod openapi;
pub mod registry_api;
pub mod render;
pub mod server;
pub mod service;
pub mod source;

pub use audit::{Purpose, Scope};
pub use cache::{CacheConfig, Invalidate, ReadCache};
pub use error::QueryError;
pub use server::{ServeError, serve};
pub use service::QueryService;
pub use source::{EventSource, LogSource, Sources};

#[cfg(test)]
mod tests;
