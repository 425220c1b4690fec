//! The event log's metrics (names and labels as `docs/telemetry.md` specifies them): appends
//! measured by [`Metered`], the port wrapped around either backend; group commits and fsyncs
//! counted by the embedded writer; and what consumers read, with their lag per partition,
//! kept by [`Consumed`] and refreshed by [`refresh_lag`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use switchboard_events::metrics::{Counter, Exposition, Family, Gauge, Histogram};

use crate::{
    AppendOptions, EventLog, Fence, GroupMember, LogError, NewRecord, OffsetRange, Position,
    Record, Result, StartAt, Tail, TopicSpec,
};

static APPENDED_RECORDS: Family<Counter> = Family::new(&["backend", "topic"], Counter::new);
static APPENDED_BYTES: Family<Counter> = Family::new(&["backend", "topic"], Counter::new);
static FAILED_APPENDS: Family<Counter> = Family::new(&["backend", "topic", "reason"], Counter::new);
static APPEND_LATENCY: Family<Histogram> = Family::new(&["backend", "topic"], Histogram::seconds);
static APPEND_BATCH: Family<Histogram> = Family::new(&["backend"], Histogram::counts);
static FSYNC_LATENCY: LazyLock<Histogram> = LazyLock::new(Histogram::seconds);
static READ_RECORDS: Family<Counter> = Family::new(&["consumer", "topic"], Counter::new);
static CONSUMER_LAG: Family<Gauge> = Family::new(&["consumer", "topic", "partition"], Gauge::new);
static TOPIC_PARTITIONS: Family<Gauge> = Family::new(&["topic"], Gauge::new);

/// Where each consumer of this process stands: (consumer, topic, partition, next offset).
type Positions = Vec<(&'static str, String, u32, Arc<AtomicU64>)>;
static POSITIONS: Mutex<Positions> = Mutex::new(Vec::new());

/// The log's metrics in Prometheus' text format.
pub fn render(out: &mut String) {
    let mut page = Exposition::new(out);
    page.family(
        "switchboard_log_appended_records_total",
        "Records made durable in the log.",
        &APPENDED_RECORDS,
    );
    page.family(
        "switchboard_log_appended_bytes_total",
        "Key and value bytes of the records made durable.",
        &APPENDED_BYTES,
    );
    page.family(
        "switchboard_log_failed_appends_total",
        "Append calls that failed, by reason.",
        &FAILED_APPENDS,
    );
    page.family(
        "switchboard_log_append_latency_seconds",
        "From an append call to its durable acknowledgement.",
        &APPEND_LATENCY,
    );
    page.family(
        "switchboard_log_append_batch_records",
        "Records made durable together: one group commit or one produce call.",
        &APPEND_BATCH,
    );
    page.one(
        "switchboard_log_fsync_latency_seconds",
        "One fdatasync of an embedded log file.",
        &*FSYNC_LATENCY,
    );
    page.family(
        "switchboard_log_read_records_total",
        "Records a consumer or tailer handed to its role.",
        &READ_RECORDS,
    );
    page.family(
        "switchboard_log_consumer_lag_records",
        "A partition's end offset minus the next offset its consumer handles.",
        &CONSUMER_LAG,
    );
    page.family(
        "switchboard_log_topic_partitions",
        "Partitions of each topic the process uses.",
        &TOPIC_PARTITIONS,
    );
}

/// Records the partition count of a topic found at start-up.
pub fn topic_partitions(topic: &str, partitions: u32) {
    TOPIC_PARTITIONS.get(&[topic]).set(i64::from(partitions));
}

/// Times one fsync of the embedded log.
pub(crate) fn fsync<T>(sync: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = sync();
    FSYNC_LATENCY.observe_duration(started.elapsed());
    result
}

/// Counts the records of one group commit of the embedded log.
pub(crate) fn group_commit(records: usize) {
    APPEND_BATCH.get(&["embedded"]).observe(records as f64);
}

/// The `reason` label of a failed append.
fn reason(error: &LogError) -> &'static str {
    match error {
        LogError::Fenced { .. } => "fenced",
        LogError::RecordTooLarge { .. } => "too_large",
        LogError::Io { .. } => "io",
        LogError::Closed { .. } => "unavailable",
        LogError::Kafka { message, .. } if message.contains("imed out") => "timeout",
        LogError::Kafka {
            retriable: true, ..
        } => "unavailable",
        _ => "other",
    }
}

/// One consumer's position in one partition, for `switchboard_log_read_records_total` and its
/// lag. Dropping it (the partition released) drops the lag series.
#[derive(Debug)]
pub struct Consumed {
    consumer: &'static str,
    topic: String,
    partition: u32,
    next: Arc<AtomicU64>,
    read: Arc<Counter>,
}

impl Consumed {
    /// `consumer` is one of the `consumer` label's values: `ingest`, `router`, `projector`,
    /// `edge`, `query`.
    pub fn new(consumer: &'static str, topic: &str, partition: u32, next: u64) -> Self {
        let position = Arc::new(AtomicU64::new(next));
        let mut all = POSITIONS.lock().unwrap_or_else(|e| e.into_inner());
        all.push((consumer, topic.to_owned(), partition, position.clone()));
        Self {
            consumer,
            topic: topic.to_owned(),
            partition,
            next: position,
            read: READ_RECORDS.get(&[consumer, topic]),
        }
    }

