//! The Kafka backend: any Kafka-protocol broker through librdkafka.
//!
//! The producer is idempotent (`acks=all`) and uses librdkafka's
//! `murmur2_random` partitioner, which places keys as Kafka's Java client and
//! the embedded log do. Consumers never auto-commit: group members commit
//! by hand after processing.

mod config;
mod errors;
mod fence;
mod groups;
mod tail;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaRespErr;

pub use self::config::KafkaConfig;
use self::errors::kafka;
use crate::error::{LogError, Result};
use crate::port::{
    AppendOptions, EventLog, Fence, GroupMember, OffsetRange, StartAt, Tail, TopicSpec,
};
use crate::record::{NewRecord, Position, Record};

/// How long a metadata or offsets request to the brokers may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The Kafka backend. Cheap to clone.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    producer: writer::Producer,
    admin: AdminClient<DefaultClientContext>,
    /// Metadata and watermark queries; never subscribes.
    meta: Arc<BaseConsumer>,
    partitions: Mutex<HashMap<String, u32>>,
    /// The partitions this client has claimed, each with its transactional producer.
    fenced: tokio::sync::Mutex<HashMap<(String, u32), Arc<fence::FencedProducer>>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Creates the clients; connections are made lazily.
    pub fn connect(config: KafkaConfig) -> Result<KafkaLog> {
        let producer = writer::Producer::new(&config)?;
        let admin = config
            .reader()
            .create()
            .map_err(|e| kafka("create admin client", e))?;
        let meta = Arc::new(
            config
                .reader()
                .create()
                .map_err(|e| kafka("create consumer", e))?,
        );
        Ok(KafkaLog {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                meta,
                partitions: Mutex::default(),
                fenced: Default::default(),
            }),
        })
    }

    /// The topic's partition count, from a cache or the brokers' metadata.
    async fn partition_count(&self, topic: &str) -> Result<u32> {
        if let Some(&n) = self
            .inner
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
        {
            return Ok(n);
        }
        let meta = Arc::clone(&self.inner.meta);
        let name = topic.to_owned();
        let count = blocking(move || {
            let metadata = meta
                .fetch_metadata(Some(&name), METADATA_TIMEOUT)
                .map_err(|e| kafka("fetch metadata", e))?;
            let found = metadata.topics().iter().find(|t| t.name() == name);
            match found {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    Ok(t.partitions().len() as u32)
                }
                Some(t)
                    if t.error()
                        == Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                        || t.partitions().is_empty() =>
                {
                    Err(LogError::UnknownTopic {
                        topic: name.clone(),
                    })
                }
                Some(t) => Err(LogError::Kafka {
                    op: "fetch metadata",
                    message: format!("topic {name}: {:?}", t.error()),
                    retriable: true,
                }),
                None => Err(LogError::UnknownTopic {
                    topic: name.clone(),
                }),
            }
        })
        .await?;
        self.inner
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), count);
        Ok(count)
    }

    /// The low and high watermarks from the brokers' ListOffsets.
    async fn watermarks(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        self.check_partition(topic, partition).await?;
        let meta = Arc::clone(&self.inner.meta);
        let name = topic.to_owned();
        blocking(move || {
            let (low, high) = meta
                .fetch_watermarks(&name, partition as i32, METADATA_TIMEOUT)
                .map_err(|e| kafka("fetch watermarks", e))?;
            Ok((low.max(0) as u64, high.max(low).max(0) as u64))
        })
        .await
    }

    fn check_offset(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        range: OffsetRange,
    ) -> Result<()> {
        if offset < range.start || offset > range.end {
            return Err(LogError::OffsetOutOfRange {
                topic: topic.to_owned(),
                partition,
                offset,
                start: range.start,
                end: range.end,
            });
        }
        Ok(())
    }

    async fn check_partition(&self, topic: &str, partition: u32) -> Result<()> {
        let partitions = self.partition_count(topic).await?;
        if partition >= partitions {
            return Err(LogError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            });
        }
        Ok(())
    }
}

/// Runs a blocking librdkafka call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Closed {
            reason: format!("blocking kafka call failed: {e}"),
        })?
}

