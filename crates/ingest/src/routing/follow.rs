//! Following the log for the router: every partition of both topics, decoded, forwarded to the
//! driver in each partition's order.

use std::sync::Arc;

use switchboard_events::{AgentEvent, AnyEvent, ConversationEvent, Topic};
use switchboard_log::{EventLog, Follow, Record, StartAt};
use tokio::sync::mpsc;

use crate::routing::driver::RETRY_AFTER;

/// The event in a record of `topic`; an undecodable one (which the writer never writes) is
/// skipped with a warning, so one bad record does not stop routing.
pub(crate) fn decode(topic: Topic, record: &Record) -> Option<AnyEvent> {
    let decoded = match topic {
        Topic::Conversations => {
            ConversationEvent::decode(&record.value).map(AnyEvent::Conversation)
        }
        Topic::Agents => AgentEvent::decode(&record.value).map(AnyEvent::Agent),
    };
    match decoded {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::warn!(topic = topic.name(), partition = record.partition, offset = record.offset, error = %e, "routing skips an undecodable event");
            None
        }
    }
}

/// Follows one partition from `next`, forwarding its events, with the log's one follower
/// ([`Follow`]: it reopens the tail after a read error, with backoff). Only reaching the
/// partition at all is retried here, every [`RETRY_AFTER`].
pub(crate) async fn follow(
    log: Arc<dyn EventLog>,
    topic: Topic,
    partition: u32,
    next: u64,
    forward: mpsc::Sender<AnyEvent>,
) {
    let mut follower = loop {
        match Follow::start(log.clone(), topic.name(), partition, StartAt::Offset(next)).await {
            Ok(follower) => break follower.counted("router"),
            Err(e) => {
                tracing::warn!(topic = topic.name(), partition, error = %e, "routing cannot tail; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    };
    loop {
        let record = follower.next().await;
        if let Some(event) = decode(topic, &record)
            && forward.send(event).await.is_err()
        {
            return; // the driver stopped
        }
    }
}
