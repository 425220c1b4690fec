//! Where a conversation's events come from, for replay, verification and export.
//!
//! A conversation's history may be split: its oldest events archived (the cold archive holds
//! seqs `1..=last_seq` of its manifest entry), the rest in the hot store, and the newest only
//! in the log while projection lags. Every place is an [`EventSource`]; [`Sources`] asks them in
//! order of cost — hot store, archive, log — for the frames after the last seq delivered, and
//! takes the first that continues the history without a gap. When none does, the lowest next
//! seq any source has wins, so a dropped event reaches the verifier as the gap it is.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::partition::partition_for_key;
use switchboard_events::{Seq, Timestamp, Topic, chain};
use switchboard_log::EventLog;
use switchboard_store::ReadModels;
use switchboard_store::timeline::{Audience, MAX_PAGE, TimelineCursor, TimelineQuery};

use crate::error::QueryError;

/// An original frame, its seq, and when it occurred when the source knows without decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub seq: Seq,
    pub occurred_at: Option<Timestamp>,
    pub bytes: Vec<u8>,
}

/// One place a conversation's events are kept.
#[async_trait]
pub trait EventSource: Send + Sync + fmt::Debug {
    /// Frames of the conversation with seq above `after`, ascending, at most `max`; none when
    /// this source holds nothing further.
    async fn after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, QueryError>;

    /// The `source` label of its metrics: `hot`, `archive` or `log`.
    fn label(&self) -> &'static str {
        "hot"
    }
}

/// The hot store's timelines.
#[derive(Debug, Clone)]
pub struct HotStore(pub Arc<dyn ReadModels>);

#[async_trait]
impl EventSource for HotStore {
    async fn after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, QueryError> {
        let limit = (max.clamp(1, MAX_PAGE as usize)) as u32;
        let cursor = if after.0 == 0 {
            TimelineCursor::Oldest
        } else {
            TimelineCursor::After(after)
        };
        let page = self
            .0
            .timeline(
                tenant,
                conversation,
                TimelineQuery::new(cursor, limit, Audience::Staff),
            )
            .await?;
        Ok(page
            .entries
            .into_iter()
            .map(|entry| Frame {
                seq: entry.seq,
                occurred_at: Some(entry.occurred_at),
                bytes: entry.frame,
            })
            .collect())
    }
}

/// The conversations topic of the event log: the conversation's partition, read from its first
/// retained offset and filtered by key. A full scan of one partition, so it comes last.
#[derive(Debug, Clone)]
pub struct LogSource {
    pub log: Arc<dyn EventLog>,
    /// Records read per call to the log.
    pub chunk: usize,
}

impl LogSource {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self { log, chunk: 1024 }
    }
}

#[async_trait]
impl EventSource for LogSource {
    fn label(&self) -> &'static str {
        "log"
    }

    async fn after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, QueryError> {
        let topic = Topic::Conversations.name();
        let key = conversation.as_str().as_bytes();
        let partition = partition_for_key(key, self.log.partitions(topic).await?);
        let range = self.log.offsets(topic, partition).await?;
        let mut found = Vec::new();
        let mut offset = range.start;
        while offset < range.end {
            let records = self.log.read(topic, partition, offset, self.chunk).await?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for record in records.into_iter().filter(|r| r.key == key) {
                // A record whose head does not parse still belongs to the conversation's
                // history: it takes the next place and the verifier says what is wrong.
                let seq = match chain::read_head(&record.value) {
                    Ok(head) if head.tenant_id != *tenant => continue,
                    Ok(head) => head.seq,
                    Err(_) => found.last().map_or(after, |f: &Frame| f.seq).next(),
                };
                if seq > after {
                    found.push(Frame {
                        seq,
                        occurred_at: None,
                        bytes: record.value,
                    });
                }
            }
        }
        found.sort_by_key(|f| f.seq);
        found.truncate(max);
        Ok(found)
    }
}

/// The sources of history, in the order they are asked.
#[derive(Debug, Clone)]
pub struct Sources {
    sources: Vec<Arc<dyn EventSource>>,
}

impl Sources {
    /// The hot store alone.
    pub fn hot(store: Arc<dyn ReadModels>) -> Self {
        Self {
            sources: vec![Arc::new(HotStore(store))],
        }
    }

    /// Sources asked in this order.
    pub fn new(sources: Vec<Arc<dyn EventSource>>) -> Self {
        Self { sources }
    }

