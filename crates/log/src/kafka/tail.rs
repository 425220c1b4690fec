//! Reading and tailing one partition with an assigned (group-less) consumer.

use async_trait::async_trait;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::config::KafkaConfig;
use super::errors::kafka;
use crate::error::Result;
use crate::port::{StartAt, Tail};
use crate::record::{Header, Record};

pub(crate) struct KafkaTail {
    consumer: StreamConsumer,
    topic: String,
    partition: u32,
}

impl std::fmt::Debug for KafkaTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTail")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl KafkaTail {
    pub fn new(config: &KafkaConfig, topic: &str, partition: u32, start: StartAt) -> Result<Self> {
        let consumer: StreamConsumer = config
            .reader()
            .create()
            .map_err(|e| kafka("create consumer", e))?;
        let offset = match start {
            StartAt::Earliest => Offset::Beginning,
            StartAt::Latest => Offset::End,
            StartAt::Offset(offset) => Offset::Offset(offset as i64),
        };
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition as i32, offset)
            .map_err(|e| kafka("assign partition", e))?;
        consumer
            .assign(&assignment)
            .map_err(|e| kafka("assign partition", e))?;
        Ok(KafkaTail {
            consumer,
            topic: topic.to_owned(),
            partition,
        })
    }

    /// The next record, or `None` on reaching the end of the partition as
    /// the broker's fetch path reports it.
    pub async fn next_or_end(&mut self) -> Result<Option<Record>> {
        match self.consumer.recv().await {
            Ok(message) => Ok(Some(to_record(&message))),
            Err(KafkaError::PartitionEOF(_)) => Ok(None),
            Err(e) => Err(kafka("consume", e)),
        }
    }

    /// The next record, waiting for one to be appended.
    pub async fn next_record(&mut self) -> Result<Record> {
        loop {
            if let Some(record) = self.next_or_end().await? {
                return Ok(record);
            }
        }
    }
}

#[async_trait]
impl Tail for KafkaTail {
    async fn next(&mut self) -> Result<Record> {
        self.next_record().await
    }
}

pub(crate) fn to_record(message: &BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| Header {
                    name: h.key.to_owned(),
                    value: h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        partition: message.partition() as u32,
        offset: message.offset() as u64,
        key: message.key().map(<[u8]>::to_vec).unwrap_or_default(),
        value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
    }
}
