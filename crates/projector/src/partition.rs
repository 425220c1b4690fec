//! One log partition folded into the store: the engine both the live projector and a rebuild
//! drive. It keeps what it has read of the store (summaries, report partials, agent records)
//! for the partition it owns, turns a run of records into one [`Batch`] with the partition's
//! checkpoint, and names every record it cannot project so it goes to the dead letters.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use switchboard_events::conversation::ConversationPayload;
use switchboard_events::id::{AgentId, ConversationId, MessageId, TenantId};
use switchboard_events::{AgentEvent, ConversationEvent, Topic};
use switchboard_log::Record;
use switchboard_store::agent::AgentRecord;
use switchboard_store::checkpoint::{CheckpointKey, LogPartition};
use switchboard_store::cold::{Archive, timeline_or_archive};
use switchboard_store::conversation::{ConversationStatus, ConversationSummary};
use switchboard_store::report::{ReportCounters, ReportKey, ReportPartial};
use switchboard_store::timeline::{Audience, TimelineCursor, TimelineQuery, TimelineRow};
use switchboard_store::{Batch, ReadModels, StoreError};

use tracing::Instrument;

use crate::fold;

/// A record that could not be projected, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub record: Record,
    pub reason: String,
}

/// What one run of records produced.
#[derive(Debug, Default)]
pub struct Projected {
    pub batch: Batch,
    pub rejected: Vec<Rejected>,
    /// The checkpoint the batch carries: the offset after the last record of the run.
    pub next_offset: Option<u64>,
    /// The spans of the traced records folded (none when nobody traces): they end when this
    /// is dropped, after the batch is in the store.
    pub spans: Vec<tracing::Span>,
}

type ConversationKey = (TenantId, ConversationId);

/// Projection state of one partition, as far as it has been read from the store.
#[derive(Debug)]
pub struct PartitionProjector {
    store: Arc<dyn ReadModels>,
    key: CheckpointKey,
    /// Everything before this offset is in the store.
    next_offset: u64,
    summaries: HashMap<ConversationKey, Option<ConversationSummary>>,
    notes: HashMap<ConversationKey, HashSet<MessageId>>,
    partials: HashMap<ReportKey, (ReportCounters, Option<u64>)>,
    agents: HashMap<(TenantId, AgentId), Option<AgentRecord>>,
    /// The most entries the caches hold before they are emptied and read again.
    limit: usize,
    /// Conversations the batch under way resolves: forgotten once it is in the store.
    resolved: Vec<ConversationKey>,
    /// The summaries counted in the metrics gauge.
    counted: usize,
    /// Where archived conversations' earlier events are, for the private notes among them.
    archive: Option<Archive>,
}

/// How many entries the caches of one partition hold by default before they are emptied and
/// read again.
pub const CACHE_LIMIT: usize = 10_000;

impl PartitionProjector {
    /// Starts from the partition's checkpoint in the store.
    pub async fn open(
        store: Arc<dyn ReadModels>,
        consumer: &str,
        source: LogPartition,
    ) -> Result<Self, StoreError> {
        let key = CheckpointKey {
            consumer: consumer.to_owned(),
            source,
        };
        let next_offset = store.checkpoint(&key).await?.unwrap_or(0);
        Ok(Self {
            store,
            key,
            next_offset,
            summaries: HashMap::new(),
            notes: HashMap::new(),
            partials: HashMap::new(),
            agents: HashMap::new(),
            limit: CACHE_LIMIT,
            resolved: Vec::new(),
            counted: 0,
            archive: None,
        })
    }

    /// Keeps at most `limit` summaries, report partials and agent records in memory.
    pub fn with_cache_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The conversation summaries held in memory.
    pub fn cached_conversations(&self) -> usize {
        self.summaries.len()
    }

    fn count_cached(&mut self) {
        let now = self.summaries.len();
        crate::metrics::cached(now as i64 - self.counted as i64);
        self.counted = now;
    }

    /// Reads archived conversations' private notes from `archive` too, so that a late edit or
    /// redaction of an archived note stays hidden from customers.
    pub fn with_archive(mut self, archive: Option<Archive>) -> Self {
        self.archive = archive;
        self
    }

