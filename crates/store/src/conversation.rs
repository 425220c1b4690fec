//! Conversation summaries and the lists they appear in.
//!
//! The projector upserts one summary per conversation; the store derives every list entry
//! from it ([`ConversationSummary::lists`]), so the two backends agree on what appears where
//! and the projector never maintains an index by hand.

use serde::{Deserialize, Serialize};
use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::id::{AgentId, ConversationId, CustomerId, Label, TeamId, TenantId};
use switchboard_events::{ChainHash, Seq, Timestamp};

use crate::error::StoreError;
use crate::report::Day;
use crate::timeline::MAX_PAGE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConversationStatus {
    /// Opened, not yet queued or assigned.
    Open,
    /// Waiting for an agent.
    Queued,
    /// Held by an agent.
    Assigned,
    /// Put aside until a time.
    Snoozed,
    Resolved,
}

impl ConversationStatus {
    pub const ALL: [Self; 5] = [
        Self::Open,
        Self::Queued,
        Self::Assigned,
        Self::Snoozed,
        Self::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Queued => "queued",
            Self::Assigned => "assigned",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A conversation as lists and headers show it: the projector's fold of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub customer: CustomerId,
    pub channel: Channel,
    pub status: ConversationStatus,
    pub priority: Priority,
    pub vip: bool,
    pub team: Option<TeamId>,
    pub agent: Option<AgentId>,
    pub required_skills: Vec<Label>,
    pub tags: Vec<Label>,
    pub opened_at: Timestamp,
    pub last_activity_at: Timestamp,
    /// Set while queued: when the conversation joined the queue.
    pub queued_at: Option<Timestamp>,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub snoozed_until: Option<Timestamp>,
    /// The CSAT score, 1 to 5.
    pub rating: Option<i32>,
    pub messages: u64,
    pub customer_read_seq: Seq,
    pub agent_read_seq: Seq,
    /// The customer's data was erased.
    pub erased: bool,
    /// The last event folded in: a projector skips events at or below it, and the store keeps
    /// the summary with the highest `last_seq`, so an older upsert never overwrites a newer.
    pub last_seq: Seq,
    /// The chain head at `last_seq`, for verifying the timeline against it.
    pub last_hash: ChainHash,
}

/// The lists a conversation can be read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConversationList {
    /// Every conversation of the tenant, most recent activity first.
    Recent,
    /// The tenant's conversations in one status, most recent activity first.
    Status(ConversationStatus),
    /// An agent's unresolved conversations, most recent activity first. Its size is the
    /// agent's load.
    Inbox(AgentId),
    /// A customer's conversations, most recent activity first.
    Customer(CustomerId),
}

/// Where a list entry lives, derived from a summary: lists by activity, the queue (by the time
/// a conversation joined it) and the resolved-by-day index the archiver walks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placement {
    List(ConversationList, Timestamp),
    Queue(Timestamp),
    ResolvedOn(Day),
}

impl ConversationSummary {
    /// Every place the summary is listed in.
    pub fn lists(&self) -> Vec<Placement> {
        let at = self.last_activity_at;
        let mut placements = vec![
            Placement::List(ConversationList::Recent, at),
            Placement::List(ConversationList::Status(self.status), at),
            Placement::List(ConversationList::Customer(self.customer.clone()), at),
        ];
        if let (Some(agent), false) = (&self.agent, self.status == ConversationStatus::Resolved) {
            placements.push(Placement::List(ConversationList::Inbox(agent.clone()), at));
        }
        if let (ConversationStatus::Queued, Some(since)) = (self.status, self.queued_at) {
            placements.push(Placement::Queue(since));
        }
        if let (ConversationStatus::Resolved, Some(at)) = (self.status, self.resolved_at) {
            placements.push(Placement::ResolvedOn(Day::of(at)));
        }
        placements
    }

    /// The cursor that continues a list after this summary.
    pub fn cursor(&self) -> ListCursor {
        ListCursor {
            last_activity_at: self.last_activity_at,
            conversation: self.conversation.clone(),
        }
    }
}

/// A position in a list ordered by activity: the last entry of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListCursor {
    pub last_activity_at: Timestamp,
    pub conversation: ConversationId,
}

/// A list page request: entries after `after` (or from the top), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub list: ConversationList,
    pub after: Option<ListCursor>,
    pub limit: u32,
}

impl ListQuery {
    pub fn first(list: ConversationList, limit: u32) -> Self {
        Self {
            list,
            after: None,
            limit,
        }
    }

    pub(crate) fn validate(&self) -> Result<usize, StoreError> {
        match self.limit {
            0 => Err(StoreError::invalid("list limit must be at least 1")),
            n if n > MAX_PAGE => Err(StoreError::invalid(format!(
                "list limit {n} is above the maximum {MAX_PAGE}"
            ))),
            n => Ok(n as usize),
        }
    }
}

/// A page of a list and the cursor of the next page when there is more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub items: Vec<ConversationSummary>,
    pub next: Option<ListCursor>,
}

impl ListPage {
    /// Builds a page from at most `limit + 1` summaries in list order.
    pub(crate) fn from_scan(mut items: Vec<ConversationSummary>, limit: usize) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = items
            .last()
            .filter(|_| more)
            .map(ConversationSummary::cursor);
        Self { items, next }
    }
}

/// A conversation waiting in its tenant's queue. The router orders by its own policy
/// (VIP first, priority); the store gives them by the time they joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub conversation: ConversationId,
    pub queued_at: Timestamp,
    pub team: Option<TeamId>,
    pub priority: Priority,
    pub vip: bool,
    pub required_skills: Vec<Label>,
}

impl From<&ConversationSummary> for QueueEntry {
    fn from(summary: &ConversationSummary) -> Self {
        Self {
            conversation: summary.conversation.clone(),
            queued_at: summary.queued_at.unwrap_or(summary.last_activity_at),
            team: summary.team.clone(),
            priority: summary.priority,
            vip: summary.vip,
            required_skills: summary.required_skills.clone(),
        }
    }
}