    /// Adds a source, asked after those already there (the archive, then the log).
    pub fn then(mut self, source: Arc<dyn EventSource>) -> Self {
        self.sources.push(source);
        self
    }

    /// The next frames of a conversation after `after`, from the first source that continues
    /// it without a gap, else from the one with the lowest next seq; empty at the end.
    pub async fn next(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, QueryError> {
        let mut best: Option<(&'static str, Vec<Frame>)> = None;
        for source in &self.sources {
            let frames = source.after(tenant, conversation, after, max).await?;
            let Some(first) = frames.first().map(|f| f.seq) else {
                continue;
            };
            if first == after.next() {
                crate::metrics::read_events(source.label(), frames.len());
                return Ok(frames);
            }
            if best.as_ref().is_none_or(|(_, b)| b[0].seq > first) {
                best = Some((source.label(), frames));
            }
        }
        let Some((label, frames)) = best else {
            return Ok(Vec::new());
        };
        crate::metrics::read_events(label, frames.len());
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_events::chain::{Problem, Verdict, verify};
    use switchboard_events::fixtures;

    use super::*;

    /// A source holding some seqs of the sample conversation, like the archive or the store.
    #[derive(Debug)]
    struct Holding(Vec<Frame>);

    impl Holding {
        fn seqs(seqs: impl Fn(u64) -> bool) -> Arc<dyn EventSource> {
            let frames = fixtures::conversation_history()
                .into_iter()
                .filter(|(e, _)| seqs(e.envelope.seq.0))
                .map(|(e, bytes)| Frame {
                    seq: e.envelope.seq,
                    occurred_at: None,
                    bytes,
                })
                .collect();
            Arc::new(Self(frames))
        }
    }

    #[async_trait]
    impl EventSource for Holding {
        async fn after(
            &self,
            _: &TenantId,
            _: &ConversationId,
            after: Seq,
            max: usize,
        ) -> Result<Vec<Frame>, QueryError> {
            let frames = self.0.iter().filter(|f| f.seq > after).take(max);
            Ok(frames.cloned().collect())
        }
    }

    async fn replay(sources: &Sources) -> Vec<Vec<u8>> {
        let (tenant, id) = (fixtures::tenant(), fixtures::conversation());
        let mut out = Vec::new();
        let mut after = Seq(0);
        loop {
            let frames = sources.next(&tenant, &id, after, 4).await.unwrap();
            let Some(last) = frames.last() else {
                return out;
            };
            after = last.seq;
            out.extend(frames.into_iter().map(|f| f.bytes));
        }
    }

    #[tokio::test]
    async fn a_history_split_between_hot_store_and_archive_replays_whole() {
        // The hot store lost seqs 1..=6 to the archive; the log holds everything.
        let hot = Holding::seqs(|s| s > 6);
        let archive = Holding::seqs(|s| s <= 6);
        let sources = Sources::new(vec![hot, archive]);
        let frames = replay(&sources).await;
        let all = fixtures::conversation_history();
        assert_eq!(frames.len(), all.len());
        assert!(matches!(
            verify(frames.iter().map(Vec::as_slice)),
            Verdict::Intact { .. }
        ));
    }

    #[tokio::test]
    async fn a_seq_no_source_holds_reaches_the_verifier_as_dropped() {
        let hot = Holding::seqs(|s| s > 6);
        let archive = Holding::seqs(|s| s <= 6 && s != 3);
        let frames = replay(&Sources::new(vec![hot, archive])).await;
        assert_eq!(
            verify(frames.iter().map(Vec::as_slice)),
            Verdict::Broken {
                seq: Seq(3),
                problem: Problem::Dropped
            }
        );
    }
}

/// The cold archive: the frames of an archived conversation, from its manifest entry's file.
#[derive(Debug, Clone)]
pub struct ArchiveSource {
    pub store: Arc<dyn ReadModels>,
    pub archive: switchboard_store::cold::Archive,
}

#[async_trait]
impl EventSource for ArchiveSource {
    fn label(&self) -> &'static str {
        "archive"
    }

    async fn after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, QueryError> {
        let Some(entry) = self.store.archived(tenant, conversation).await? else {
            return Ok(Vec::new());
        };
        if after >= entry.last_seq {
            return Ok(Vec::new());
        }
        let entries = self.archive.entries(&entry).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.seq > after)
            .take(max)
            .map(|e| Frame {
                seq: e.seq,
                occurred_at: Some(e.occurred_at),
                bytes: e.frame,
            })
            .collect())
    }
}
