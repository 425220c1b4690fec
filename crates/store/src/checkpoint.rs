//! Per-partition checkpoints: how far a consumer has folded a log partition into the store.

use switchboard_events::Topic;

/// One partition of one topic of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogPartition {
    pub topic: Topic,
    pub partition: u32,
}

impl LogPartition {
    pub fn new(topic: Topic, partition: u32) -> Self {
        Self { topic, partition }
    }
}

/// Whose progress: a consumer (`projector`, a rebuild under another name) on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckpointKey {
    pub consumer: String,
    pub source: LogPartition,
}

/// The offset of the next record to fold: everything before it is in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    pub key: CheckpointKey,
    pub next_offset: u64,
}