    /// One record handed out; `next` is the offset after it.
    pub fn read(&self, next: u64) {
        self.read.inc();
        self.at(next);
    }

    /// The consumer's next offset moved (a commit, a skip).
    pub fn at(&self, next: u64) {
        self.next.store(next, Ordering::Relaxed);
    }
}

impl Drop for Consumed {
    fn drop(&mut self) {
        let mut all = POSITIONS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(_, _, _, p)| !Arc::ptr_eq(p, &self.next));
        let partition = self.partition.to_string();
        if !all
            .iter()
            .any(|(c, t, p, _)| *c == self.consumer && *t == self.topic && *p == self.partition)
        {
            CONSUMER_LAG.remove(&[self.consumer, &self.topic, &partition]);
        }
    }
}

/// Sets every consumer's lag from the partitions' end offsets; the binary calls it every few
/// seconds. A partition that does not answer keeps its last figure.
pub async fn refresh_lag(log: &dyn EventLog) {
    let positions: Vec<_> = POSITIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(c, t, p, next)| (*c, t.clone(), *p, next.clone()))
        .collect();
    for (consumer, topic, partition, next) in positions {
        if let Ok(range) = log.offsets(&topic, partition).await {
            let lag = range.end.saturating_sub(next.load(Ordering::Relaxed));
            CONSUMER_LAG
                .get(&[consumer, &topic, &partition.to_string()])
                .set(i64::try_from(lag).unwrap_or(i64::MAX));
        }
    }
}

/// The port with its appends measured: wrap either backend in it once, at start-up.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn EventLog>,
    backend: &'static str,
}

impl Metered {
    /// `backend` is `embedded` or `kafka`.
    pub fn new(inner: Arc<dyn EventLog>, backend: &'static str) -> Self {
        Self { inner, backend }
    }
}

#[async_trait]
impl EventLog for Metered {
    async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        self.inner.create_topic(spec).await
    }

    async fn partitions(&self, topic: &str) -> Result<u32> {
        self.inner.partitions(topic).await
    }

    async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
        options: &AppendOptions,
    ) -> Result<Vec<Position>> {
        let count = records.len() as u64;
        let bytes: usize = records.iter().map(|r| r.key.len() + r.value.len()).sum();
        let started = Instant::now();
        let result = self.inner.append(topic, records, options).await;
        let labels = [self.backend, topic];
        match &result {
            Ok(_) => {
                APPEND_LATENCY
                    .get(&labels)
                    .observe_duration(started.elapsed());
                APPENDED_RECORDS.get(&labels).add(count);
                APPENDED_BYTES.get(&labels).add(bytes as u64);
                // The embedded writer counts its group commits; a Kafka produce call is this.
                if self.backend != "embedded" {
                    APPEND_BATCH.get(&[self.backend]).observe(count as f64);
                }
            }
            Err(error) => FAILED_APPENDS
                .get(&[self.backend, topic, reason(error)])
                .inc(),
        }
        result
    }

    async fn claim(&self, topic: &str, partition: u32) -> Result<Fence> {
        self.inner.claim(topic, partition).await
    }

    async fn offsets(&self, topic: &str, partition: u32) -> Result<OffsetRange> {
        self.inner.offsets(topic, partition).await
    }

    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> Result<Vec<Record>> {
        self.inner.read(topic, partition, from, max).await
    }

    async fn tail(&self, topic: &str, partition: u32, start: StartAt) -> Result<Box<dyn Tail>> {
        self.inner.tail(topic, partition, start).await
    }

    async fn join_group(
        &self,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> Result<Box<dyn GroupMember>> {
        self.inner.join_group(group, topic, start).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{EmbeddedConfig, EmbeddedLog};

    #[tokio::test]
    async fn appends_and_a_consumers_lag_are_measured() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap();
        let log = Metered::new(Arc::new(log), "embedded");
        log.create_topic(&TopicSpec::new("metered", 1))
            .await
            .unwrap();
        let records = vec![NewRecord::new(b"k".to_vec(), b"v".to_vec()); 3];
        log.append("metered", records, &AppendOptions::default())
            .await
            .unwrap();
        let consumed = Consumed::new("query", "metered", 0, 1);
        refresh_lag(&log).await;
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains(
                "switchboard_log_appended_records_total{backend=\"embedded\",topic=\"metered\"} 3\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("switchboard_log_append_latency_seconds_count{backend=\"embedded\",topic=\"metered\"} 1\n"),
            "{out}"
        );
        let lag = "switchboard_log_consumer_lag_records{consumer=\"query\",topic=\"metered\",partition=\"0\"}";
        assert!(out.contains(&format!("{lag} 2\n")), "{out}");
        consumed.read(3);
        refresh_lag(&log).await;
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains(&format!("{lag} 0\n")), "{out}");
        drop(consumed);
        let mut out = String::new();
        render(&mut out);
        assert!(!out.contains(lag), "{out}");
    }
}
