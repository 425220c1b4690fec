//! The archive manifest: which conversations left the hot store, and where they went.

use serde::{Deserialize, Serialize};
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::{ChainHash, Seq, Timestamp};

use crate::conversation::ConversationSummary;
use crate::report::Day;

/// One archived conversation. The archiver writes the events to the object store first, then
/// records the entry; recording it removes the conversation's events through `last_seq` from
/// the hot store in the same step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    /// The day of the archive file (the day the conversation was resolved).
    pub day: Day,
    /// The object-store path of the file that holds the events.
    pub object: String,
    pub first_seq: Seq,
    pub last_seq: Seq,
    /// The chain head at `last_seq`: what the archived events must verify to.
    pub last_hash: ChainHash,
    pub archived_at: Timestamp,
    /// The summary as archived, so that a late event (a reopening) can fold onto it.
    pub summary: ConversationSummary,
}

/// A conversation resolved on a day, as the resolved-by-day index lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolvedRef {
    pub tenant: TenantId,
    pub conversation: ConversationId,
}
