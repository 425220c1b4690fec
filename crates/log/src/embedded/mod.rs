//! The embedded durable log: partitioned topics in segment files under one
//! data directory. See DESIGN.md beside this file for the format, the group
//! commit and the crash-recovery rules.

mod active;
mod config;
mod groups;
mod lock;
mod partition;
mod recovery;
mod retention;
mod segment;
mod tail;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError};

use async_trait::async_trait;
use switchboard_events::partition::partition_for_key;
use tokio::sync::oneshot;

pub use self::config::{Durability, EmbeddedConfig, Recovery, Retention};
use self::groups::Groups;
use self::partition::{TopicState, Topics, check_name};
pub use self::writer::EmbeddedStats;
use self::writer::{Request, Writer};
use crate::error::{LogError, Result};
use crate::port::{
    AppendOptions, EventLog, Fence, GroupMember, OffsetRange, StartAt, Tail, TopicSpec,
};
use crate::record::{NewRecord, Position, Record};

/// The embedded log. Cheap to clone; the last clone dropped finishes the
/// queued appends and stops the writer.
#[derive(Debug, Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Held while the log is open: one process per data directory.
    _lock: lock::DirLock,
    config: EmbeddedConfig,
    topics: Arc<Topics>,
    writer: Writer,
    groups: Groups,
    /// The newest claim of each partition; appends under an older one are refused.
    fences: std::sync::Mutex<std::collections::HashMap<(String, u32), u64>>,
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `config.dir`, recovering every
    /// partition. Blocks while it scans the segments.
    pub fn open(config: EmbeddedConfig) -> Result<EmbeddedLog> {
        config.validate()?;
        let lock = lock::lock(&config.dir)?;
        let topics = Arc::new(Topics::new(recovery::load_topics(&config)?));
        let groups = Groups::open(config.dir.join("groups"))?;
        let writer = Writer::start(config.clone(), Arc::clone(&topics))?;
        Ok(EmbeddedLog {
            inner: Arc::new(Inner {
                _lock: lock,
                config,
                topics,
                writer,
                groups,
                fences: Default::default(),
            }),
        })
    }

    /// The writer's counters since the log opened.
    pub fn stats(&self) -> EmbeddedStats {
        self.inner.writer.stats()
    }

    /// Finishes queued appends and stops the writer; later appends fail.
    pub fn shutdown(&self) {
        self.inner.writer.shutdown();
    }

    fn topic(&self, name: &str) -> Result<Arc<TopicState>> {
        self.inner
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic {
                topic: name.to_owned(),
            })
    }
}

#[async_trait]
impl EventLog for EmbeddedLog {
    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        check_name("topic", &spec.name)?;
        if spec.partitions == 0 {
            return Err(LogError::invalid(format!(
                "topic {} needs at least one partition",
                spec.name
            )));
        }
        let mut topics = self
            .inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = topics.get(&spec.name) {
            let existing = existing.partitions.len() as u32;
            if existing != spec.partitions {
                return Err(LogError::TopicConflict {
                    topic: spec.name.clone(),
                    existing,
                    requested: spec.partitions,
                });
            }
            return Ok(());
        }
        let topic = recovery::create_topic(&self.inner.config, &spec.name, spec.partitions)?;
        topics.insert(spec.name.clone(), Arc::new(topic));
        Ok(())
    }

    async fn partitions(&self, topic: &str) -> Result<u32> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
        options: &AppendOptions,
    ) -> Result<Vec<Position>> {
        crate::record::validate(&records, self.inner.config.max_record_bytes)?;
        let topic = self.topic(topic)?;
        let count = topic.partitions.len() as u32;
        let records: Vec<(u32, NewRecord)> = records
            .into_iter()
            .map(|r| (partition_for_key(&r.key, count), r))
            .collect();
        let (reply, answer) = oneshot::channel();
        let request = Request {
            topic: Arc::clone(&topic),
            records,
            reply,
        };
        match options.fence {
            None => self.inner.writer.submit(request),
            Some(fence) => {
                if let Some((p, _)) = request.records.iter().find(|(p, _)| *p != fence.partition) {
                    return Err(LogError::invalid(format!(
                        "a record maps to partition {p}, outside the fence of partition {}",
                        fence.partition
                    )));
                }
                // Checked and queued under the lock: a claim either comes before (and the
                // append is refused) or after (and waits for the append to be durable).
                let fences = self
                    .inner
                    .fences
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let current = fences
                    .get(&(topic.name.clone(), fence.partition))
                    .copied()
                    .unwrap_or(0);
                if current != fence.epoch {
                    return Err(LogError::Fenced {
                        topic: topic.name.clone(),
                        partition: fence.partition,
                        held: fence.epoch,
                        current,
                    });
                }
                self.inner.writer.submit(request);
            }
        }
        answer.await.map_err(|_| LogError::Closed {
            reason: "writer stopped".into(),
        })?
    }

    async fn claim(&self, topic: &str, partition: u32) -> Result<Fence> {
        let state = self.topic(topic)?;
        state.partition(partition)?;
        let (reply, answer) = oneshot::channel();
        let epoch = {
            let mut fences = self
                .inner
                .fences
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let epoch = fences.entry((state.name.clone(), partition)).or_insert(0);
            *epoch += 1;
            // An empty request is answered once every request queued before it is durable.
            self.inner.writer.submit(Request {
                topic: Arc::clone(&state),
                records: Vec::new(),
                reply,
            });
            *epoch
        };
        answer.await.map_err(|_| LogError::Closed {
            reason: "writer stopped".into(),
        })??;
        Ok(Fence { partition, epoch })
    }

    async fn offsets(&self, topic: &str, partition: u32) -> Result<OffsetRange> {
        Ok(self.topic(topic)?.partition(partition)?.offsets())
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>> {
        self.topic(topic)?.partition(partition)?.read(from, max)
    }

    async fn tail(&self, topic: &str, partition: u32, start: StartAt) -> Result<Box<dyn Tail>> {
        let partition = Arc::clone(self.topic(topic)?.partition(partition)?);
        Ok(Box::new(tail::PartitionTail::new(partition, start)?))
    }

    async fn join_group(
        &self,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> Result<Box<dyn GroupMember>> {
        check_name("group", group)?;
        let topic = self.topic(topic)?;
        Ok(Box::new(self.inner.groups.join(group, topic, start)?))
    }
}
