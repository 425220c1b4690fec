//! The live projector: a consumer-group member on one topic that folds each partition it is
//! given into the store, in partition order, and commits the group offset only after the
//! batch and its checkpoint are in the store. Records it cannot project go to
//! `switchboard.dead-letters` with the reason and their origin; projection goes on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_events::Topic;
use switchboard_log::metrics::Consumed;
use switchboard_log::{EventLog, GroupEvent, GroupMember, NewRecord, Record, StartAt, TopicSpec};
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::LogPartition;
use tokio::sync::watch;
use tracing::Instrument;

use crate::partition::{PartitionProjector, Projected, Rejected};

/// The topic unprojectable records go to.
pub const DEAD_LETTERS: &str = "switchboard.dead-letters";

/// How the projector runs.
#[derive(Clone, Debug)]
pub struct ProjectorConfig {
    /// The consumer group, and the consumer name of the store checkpoints.
    pub consumer: String,
    /// The most records folded into one store batch.
    pub max_batch: usize,
    /// How long records wait for more before they are written.
    pub linger: Duration,
    /// The cold archive, when conversations are archived: the projector reads archived private
    /// notes from it.
    pub archive: Option<switchboard_store::cold::Archive>,
    /// Summaries, report partials and agent records each partition keeps in memory
    /// ([`crate::partition::CACHE_LIMIT`] by default).
    pub cache_limit: usize,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            consumer: "projector".to_owned(),
            max_batch: 4096,
            linger: Duration::from_millis(2),
            archive: None,
            cache_limit: crate::partition::CACHE_LIMIT,
        }
    }
}

/// How far projection has come, per partition: the next offset to project and the log's end
/// when last looked at. `end - next` is the lag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub partitions: HashMap<u32, (u64, u64)>,
}

