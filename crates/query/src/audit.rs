//! Audit replay and chain verification: every event of a conversation, or of the tenant in a
//! time range, in order, from the sources of history (`source.rs`), streamed in chunks.
//!
//! Order: a conversation's events by seq. A tenant range gives its conversations one after
//! another, by the time they were opened (then id), each by seq, keeping the events that
//! occurred in `[from, to)`: the per-conversation order is the one the chain proves.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_events::chain::{self, Problem, Verdict, Verifier};
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::partition::partition_for_key;
use switchboard_events::principal::Principal;
use switchboard_events::tenant::TENANT_STREAM;
use switchboard_events::{ConversationEvent, Seq, Timestamp, Topic};
use switchboard_store::conversation::{ConversationList, ConversationSummary, ListQuery};
use switchboard_store::report::Day;
use switchboard_store::timeline::MAX_PAGE;
use tokio::sync::mpsc;

use crate::access;
use crate::error::QueryError;
use crate::service::QueryService;
use crate::source::Frame;

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Conversation(String),
    /// The tenant's events that occurred in `[from, to)`.
    Tenant {
        from: Timestamp,
        to: Timestamp,
    },
    /// The tenant's settings chain: its creation and every change of its settings, who made
    /// it and when, in seq order (from the log; one chunk under the stream id `:tenant`).
    Settings,
}

/// Consecutive frames of one conversation.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub conversation: ConversationId,
    pub frames: Vec<Frame>,
}

/// A replay under way: chunks in order, or the error that stopped it.
pub type Replay = mpsc::Receiver<Result<Chunk, QueryError>>;

/// How far back a tenant replay looks for archived conversations: ten years of manifests.
const ARCHIVE_HORIZON_DAYS: i32 = 3_660;

/// Chunks in flight between the reader and the writer of a replay.
const REPLAY_BUFFER: usize = 8;

