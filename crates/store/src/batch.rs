//! What a projector writes in one step: upserts and the checkpoints they reach.

use crate::agent::AgentRecord;
use crate::checkpoint::{Checkpoint, CheckpointKey};
use crate::conversation::ConversationSummary;
use crate::report::ReportPartial;
use crate::timeline::TimelineRow;

/// Idempotent upserts and checkpoints, applied together.
///
/// Every write is keyed so that applying it again changes nothing: timeline rows by
/// (tenant, conversation, seq); summaries and agent records by id, the highest `last_seq`
/// winning; report partials by (tenant, day, scope, log partition) as absolute values, the
/// highest `through_offset` winning; checkpoints by (consumer, log partition), never moving
/// back. Order within a batch does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub timeline: Vec<TimelineRow>,
    pub conversations: Vec<ConversationSummary>,
    pub agents: Vec<AgentRecord>,
    pub reports: Vec<ReportPartial>,
    pub checkpoints: Vec<Checkpoint>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.timeline.is_empty()
            && self.conversations.is_empty()
            && self.agents.is_empty()
            && self.reports.is_empty()
            && self.checkpoints.is_empty()
    }

    pub fn timeline(&mut self, row: TimelineRow) -> &mut Self {
        self.timeline.push(row);
        self
    }

    pub fn conversation(&mut self, summary: ConversationSummary) -> &mut Self {
        self.conversations.push(summary);
        self
    }

    pub fn agent(&mut self, record: AgentRecord) -> &mut Self {
        self.agents.push(record);
        self
    }

    pub fn report(&mut self, partial: ReportPartial) -> &mut Self {
        self.reports.push(partial);
        self
    }

    pub fn checkpoint(&mut self, key: CheckpointKey, next_offset: u64) -> &mut Self {
        self.checkpoints.push(Checkpoint { key, next_offset });
        self
    }

    /// Keeps, per key, only the write that wins (highest `last_seq`, `through_offset` or
    /// offset; for timeline rows, the last given): what applying the batch leaves behind.
    pub(crate) fn winners(&self) -> Winners<'_> {
        use std::collections::HashMap;
        let mut timeline = HashMap::new();
        for row in &self.timeline {
            timeline.insert((&row.tenant, &row.conversation, row.entry.seq), row);
        }
        let mut conversations = HashMap::<_, &ConversationSummary>::new();
        for s in &self.conversations {
            let slot = conversations
                .entry((&s.tenant, &s.conversation))
                .or_insert(s);
            if s.last_seq >= slot.last_seq {
                *slot = s;
            }
        }
        let mut agents = HashMap::<_, &AgentRecord>::new();
        for a in &self.agents {
            let slot = agents.entry((&a.tenant, &a.agent)).or_insert(a);
            if a.last_seq >= slot.last_seq {
                *slot = a;
            }
        }
        let mut reports = HashMap::<_, &ReportPartial>::new();
        for r in &self.reports {
            let slot = reports.entry((&r.key, r.source)).or_insert(r);
            if r.through_offset >= slot.through_offset {
                *slot = r;
            }
        }
        let mut checkpoints = HashMap::<_, &Checkpoint>::new();
        for c in &self.checkpoints {
            let slot = checkpoints.entry(&c.key).or_insert(c);
            if c.next_offset >= slot.next_offset {
                *slot = c;
            }
        }
        Winners {
            timeline: timeline.into_values().collect(),
            conversations: conversations.into_values().collect(),
            agents: agents.into_values().collect(),
            reports: reports.into_values().collect(),
            checkpoints: checkpoints.into_values().collect(),
        }
    }
}

/// The writes of a batch that survive it, one per key.
#[derive(Debug)]
pub(crate) struct Winners<'a> {
    pub timeline: Vec<&'a TimelineRow>,
    pub conversations: Vec<&'a ConversationSummary>,
    pub agents: Vec<&'a AgentRecord>,
    pub reports: Vec<&'a ReportPartial>,
    pub checkpoints: Vec<&'a Checkpoint>,
}
