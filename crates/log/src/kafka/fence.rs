//! Fencing on Kafka: one transactional producer per claimed partition.
//!
//! Claiming a partition creates a producer whose `transactional.id` names the topic and the
//! partition and calls `init_transactions`: the broker bumps the producer epoch of that id,
//! aborts whatever an older producer of the id left open, and from then on refuses the older
//! producer's writes (`ProducerFenced`). Each fenced append is one transaction; readers use
//! librdkafka's default `isolation.level=read_committed`, so records of a deposed writer's
//! aborted transaction are never seen.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use super::config::KafkaConfig;
use super::errors::kafka;
use crate::error::{LogError, Result};
use crate::record::{NewRecord, Position};

/// How long transaction calls to the coordinator may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// A claimed partition's producer.
pub(crate) struct FencedProducer {
    producer: FutureProducer,
    pub epoch: u64,
}

fn fenced_or(
    op: &'static str,
    topic: &str,
    partition: u32,
    epoch: u64,
    err: KafkaError,
) -> LogError {
    use RDKafkaErrorCode as C;
    match err.rdkafka_error_code() {
        Some(C::ProducerFenced | C::InvalidProducerEpoch | C::Fenced) => LogError::Fenced {
            topic: topic.to_owned(),
            partition,
            held: epoch,
            current: epoch + 1,
        },
        _ => kafka(op, err),
    }
}

impl FencedProducer {
    /// Claims `topic`/`partition` under `prefix` (one prefix per deployment).
    pub async fn claim(
        config: &KafkaConfig,
        topic: &str,
        partition: u32,
        epoch: u64,
    ) -> Result<Self> {
        let mut client = config.producer();
        client.set(
            "transactional.id",
            format!("{}.{topic}.{partition}", config.transaction_prefix),
        );
        let producer: FutureProducer = client
            .create()
            .map_err(|e| kafka("create transactional producer", e))?;
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(TXN_TIMEOUT))
            .await
            .map_err(|e| LogError::Closed {
                reason: format!("claim task failed: {e}"),
            })?
            .map_err(|e| kafka("init transactions", e))?;
        Ok(Self { producer, epoch })
    }

    /// Appends every record to the claimed partition in one transaction.
    pub async fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[NewRecord],
    ) -> Result<Vec<Position>> {
        let fail = |op, e| fenced_or(op, topic, partition, self.epoch, e);
        self.producer
            .begin_transaction()
            .map_err(|e| fail("begin transaction", e))?;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            let headers = record.headers.iter().fold(
                OwnedHeaders::new_with_capacity(record.headers.len()),
                |h, header| {
                    h.insert(KafkaHeader {
                        key: &header.name,
                        value: Some(&header.value),
                    })
                },
            );
            let mut next = FutureRecord::to(topic)
                .partition(partition as i32)
                .key(&record.key)
                .payload(&record.value)
                .headers(headers);
            if let Some(ts) = record.timestamp_ms {
                next = next.timestamp(ts);
            }
            match self.producer.send_result(next) {
                Ok(delivery) => deliveries.push(delivery),
                Err((e, _)) => {
                    let _ = self.abort().await;
                    return Err(fail("produce", e));
                }
            }
        }
        let mut positions = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(d)) => positions.push(Position {
                    partition: d.partition as u32,
                    offset: d.offset as u64,
                }),
                Ok(Err((e, _))) => {
                    let _ = self.abort().await;
                    return Err(fail("produce", e));
                }
                Err(_) => {
                    return Err(LogError::Closed {
                        reason: "producer dropped the delivery".into(),
                    });
                }
            }
        }
        let commit = self.producer.clone();
        tokio::task::spawn_blocking(move || commit.commit_transaction(TXN_TIMEOUT))
            .await
            .map_err(|e| LogError::Closed {
                reason: format!("commit task failed: {e}"),
            })?
            .map_err(|e| fail("commit transaction", e))?;
        Ok(positions)
    }

    async fn abort(&self) -> Result<()> {
        let abort = self.producer.clone();
        tokio::task::spawn_blocking(move || abort.abort_transaction(TXN_TIMEOUT))
            .await
            .map_err(|e| LogError::Closed {
                reason: format!("abort task failed: {e}"),
            })?
            .map_err(|e| kafka("abort transaction", e))
    }
}
