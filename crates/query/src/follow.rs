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
use switchboard_log::{EventLog, Follow, StartAt};
use tokio::task::JoinSet;

use crate::cache::Invalidate;
use crate::error::QueryError;

/// Follows every partition from `start` for as long as the process runs: a read error (the
/// broker restarting, say) is retried by [`Follow`], never returned. Fails only when a
/// partition cannot be reached at the start.
pub async fn follow(
    log: Arc<dyn EventLog>,
    cache: Arc<dyn Invalidate>,
    start: StartAt,
) -> Result<(), QueryError> {
    let topic = Topic::Conversations.name();
    let partitions = log.partitions(topic).await?;
    let mut tails = JoinSet::new();
    for partition in 0..partitions {
        let follow = Follow::start(log.clone(), topic, partition, start)
            .await?
            .counted("query");
        tails.spawn(follow_partition(follow, Arc::clone(&cache)));
    }
    match tails.join_next().await {
        Some(Err(e)) => Err(QueryError::Internal(format!("a log follower stopped: {e}"))),
        Some(Ok(())) | None => Ok(()),
    }
}

async fn follow_partition(mut follow: Follow, cache: Arc<dyn Invalidate>) {
    loop {
        let record = follow.next().await;
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