    /// The offset of the next record to project.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    pub fn source(&self) -> LogPartition {
        self.key.source
    }

    /// Folds a run of records of this partition, in offset order, into one batch. Records
    /// before the checkpoint were projected already and are skipped.
    pub async fn project(&mut self, records: &[Record]) -> Result<Projected, StoreError> {
        if self.summaries.len() + self.partials.len() + self.agents.len() > self.limit {
            self.forget();
        }
        let mut out = Projected::default();
        let mut touched_summaries = HashSet::new();
        let mut touched_partials = HashSet::new();
        let mut touched_agents = HashSet::new();
        let from = self.next_offset;
        for record in records.iter().filter(|r| r.offset >= from) {
            // Continues the trace of the command that wrote the record.
            let span = tracing::debug_span!(
                "projector.fold",
                topic = self.key.source.topic.name(),
                partition = record.partition,
                offset = record.offset,
            );
            switchboard_log::trace::set_parent(
                &span,
                record.header(switchboard_log::trace::TRACEPARENT),
            );
            let result = match self.key.source.topic {
                Topic::Conversations => {
                    self.conversation(
                        record,
                        &mut out.batch,
                        &mut touched_summaries,
                        &mut touched_partials,
                    )
                    .instrument(span.clone())
                    .await
                }
                Topic::Agents => {
                    self.agent(record, &mut touched_agents)
                        .instrument(span.clone())
                        .await
                }
            };
            if !span.is_disabled() {
                out.spans.push(span);
            }
            match result {
                Ok(()) => {}
                Err(Reject::Record(reason)) => out.rejected.push(Rejected {
                    record: record.clone(),
                    reason,
                }),
                Err(Reject::Store(e)) => return Err(e),
            }
            out.next_offset = Some(record.offset + 1);
        }
        let Some(next_offset) = out.next_offset else {
            return Ok(out);
        };
        for key in touched_summaries {
            if let Some(Some(summary)) = self.summaries.get(&key) {
                if summary.status == ConversationStatus::Resolved {
                    self.resolved.push(key.clone());
                }
                out.batch.conversation(summary.clone());
            }
        }
        self.count_cached();
        for key in touched_partials {
            if let Some((counters, Some(through))) = self.partials.get(&key) {
                out.batch.report(ReportPartial {
                    key: key.clone(),
                    source: self.key.source,
                    counters: *counters,
                    through_offset: *through,
                });
            }
        }
        for key in touched_agents {
            if let Some(Some(record)) = self.agents.get(&key) {
                out.batch.agent(record.clone());
            }
        }
        out.batch.checkpoint(self.key.clone(), next_offset);
        Ok(out)
    }

    /// Call once the batch of [`project`](Self::project) is in the store. The conversations
    /// it resolved are forgotten: the store has them, and a late event reads them again.
    pub fn committed(&mut self, next_offset: u64) {
        self.next_offset = self.next_offset.max(next_offset);
        for key in std::mem::take(&mut self.resolved) {
            let still_resolved = self.summaries.get(&key).is_some_and(|s| {
                s.as_ref().map(|s| s.status) == Some(ConversationStatus::Resolved)
            });
            if still_resolved {
                self.summaries.remove(&key);
                self.notes.remove(&key);
            }
        }
        self.count_cached();
    }

    /// Call when the batch could not be written: the caches may hold what the store does not.
    pub fn forget(&mut self) {
        self.summaries.clear();
        self.notes.clear();
        self.partials.clear();
        self.agents.clear();
        self.resolved.clear();
        self.count_cached();
    }

    async fn summary(
        &mut self,
        key: &ConversationKey,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        if let Some(cached) = self.summaries.get(key) {
            return Ok(cached.clone());
        }
        let (tenant, conversation) = key;
        let mut found = self.store.conversation(tenant, conversation).await?;
        if found.is_none() {
            // Archived: a late event folds onto the summary as it was archived.
            found = self
                .store
                .archived(tenant, conversation)
                .await?
                .map(|entry| entry.summary);
        }
        self.summaries.insert(key.clone(), found.clone());
        Ok(found)
    }

    /// The ids of the conversation's private notes, read from its timeline once.
    async fn notes(
        &mut self,
        key: &ConversationKey,
    ) -> Result<&mut HashSet<MessageId>, StoreError> {
        if !self.notes.contains_key(key) {
            let mut notes = HashSet::new();
            let mut cursor = Some(TimelineCursor::Oldest);
            while let Some(at) = cursor {
                let query = TimelineQuery::new(at, 500, Audience::Staff);
                let page = match &self.archive {
                    Some(archive) => {
                        timeline_or_archive(self.store.as_ref(), archive, &key.0, &key.1, query)
                            .await?
                    }
                    None => self.store.timeline(&key.0, &key.1, query).await?,
                };
                notes.extend(
                    page.entries
                        .iter()
                        .filter(|e| e.private_note)
                        .filter_map(|e| e.message_id.clone()),
                );
                cursor = page.next;
            }
            self.notes.insert(key.clone(), notes);
        }
        Ok(self.notes.get_mut(key).expect("inserted above"))
    }

    async fn conversation(
        &mut self,
        record: &Record,
        batch: &mut Batch,
        touched: &mut HashSet<ConversationKey>,
        touched_partials: &mut HashSet<ReportKey>,
    ) -> Result<(), Reject> {
        let event = ConversationEvent::decode(&record.value)
            .map_err(|e| Reject::Record(format!("undecodable: {e}")))?;
        let key = (
            event.envelope.tenant_id.clone(),
            event.envelope.conversation_id.clone(),
        );
        let before = self.summary(&key).await?;
        if let Some(summary) = &before {
            continues_chain(summary, &event)?;
        }
        let after = match &before {
            None => fold::opened(&event).map_err(|e| Reject::Record(e.to_string()))?,
            Some(summary) => {
                let mut next = summary.clone();
                fold::apply(&mut next, &event).map_err(|e| Reject::Record(e.to_string()))?;
                next
            }
        };
        // An event the summary has already folded is a replay after a crash: its timeline row is
        // written again (idempotent), its counters are not added again.
        let new = before
            .as_ref()
            .is_none_or(|s| event.envelope.seq > s.last_seq);
        let contributions = if new {
            fold::report_contributions(before.as_ref(), &event)
        } else {
            Vec::new()
        };
        for (report, delta) in contributions {
            let partial = match self.partials.get(&report) {
                Some(partial) => *partial,
                None => {
                    let stored = self.store.report_partial(&report, self.key.source).await?;
                    stored.map_or((ReportCounters::default(), None), |p| {
                        (p.counters, Some(p.through_offset))
                    })
                }
            };
            let (mut counters, through) = partial;
            if through.is_none_or(|t| record.offset > t) {
                counters.add(&delta);
            }
            self.partials.insert(
                report.clone(),
                (
                    counters,
                    Some(through.map_or(record.offset, |t| t.max(record.offset))),
                ),
            );
            touched_partials.insert(report);
        }
        let mut row = TimelineRow::from_event(&event, record.value.clone());
        match &event.payload {
            ConversationPayload::MessagePosted(m) if m.private_note => {
                self.notes(&key).await?.insert(m.message_id.clone());
            }
            ConversationPayload::MessageEdited(m) => {
                row.entry.private_note = self.notes(&key).await?.contains(&m.message_id);
            }
            ConversationPayload::MessageRedacted(m) => {
                row.entry.private_note = self.notes(&key).await?.contains(&m.message_id);
            }
            _ => {}
        }
        batch.timeline(row);
        self.summaries.insert(key.clone(), Some(after));
        touched.insert(key);
        Ok(())
    }

    async fn agent(
        &mut self,
        record: &Record,
        touched: &mut HashSet<(TenantId, AgentId)>,
    ) -> Result<(), Reject> {
        let event = AgentEvent::decode(&record.value)
            .map_err(|e| Reject::Record(format!("undecodable: {e}")))?;
        if event.envelope.agent_id.as_str() == switchboard_events::tenant::TENANT_STREAM {
            // A tenant's settings: no read model of agents (the tenant directory follows them).
            return Ok(());
        }
        let key = (
            event.envelope.tenant_id.clone(),
            event.envelope.agent_id.clone(),
        );
        let before = match self.agents.get(&key) {
            Some(cached) => cached.clone(),
            None => self
                .store
                .agent(&key.0, &key.1)
                .await?
                .map(|state| state.record),
        };
        self.agents
            .insert(key.clone(), Some(fold::apply_agent(before, &event)));
        touched.insert(key);
        Ok(())
    }
}

