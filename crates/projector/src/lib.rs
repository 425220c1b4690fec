//! The projector: folds the event log into the read models, idempotently, with the consumed
//! offsets checkpointed in the same store writes, so that a crash replays and never loses or
//! doubles anything, and a rebuild from the log writes the same rows.

pub mod archiver;
pub mod fold;
pub mod metrics;
pub mod partition;
pub mod rebuild;
pub mod runner;

#[cfg(test)]
mod tests;

pub use partition::PartitionProjector;
pub use rebuild::{RebuildReport, rebuild};
pub use runner::{DEAD_LETTERS, Progress, Projector, ProjectorConfig};
