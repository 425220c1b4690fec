//! The read models of switchboard behind one port, [`ReadModels`], with an embedded backend
//! ([`embedded::EmbeddedStore`], one directory, for `switchboard serve`) and a ScyllaDB backend
//! (`scylla::ScyllaStore`, for the distributed deployment; the default feature `scylla`).
//!
//! The port speaks the access patterns of the services, not bytes: timeline pages by seq in
//! both directions, conversation summaries and lists, agent state, the queue, report counters,
//! checkpoints, the customers' data keys, the archive manifest, and the writer's cache of its
//! own state. Its one write, [`Batch`],
//! is made of idempotent upserts and the checkpoints they reach, so that a projector that
//! crashes and replays never loses or doubles anything. DESIGN.md beside this crate explains
//! the layouts, the engine choice and the rules that make the writes idempotent.

pub mod agent;
pub mod archive;
pub mod batch;
pub mod checkpoint;
mod codec;
pub mod cold;
pub mod conversation;
pub mod embedded;
pub mod error;
pub mod key_record;
pub mod keywrap;
pub mod metrics;
mod port;
pub mod report;
#[cfg(feature = "scylla")]
pub mod scylla;
pub mod timeline;
pub mod writer_cache;

#[cfg(test)]
mod suite;

pub use batch::Batch;
pub use error::{ErrorDomain, StoreError};
pub use port::ReadModels;