#[async_trait]
impl EventLog for KafkaLog {
    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        if spec.partitions == 0 {
            return Err(LogError::invalid(format!(
                "topic {} needs at least one partition",
                spec.name
            )));
        }
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions as i32,
            TopicReplication::Fixed(self.inner.config.replication_factor),
        );
        for (key, value) in self.inner.config.topic_config.iter().chain(&spec.config) {
            topic = topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
        let results = self
            .inner
            .admin
            .create_topics([&topic], &options)
            .await
            .map_err(|e| kafka("create topic", e))?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(errors::topic_error("create topic", &name, code));
                }
            }
        }
        self.inner
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&spec.name);
        let existing = self.partition_count(&spec.name).await?;
        if existing != spec.partitions {
            return Err(LogError::TopicConflict {
                topic: spec.name.clone(),
                existing,
                requested: spec.partitions,
            });
        }
        Ok(())
    }

    async fn partitions(&self, topic: &str) -> Result<u32> {
        self.partition_count(topic).await
    }

    async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
        options: &AppendOptions,
    ) -> Result<Vec<Position>> {
        crate::record::validate(&records, self.inner.config.max_record_bytes)?;
        let count = self.partition_count(topic).await?;
        let Some(fence) = options.fence else {
            return self.inner.producer.append(topic, records).await;
        };
        let outside = records
            .iter()
            .map(|r| switchboard_events::partition::partition_for_key(&r.key, count))
            .find(|p| *p != fence.partition);
        if let Some(p) = outside {
            return Err(LogError::invalid(format!(
                "a record maps to partition {p}, outside the fence of partition {}",
                fence.partition
            )));
        }
        let producer = {
            let fenced = self.inner.fenced.lock().await;
            match fenced.get(&(topic.to_owned(), fence.partition)) {
                Some(p) if p.epoch == fence.epoch => Arc::clone(p),
                other => {
                    return Err(LogError::Fenced {
                        topic: topic.to_owned(),
                        partition: fence.partition,
                        held: fence.epoch,
                        current: other.map_or(0, |p| p.epoch),
                    });
                }
            }
        };
        producer.append(topic, fence.partition, &records).await
    }

    async fn claim(&self, topic: &str, partition: u32) -> Result<Fence> {
        let count = self.partition_count(topic).await?;
        if partition >= count {
            return Err(LogError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions: count,
            });
        }
        let mut fenced = self.inner.fenced.lock().await;
        let key = (topic.to_owned(), partition);
        let epoch = fenced.get(&key).map_or(1, |p| p.epoch + 1);
        let producer =
            fence::FencedProducer::claim(&self.inner.config, topic, partition, epoch).await?;
        fenced.insert(key, Arc::new(producer));
        Ok(Fence { partition, epoch })
    }

    async fn offsets(&self, topic: &str, partition: u32) -> Result<OffsetRange> {
        let (start, end) = self.watermarks(topic, partition).await?;
        Ok(OffsetRange { start, end })
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>> {
        let range = self.offsets(topic, partition).await?;
        self.check_offset(topic, partition, from, range)?;
        let mut out = Vec::with_capacity(max.min((range.end - from) as usize));
        if from == range.end || max == 0 {
            return Ok(out);
        }
        let mut tail =
            tail::KafkaTail::new(&self.inner.config, topic, partition, StartAt::Offset(from))?;
        let timeout = self.inner.config.read_timeout;
        while out.len() < max {
            let next = tokio::time::timeout(timeout, tail.next_or_end())
                .await
                .map_err(|_| LogError::Kafka {
                    op: "read",
                    message: format!(
                        "{topic}/{partition}: no record and no end of partition at offset {} within {timeout:?}",
                        from + out.len() as u64
                    ),
                    retriable: true,
                })??;
            match next {
                Some(record) => out.push(record),
                None => break,
            }
        }
        Ok(out)
    }

    async fn tail(&self, topic: &str, partition: u32, start: StartAt) -> Result<Box<dyn Tail>> {
        let tail = match start {
            StartAt::Offset(offset) => {
                let range = self.offsets(topic, partition).await?;
                self.check_offset(topic, partition, offset, range)?;
                tail::KafkaTail::new(&self.inner.config, topic, partition, start)?
            }
            StartAt::Latest => {
                // Pin "latest" now, so every record appended after this call is seen.
                let (_, end) = self.watermarks(topic, partition).await?;
                tail::KafkaTail::new(&self.inner.config, topic, partition, StartAt::Offset(end))?
            }
            StartAt::Earliest => {
                self.check_partition(topic, partition).await?;
                tail::KafkaTail::new(&self.inner.config, topic, partition, start)?
            }
        };
        Ok(Box::new(tail))
    }

    async fn join_group(
        &self,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> Result<Box<dyn GroupMember>> {
        self.partition_count(topic).await?;
        Ok(Box::new(groups::KafkaMember::join(
            &self.inner.config,
            group,
            topic,
            start,
        )?))
    }
}