impl Progress {
    /// Records behind the end of the log, over every partition this member holds.
    pub fn lag(&self) -> u64 {
        self.partitions
            .values()
            .map(|(next, end)| end.saturating_sub(*next))
            .sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("event log: {0}")]
    Log(#[from] switchboard_log::LogError),
    #[error("store: {0}")]
    Store(#[from] switchboard_store::StoreError),
}

/// One projector on one topic.
pub struct Projector {
    log: Arc<dyn EventLog>,
    store: Arc<dyn ReadModels>,
    topic: Topic,
    config: ProjectorConfig,
    progress: watch::Sender<Progress>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("topic", &self.topic)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Projector {
    pub fn new(
        log: Arc<dyn EventLog>,
        store: Arc<dyn ReadModels>,
        topic: Topic,
        config: ProjectorConfig,
    ) -> Self {
        Self {
            log,
            store,
            topic,
            config,
            progress: watch::channel(Progress::default()).0,
        }
    }

    /// Follows the projection's progress (and lag).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Runs until `shutdown` turns true, then leaves the group.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), ProjectorError> {
        self.log
            .create_topic(&TopicSpec::new(DEAD_LETTERS, 1))
            .await?;
        let group = format!("switchboard.{}", self.config.consumer);
        let mut member = self
            .log
            .join_group(&group, self.topic.name(), StartAt::Earliest)
            .await?;
        let mut owned: HashMap<u32, PartitionProjector> = HashMap::new();
        let mut consumed: HashMap<u32, Consumed> = HashMap::new();
        let mut pending: HashMap<u32, Vec<Record>> = HashMap::new();
        loop {
            let waiting = pending.values().any(|p| !p.is_empty());
            let next = tokio::select! {
                _ = shutdown.changed() => None,
                event = member.next() => Some(event),
                _ = tokio::time::sleep(self.config.linger), if waiting => {
                    self.flush_all(&mut owned, &mut pending, member.as_mut()).await?;
                    continue;
                }
            };
            let Some(event) = next else { break };
            match event? {
                GroupEvent::Assigned(partitions) => {
                    for p in partitions {
                        let source = LogPartition::new(self.topic, p);
                        owned.insert(
                            p,
                            PartitionProjector::open(
                                self.store.clone(),
                                &self.config.consumer,
                                source,
                            )
                            .await?
                            .with_archive(self.config.archive.clone())
                            .with_cache_limit(self.config.cache_limit),
                        );
                        let next = owned[&p].next_offset();
                        consumed.insert(p, Consumed::new("projector", self.topic.name(), p, next));
                    }
                }
                GroupEvent::Revoked(partitions) => {
                    for p in partitions {
                        self.flush(p, &mut owned, &mut pending, member.as_mut())
                            .await?;
                        owned.remove(&p);
                        consumed.remove(&p);
                        pending.remove(&p);
                        self.progress.send_modify(|progress| {
                            progress.partitions.remove(&p);
                        });
                    }
                }
                GroupEvent::Record(record) => {
                    let p = record.partition;
                    if let Some(consumed) = consumed.get(&p) {
                        consumed.read(record.offset + 1);
                    }
                    let batch = pending.entry(p).or_default();
                    batch.push(record);
                    if batch.len() >= self.config.max_batch {
                        self.flush(p, &mut owned, &mut pending, member.as_mut())
                            .await?;
                    }
                }
            }
            if *shutdown.borrow() {
                break;
            }
        }
        self.flush_all(&mut owned, &mut pending, member.as_mut())
            .await?;
        member.leave().await?;
        Ok(())
    }

    async fn flush_all(
        &self,
        owned: &mut HashMap<u32, PartitionProjector>,
        pending: &mut HashMap<u32, Vec<Record>>,
        member: &mut dyn GroupMember,
    ) -> Result<(), ProjectorError> {
        let partitions: Vec<u32> = pending
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(p, _)| *p)
            .collect();
        for p in partitions {
            self.flush(p, owned, pending, member).await?;
        }
        Ok(())
    }

    async fn flush(
        &self,
        partition: u32,
        owned: &mut HashMap<u32, PartitionProjector>,
        pending: &mut HashMap<u32, Vec<Record>>,
        member: &mut dyn GroupMember,
    ) -> Result<(), ProjectorError> {
        let records = pending.remove(&partition).unwrap_or_default();
        let Some(projector) = owned.get_mut(&partition) else {
            return Ok(());
        };
        if records.is_empty() {
            return Ok(());
        }
        let mut attempt = 0u32;
        let projected = loop {
            match self.write(projector, &records).await {
                Ok(projected) => break projected,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    projector.forget();
                    tracing::warn!(partition, attempt, error = %e, "projection batch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        if let Some(next) = projected.next_offset {
            member.commit(partition, next).await?;
            // The lag is advisory: a broker that does not answer now leaves it as it was.
            if let Ok(range) = self.log.offsets(self.topic.name(), partition).await {
                self.progress.send_modify(|progress| {
                    progress.partitions.insert(partition, (next, range.end));
                });
            }
        }
        Ok(())
    }

    /// Projects a run of records: dead letters first, then the batch with its checkpoint.
    async fn write(
        &self,
        projector: &mut PartitionProjector,
        records: &[Record],
    ) -> Result<Projected, ProjectorError> {
        let projected = projector.project(records).await?;
        if !projected.rejected.is_empty() {
            self.dead_letters(&projected.rejected).await?;
        }
        let started = Instant::now();
        let span = tracing::debug_span!(
            "projector.commit",
            topic = self.topic.name(),
            partition = records.first().map(|r| r.partition),
            records = records.len(),
        );
        // Each traced record's fold links to the commit that made it visible.
        for fold in &projected.spans {
            span.follows_from(fold);
        }
        self.store.apply(&projected.batch).instrument(span).await?;
        crate::metrics::committed(self.topic, records, started.elapsed());
        if let Some(next) = projected.next_offset {
            projector.committed(next);
        }
        Ok(projected)
    }

    async fn dead_letters(&self, rejected: &[Rejected]) -> Result<(), ProjectorError> {
        let records = rejected
            .iter()
            .map(|r| dead_letter(self.topic, r))
            .collect();
        for r in rejected {
            tracing::error!(
                topic = self.topic.name(), partition = r.record.partition, offset = r.record.offset,
                reason = %r.reason, "event cannot be projected; sent to the dead letters"
            );
        }
        self.log
            .append(DEAD_LETTERS, records, &Default::default())
            .await?;
        for r in rejected {
            crate::metrics::dead_lettered(self.topic, &r.reason);
        }
        Ok(())
    }
}

/// The dead letter of a rejected record: its key and value unchanged, the reason and its origin
/// in headers.
pub fn dead_letter(topic: Topic, rejected: &Rejected) -> NewRecord {
    let r = &rejected.record;
    let mut letter = NewRecord::new(r.key.clone(), r.value.clone())
        .with_header("switchboard-dead-letter-reason", rejected.reason.as_bytes())
        .with_header("switchboard-origin-topic", topic.name().as_bytes())
        .with_header(
            "switchboard-origin-partition",
            r.partition.to_string().into_bytes(),
        )
        .with_header(
            "switchboard-origin-offset",
            r.offset.to_string().into_bytes(),
        );
    // The trace of the command that wrote it, to find the dead letter from the trace.
    if let Some(traceparent) = r.header(switchboard_log::trace::TRACEPARENT) {
        letter = letter.with_header(switchboard_log::trace::TRACEPARENT, traceparent);
    }
    letter
}
