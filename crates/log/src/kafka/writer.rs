//! Appending through librdkafka's idempotent producer.

use std::collections::VecDeque;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::config::KafkaConfig;
use super::errors::kafka;
use crate::error::{LogError, Result};
use crate::record::{NewRecord, Position};

/// The producer side of the Kafka backend.
pub(crate) struct Producer {
    producer: FutureProducer,
}

impl Producer {
    pub fn new(config: &KafkaConfig) -> Result<Producer> {
        let producer = config
            .producer()
            .create()
            .map_err(|e| kafka("create producer", e))?;
        Ok(Producer { producer })
    }

    /// Produces every record (the partitioner places it by key) and waits
    /// for all acknowledgements. Records of one key keep their order: the
    /// idempotent producer never reorders within a partition.
    pub async fn append(&self, topic: &str, records: Vec<NewRecord>) -> Result<Vec<Position>> {
        let mut deliveries: VecDeque<DeliveryFuture> = VecDeque::with_capacity(records.len());
        let mut positions = Vec::with_capacity(records.len());
        for record in &records {
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
                .key(&record.key)
                .payload(&record.value)
                .headers(headers);
            if let Some(ts) = record.timestamp_ms {
                next = next.timestamp(ts);
            }
            loop {
                match self.producer.send_result(next) {
                    Ok(delivery) => {
                        deliveries.push_back(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if !deliveries.is_empty() =>
                    {
                        // The local queue is full: wait for our oldest record.
                        let oldest = deliveries.pop_front().expect("not empty");
                        positions.push(settle(oldest).await?);
                        next = back;
                    }
                    Err((e, _)) => return Err(kafka("produce", e)),
                }
            }
        }
        for delivery in deliveries {
            positions.push(settle(delivery).await?);
        }
        Ok(positions)
    }
}

async fn settle(delivery: DeliveryFuture) -> Result<Position> {
    match delivery.await {
        Ok(Ok(delivered)) => Ok(Position {
            partition: delivered.partition as u32,
            offset: delivered.offset as u64,
        }),
        Ok(Err((e, _))) => Err(kafka("produce", e)),
        Err(_) => Err(LogError::Closed {
            reason: "producer dropped the delivery".into(),
        }),
    }
}
