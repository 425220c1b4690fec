//! Consumer-group members on librdkafka's group protocol.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::blocking;
use super::config::KafkaConfig;
use super::errors::kafka;
use super::tail::to_record;
use crate::error::{LogError, Result};
use crate::port::{GroupEvent, GroupMember, StartAt};

/// Turns librdkafka's rebalance callbacks into `GroupEvent`s.
struct GroupContext {
    topic: String,
    events: mpsc::UnboundedSender<GroupEvent>,
}

impl GroupContext {
    fn partitions(&self, list: &TopicPartitionList) -> Vec<u32> {
        list.elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition() as u32)
            .collect()
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let partitions = self.partitions(list);
            if !partitions.is_empty() {
                let _ = self.events.send(GroupEvent::Revoked(partitions));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions = self.partitions(list);
                if !partitions.is_empty() {
                    let _ = self.events.send(GroupEvent::Assigned(partitions));
                }
            }
            Rebalance::Error(e) => {
                tracing::warn!(topic = %self.topic, error = %e, "consumer group rebalance failed")
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

/// A member of a Kafka consumer group, on one topic.
pub(crate) struct KafkaMember {
    consumer: Arc<StreamConsumer<GroupContext>>,
    events: mpsc::UnboundedReceiver<GroupEvent>,
    topic: String,
    group: String,
    assigned: BTreeSet<u32>,
    /// How long a commit is retried through a broker outage before it fails.
    commit_within: Duration,
    /// Whether the broker is unreachable now: an outage is logged once, at its start.
    outage: bool,
}

/// The pause between two tries while the broker cannot be reached.
const OUTAGE_BACKOFF: Duration = Duration::from_millis(100);

impl std::fmt::Debug for KafkaMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMember")
            .field("group", &self.group)
            .field("topic", &self.topic)
            .field("assigned", &self.assigned)
            .finish_non_exhaustive()
    }
}

impl KafkaMember {
    pub fn join(config: &KafkaConfig, group: &str, topic: &str, start: StartAt) -> Result<Self> {
        let reset = match start {
            StartAt::Earliest => "earliest",
            StartAt::Latest => "latest",
            StartAt::Offset(_) => {
                return Err(LogError::invalid(
                    "a kafka consumer group without committed offsets starts at earliest or latest, not at an offset",
                ));
            }
        };
        let (tx, events) = mpsc::unbounded_channel();
        let context = GroupContext {
            topic: topic.to_owned(),
            events: tx,
        };
        let consumer: StreamConsumer<GroupContext> = config
            .member(group, reset)
            .create_with_context(context)
            .map_err(|e| kafka("create group member", e))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| kafka("subscribe", e))?;
        Ok(KafkaMember {
            consumer: Arc::new(consumer),
            events,
            topic: topic.to_owned(),
            group: group.to_owned(),
            assigned: BTreeSet::new(),
            commit_within: config.delivery_timeout,
            outage: false,
        })
    }

    fn apply(&mut self, event: &GroupEvent) {
        match event {
            GroupEvent::Assigned(p) => self.assigned.extend(p),
            GroupEvent::Revoked(p) => p.iter().for_each(|p| {
                self.assigned.remove(p);
            }),
            GroupEvent::Record(_) => {}
        }
    }
}

#[async_trait]
impl GroupMember for KafkaMember {
    async fn next(&mut self) -> Result<GroupEvent> {
        loop {
            // Rebalance callbacks run inside `recv`; their events go first.
            let event = tokio::select! {
                biased;
                event = self.events.recv() => event.ok_or_else(|| LogError::Closed { reason: "group member closed".into() })?,
                message = self.consumer.recv() => {
                    let message = match message {
                        Ok(message) => message,
                        Err(e) => {
                            let error = kafka("consume", e);
                            if !error.is_retriable() {
                                return Err(error);
                            }
                            // The broker is down or restarting: librdkafka reconnects and
                            // rejoins by itself, so the member waits the outage out.
                            if !self.outage {
                                tracing::warn!(group = %self.group, topic = %self.topic, %error, "group member lost the broker; waiting for it");
                                self.outage = true;
                            }
                            tokio::time::sleep(OUTAGE_BACKOFF).await;
                            continue;
                        }
                    };
                    if self.outage {
                        tracing::info!(group = %self.group, topic = %self.topic, "group member reached the broker again");
                        self.outage = false;
                    }
                    let record = to_record(&message);
                    if !self.assigned.contains(&record.partition) {
                        // Fetched before a revocation we already reported.
                        continue;
                    }
                    GroupEvent::Record(record)
                }
            };
            self.apply(&event);
            return Ok(event);
        }
    }

    async fn commit(&mut self, partition: u32, next_offset: u64) -> Result<()> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            &self.topic,
            partition as i32,
            Offset::Offset(next_offset as i64),
        )
        .map_err(|e| kafka("commit", e))?;
        // A commit during a broker outage is retried until the broker is back, within the
        // delivery timeout: the offset must be committed when this returns.
        let deadline = tokio::time::Instant::now() + self.commit_within;
        loop {
            let (consumer, list) = (Arc::clone(&self.consumer), list.clone());
            let committed = blocking(move || {
                consumer
                    .commit(&list, CommitMode::Sync)
                    .map_err(|e| kafka("commit", e))
            })
            .await;
            match committed {
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(group = %self.group, partition, error = %e, "commit failed; retrying");
                    tokio::time::sleep(OUTAGE_BACKOFF).await;
                }
                done => return done,
            }
        }
    }

    fn assignment(&self) -> Vec<u32> {
        self.assigned.iter().copied().collect()
    }

    async fn leave(self: Box<Self>) -> Result<()> {
        let consumer = self.consumer;
        blocking(move || {
            consumer.unsubscribe();
            drop(consumer);
            Ok(())
        })
        .await
    }
}