impl QueryService {
    /// Starts a replay. Refusals (token, role, unknown conversation) come back here, before
    /// anything is streamed; a failure half-way ends the stream with the error.
    pub async fn replay(
        self: &Arc<Self>,
        who: &Principal,
        scope: Scope,
        purpose: Purpose,
    ) -> Result<Replay, QueryError> {
        match purpose {
            Purpose::Audit => access::audit(who)?,
            Purpose::Export => access::export(who)?,
        }
        if scope == Scope::Settings {
            return self.replay_settings(&who.tenant).await;
        }
        let conversations = match scope {
            Scope::Settings => unreachable!("answered above"),
            Scope::Conversation(id) => {
                let id = ConversationId::new(id)
                    .map_err(|e| QueryError::invalid(format!("conversation id: {e}")))?;
                self.known(&who.tenant, &id).await?;
                vec![(id, None)]
            }
            Scope::Tenant { from, to } => {
                if to <= from {
                    return Err(QueryError::invalid("`to` must be after `from`"));
                }
                self.active_between(&who.tenant, from, to)
                    .await?
                    .into_iter()
                    .map(|id| (id, Some((from, to))))
                    .collect()
            }
        };
        let (tx, rx) = mpsc::channel(REPLAY_BUFFER);
        let service = Arc::clone(self);
        let tenant = who.tenant.clone();
        tokio::spawn(async move {
            for (conversation, range) in conversations {
                let sent = service
                    .stream_conversation(&tenant, conversation, range, &tx)
                    .await;
                if let Err(e) = sent {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// The tenant's settings events, read from the tenant's partition of the agent topic.
    async fn replay_settings(&self, tenant: &TenantId) -> Result<Replay, QueryError> {
        let log = self.log.clone().ok_or_else(|| {
            QueryError::Unavailable("this query service does not read the log".to_owned())
        })?;
        let topic = Topic::Agents.name();
        let partition = partition_for_key(tenant.as_str().as_bytes(), log.partitions(topic).await?);
        let range = log.offsets(topic, partition).await?;
        let mut frames = Vec::new();
        let mut next = range.start;
        while next < range.end {
            let records = log.read(topic, partition, next, 1024).await?;
            let Some(last) = records.last() else { break };
            next = last.offset + 1;
            for record in records {
                if record.key != tenant.as_str().as_bytes() {
                    continue;
                }
                let Ok(head) = chain::read_head(&record.value) else {
                    continue;
                };
                if head.stream_id == TENANT_STREAM && &head.tenant_id == tenant {
                    frames.push(Frame {
                        seq: head.seq,
                        occurred_at: None,
                        bytes: record.value,
                    });
                }
            }
        }
        let (tx, rx) = mpsc::channel(1);
        let chunk = Chunk {
            conversation: ConversationId::new(TENANT_STREAM).expect("a valid id"),
            frames,
        };
        let _ = tx.send(Ok(chunk)).await;
        Ok(rx)
    }

    /// The conversation exists for this tenant: in the store, the archive manifest, or only
    /// in a source further down (the log, while projection lags).
    async fn known(&self, tenant: &TenantId, id: &ConversationId) -> Result<(), QueryError> {
        match self.summary_of(&(tenant.clone(), id.clone())).await {
            Err(QueryError::NotFound { .. }) => {
                let any = self.sources.next(tenant, id, Seq(0), 1).await?;
                if any.is_empty() {
                    Err(QueryError::conversation_not_found())
                } else {
                    Ok(())
                }
            }
            other => other.map(|_| ()),
        }
    }

    async fn stream_conversation(
        &self,
        tenant: &TenantId,
        conversation: ConversationId,
        range: Option<(Timestamp, Timestamp)>,
        tx: &mpsc::Sender<Result<Chunk, QueryError>>,
    ) -> Result<(), QueryError> {
        let mut after = Seq(0);
        loop {
            let mut frames = self
                .sources
                .next(tenant, &conversation, after, MAX_PAGE as usize)
                .await?;
            let Some(last) = frames.last() else {
                return Ok(());
            };
            after = last.seq;
            if let Some((from, to)) = range {
                frames.retain(|f| {
                    let at = f.occurred_at.or_else(|| {
                        ConversationEvent::decode(&f.bytes)
                            .ok()
                            .map(|e| e.envelope.occurred_at)
                    });
                    at.is_none_or(|at| at >= from && at < to)
                });
            }
            let chunk = Chunk {
                conversation: conversation.clone(),
                frames,
            };
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(());
            }
        }
    }

    /// The tenant's conversations with activity in `[from, to)`, hot and archived, in the
    /// order a tenant replay gives them.
    async fn active_between(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ConversationId>, QueryError> {
        let mut found: BTreeMap<ConversationId, Timestamp> = BTreeMap::new();
        let mut keep = |s: &ConversationSummary| {
            if s.last_activity_at >= from && s.opened_at < to {
                found.insert(s.conversation.clone(), s.opened_at);
            }
        };
        let mut query = ListQuery::first(ConversationList::Recent, MAX_PAGE);
        'pages: loop {
            let page = self.store.conversations(tenant, &query).await?;
            for summary in &page.items {
                if summary.last_activity_at < from {
                    break 'pages;
                }
                keep(summary);
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        // Archived conversations left the lists; they were resolved on or after `from`, and
        // within the archive's horizon (an unbounded `from` must not walk back to year -290000).
        let today = Day::of(Timestamp::now());
        let mut day = Day::of(from).max(Day(today.0.saturating_sub(ARCHIVE_HORIZON_DAYS)));
        while day <= today {
            for entry in self.store.archive_manifest(tenant, day).await? {
                keep(&entry.summary);
            }
            day = day.next();
        }
        let mut ordered: Vec<_> = found.into_iter().collect();
        ordered.sort_by(|(a_id, a_at), (b_id, b_at)| a_at.cmp(b_at).then(a_id.cmp(b_id)));
        Ok(ordered.into_iter().map(|(id, _)| id).collect())
    }

    /// Verifies a conversation's chain from every source, and its head against the one the
    /// projector recorded in the summary: intact, or the first bad seq and the problem.
    pub async fn verify(&self, who: &Principal, conversation: &str) -> Result<Verdict, QueryError> {
        access::audit(who)?;
        let id = ConversationId::new(conversation)
            .map_err(|e| QueryError::invalid(format!("conversation id: {e}")))?;
        self.known(&who.tenant, &id).await?;
        let recorded = self
            .summary_of(&(who.tenant.clone(), id.clone()))
            .await
            .ok()
            .map(|(s, _)| (s.last_seq, s.last_hash));
        let mut verifier = Verifier::new();
        let mut head_mismatch = false;
        let mut after = Seq(0);
        loop {
            let frames = self
                .sources
                .next(&who.tenant, &id, after, MAX_PAGE as usize)
                .await?;
            let Some(last) = frames.last() else { break };
            after = last.seq;
            for frame in &frames {
                if let Some((seq, hash)) = recorded
                    && frame.seq == seq
                    && chain::read_head(&frame.bytes).map(|h| h.hash).ok() != Some(hash)
                {
                    head_mismatch = true;
                }
                verifier.push(&frame.bytes);
            }
        }
        let verdict = verifier.finish();
        let (Verdict::Intact { head, .. }, Some((seq, _))) = (&verdict, recorded) else {
            return Ok(verdict);
        };
        let reached = head.map_or(Seq(0), |(s, _)| s);
        Ok(if reached < seq {
            Verdict::Broken {
                seq: reached.next(),
                problem: Problem::Dropped,
            }
        } else if head_mismatch {
            Verdict::Broken {
                seq,
                problem: Problem::HeadMismatch,
            }
        } else {
            verdict
        })
    }
}

/// Why a replay runs: an audit (auditors) or an export (auditors and supervisors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Audit,
    Export,
}
