//! Agent state: availability, capacity and skills from the agent events, load from the inbox.

use serde::{Deserialize, Serialize};
use switchboard_events::agent::AgentStatus;
use switchboard_events::id::{AgentId, Label, TenantId};
use switchboard_events::{Seq, Timestamp};

/// What the agent events say about an agent: the projector's fold of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub status: AgentStatus,
    pub max_conversations: u32,
    pub skills: Vec<Label>,
    pub updated_at: Timestamp,
    /// The last agent event folded in; the store keeps the record with the highest.
    pub last_seq: Seq,
}

/// An agent as the router sees it: the record and the conversations the agent holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub record: AgentRecord,
    /// Unresolved conversations assigned to the agent: the size of the agent's inbox.
    pub load: u32,
}

impl AgentState {
    pub fn has_capacity(&self) -> bool {
        self.load < self.record.max_conversations
    }
}
