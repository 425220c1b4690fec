//! The port every service uses. Both backends implement it.
//!
//! The traits use `async_trait` (boxed futures) rather than native `async fn`
//! in traits because services hold the log as `Arc<dyn EventLog>` and pick
//! the backend at start-up; native async trait methods are not dyn-compatible.
//! One allocation per call is noise next to an fsync or a network round trip.

use async_trait::async_trait;

use crate::error::Result;
use crate::record::{NewRecord, Position, Record};

/// A topic, its partition count, and settings of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    /// Topic-level settings a Kafka broker applies when it creates the topic (over the
    /// backend's own, such as `min.insync.replicas`): `cleanup.policy = compact` and the
    /// compaction lags of a compacted topic. The embedded log has no such settings and
    /// ignores them.
    pub config: std::collections::BTreeMap<String, String>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            config: std::collections::BTreeMap::new(),
        }
    }

    /// The same topic with one more setting.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.config.insert(key.to_owned(), value.into());
        self
    }
}

/// The single-writer role of one partition, as [`EventLog::claim`] granted it. Epochs only
/// grow: a newer claim fences every older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fence {
    pub partition: u32,
    pub epoch: u64,
}

/// Options of one append.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendOptions {
    /// Append only while this claim is the partition's newest; every record must map to the
    /// fence's partition. Without it, the append is unfenced.
    pub fence: Option<Fence>,
}

impl AppendOptions {
    /// An append under a claim.
    pub fn fenced(fence: Fence) -> Self {
        AppendOptions { fence: Some(fence) }
    }
}

/// Where a reader starts when it has no offset of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest retained record.
    Earliest,
    /// The next record appended from now on.
    Latest,
    /// This offset; it must be retained or the current end.
    Offset(u64),
}

/// The offsets a partition holds: `start..end`, `end` being the next offset
/// to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    pub start: u64,
    pub end: u64,
}

/// The event log: keyed records in partitioned topics.
#[async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Creates the topic, or checks that it exists with this many partitions.
    async fn create_topic(&self, spec: &TopicSpec) -> Result<()>;

    /// How many partitions the topic has.
    async fn partitions(&self, topic: &str) -> Result<u32>;

    /// Appends records, each to the partition of its key, in batch order per
    /// partition. Returns each record's position, in batch order, only once
    /// the whole batch is durable. After an error some records of the batch
    /// may still have been appended: a retry can duplicate them, so writers
    /// make their records idempotent (ingest does, by client message id).
    async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
        options: &AppendOptions,
    ) -> Result<Vec<Position>>;

    /// Takes the single-writer role of a partition. From the moment it returns, every append
    /// under an older claim of the partition fails with [`LogError::Fenced`], and every
    /// append made before it is durable, so a reader that starts now sees all of them.
    ///
    /// [`LogError::Fenced`]: crate::LogError::Fenced
    async fn claim(&self, topic: &str, partition: u32) -> Result<Fence>;

    /// The retained offsets of a partition.
    async fn offsets(&self, topic: &str, partition: u32) -> Result<OffsetRange>;

    /// Reads up to `max` records of a partition from `from`. Returns fewer at
    /// the end of the partition (none at its end) or when the records are
    /// large (the embedded log returns about 4 MiB at most, but always at
    /// least one record): read on from the last offset returned. Never waits
    /// for new records.
    async fn read(&self, topic: &str, partition: u32, from: u64, max: usize)
    -> Result<Vec<Record>>;

    /// Follows one partition live: every record from `start` on, pushed as
    /// it becomes durable.
    async fn tail(&self, topic: &str, partition: u32, start: StartAt) -> Result<Box<dyn Tail>>;

    /// Joins a consumer group on a topic. Partitions are shared among the
    /// members; a partition resumes at the group's committed offset, or at
    /// `start` when the group has none.
    async fn join_group(
        &self,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> Result<Box<dyn GroupMember>>;
}

/// A live follower of one partition.
#[async_trait]
pub trait Tail: Send + std::fmt::Debug {
    /// The next record, waiting until one is appended.
    async fn next(&mut self) -> Result<Record>;
}

/// What a group member sees: records of its partitions and changes of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// These partitions are now this member's.
    Assigned(Vec<u32>),
    /// These partitions are no longer this member's. Commit what was
    /// processed of them right away: the embedded log takes the commit until
    /// the next holder first reads the partition; Kafka may refuse it once
    /// the group has moved on (a retriable error). Either way delivery stays
    /// at-least-once: what was not committed is delivered again.
    Revoked(Vec<u32>),
    Record(Record),
}

/// One member of a consumer group. Offsets are committed by hand, only
/// after processing: at-least-once, never auto-commit.
#[async_trait]
pub trait GroupMember: Send + std::fmt::Debug {
    /// The next record or assignment change, waiting until there is one.
    async fn next(&mut self) -> Result<GroupEvent>;

    /// Commits `next_offset` (one past the last processed record) of a
    /// partition for the group.
    async fn commit(&mut self, partition: u32, next_offset: u64) -> Result<()>;

    /// The partitions this member holds now.
    fn assignment(&self) -> Vec<u32>;

    /// Leaves the group so its partitions move to the remaining members.
    async fn leave(self: Box<Self>) -> Result<()>;
}
