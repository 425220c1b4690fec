//! The writer's cache of its own state: snapshots of the log partitions it owns and the
//! conversations it evicted from memory (crates/ingest `writer/state.md`).
//!
//! The bytes are the writer's, in its own versioned format; the store keeps them and the
//! version that orders them, and keeps the newest of two writes. Nothing here is a source of
//! truth: the writer checks every entry against the log before using it and ignores one the
//! log does not prove, so losing this cache costs a longer rebuild and nothing else.

use switchboard_events::Seq;
use switchboard_events::id::{ConversationId, TenantId};

use crate::checkpoint::LogPartition;

/// The state of a whole log partition, taken when the writer had folded every record before
/// `next_offset`. Of two snapshots of a partition, the store keeps the one further on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterSnapshot {
    pub source: LogPartition,
    pub next_offset: u64,
    pub body: Vec<u8>,
}

/// One conversation's state, put aside by a writer that evicted it from memory. Of two, the
/// store keeps the one with the higher `last_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedConversation {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub last_seq: Seq,
    pub body: Vec<u8>,
}