/// A conversation's events form one hash chain. An event that does not continue it — another
/// event at a seq already projected, a skipped seq, a `prev_hash` that is not the head — was
/// not written by the conversation's owner under its claim (a deposed writer on a broker
/// without fencing, or tampering): it is refused, never folded over the history.
fn continues_chain(summary: &ConversationSummary, event: &ConversationEvent) -> Result<(), Reject> {
    let seq = event.envelope.seq;
    let broken = |why: String| {
        Err(Reject::Record(format!(
            "broken_chain: conversation {}: {why}",
            event.envelope.conversation_id
        )))
    };
    if seq == summary.last_seq && event.envelope.hash != summary.last_hash {
        return broken(format!("a second event at seq {seq} with another hash"));
    }
    if seq > summary.last_seq.next() {
        return broken(format!(
            "seq {seq} follows seq {}: the seqs between are missing",
            summary.last_seq
        ));
    }
    if seq == summary.last_seq.next() && event.envelope.prev_hash != summary.last_hash {
        return broken(format!(
            "seq {seq} does not link to the head of the chain at seq {}",
            summary.last_seq
        ));
    }
    Ok(())
}

enum Reject {
    /// The record cannot be projected; it goes to the dead letters and projection goes on.
    Record(String),
    /// The store failed; the batch is retried.
    Store(StoreError),
}

impl From<StoreError> for Reject {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Drop for PartitionProjector {
    fn drop(&mut self) {
        crate::metrics::cached(-(self.counted as i64));
    }
}
