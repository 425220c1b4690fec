//! Invalidation from the log, for a query service in another process than the projector:
//! every partition of the conversations topic is tailed, and each event reports its
//! conversation and seq to the cache (and an erasure, an erasure).
//!
//! The tail usually sees an event before the projector has applied it; `ReadCache::changed`
//! records the seq as a floor, and reads of a store still below it are not cached (see
//! `cache.rs`), so the early notice can never leave a stale page behind. In one process the
//! projector calls [`Invalidate`] itself after each batch, which needs no tail at all.

use std::sync::Arc;

use switchboard_events::{ConversationEvent, ConversationPayload, Topic};
use switchboard_log::metrics::Consumed;
use switchboard_log::{EventLog, LogError, StartAt, Tail};
use tokio::task::JoinSet;

use crate::cache::Invalidate;
use crate::error::QueryError;

/// Follows every partition from `start` until a tail fails; runs until aborted otherwise.
pub async fn follow(
    log: Arc<dyn EventLog>,
    cache: Arc<dyn Invalidate>,
    start: StartAt,
) -> Result<(), QueryError> {
    let topic = Topic::Conversations.name();
    let partitions = log.partitions(topic).await?;
    let mut tails = JoinSet::new();
    for partition in 0..partitions {
        let range = log.offsets(topic, partition).await?;
        let next = match start {
            StartAt::Earliest => range.start,
            StartAt::Latest => range.end,
            StartAt::Offset(offset) => offset,
        };
        let consumed = Consumed::new("query", topic, partition, next);
        let tail = log.tail(topic, partition, StartAt::Offset(next)).await?;
        tails.spawn(follow_partition(tail, consumed, Arc::clone(&cache)));
    }
    match tails.join_next().await {
        Some(Ok(Err(e))) => Err(QueryError::from(e)),
        Some(Err(e)) => Err(QueryError::Internal(format!("a log tail stopped: {e}"))),
        Some(Ok(Ok(()))) | None => Ok(()),
    }
}

async fn follow_partition(
    mut tail: Box<dyn Tail>,
    consumed: Consumed,
    cache: Arc<dyn Invalidate>,
) -> Result<(), LogError> {
    loop {
        let record = tail.next().await?;
        consumed.read(record.offset + 1);
        // Undecodable records are the projector's to dead-letter; nothing to evict.
        let Ok(event) = ConversationEvent::decode(&record.value) else {
            continue;
        };
        let envelope = &event.envelope;
        cache.changed(&envelope.tenant_id, &envelope.conversation_id, envelope.seq);
        if matches!(event.payload, ConversationPayload::CustomerDataErased(_)) {
            cache.erased();
        }
    }
}
