//! The single writer: group commit of every pending append.
//!
//! Appenders queue requests and wait; one thread takes everything queued,
//! writes it to the segment files, fsyncs each touched file once, publishes
//! the new durable ends and answers every request of the group. While it
//! fsyncs, the next group queues up — so the number of appends per fsync
//! grows with the number of concurrent appenders.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::active::{Active, open_active, roll, sync_in_parallel, write_staged};
use super::config::{Durability, EmbeddedConfig};
use super::partition::{TopicState, Topics};
use super::segment;
use crate::error::{LogError, Result};
use crate::record::{NewRecord, Position, now_ms};

/// One append: records already mapped to partitions.
#[derive(Debug)]
pub(crate) struct Request {
    pub topic: Arc<TopicState>,
    pub records: Vec<(u32, NewRecord)>,
    pub reply: oneshot::Sender<Result<Vec<Position>>>,
}

#[derive(Debug, Default)]
struct Queue {
    requests: Vec<Request>,
    closed: bool,
    /// While the writer lingers: the group size it waits for.
    want: usize,
}

/// How long the writer waits for the appenders of its last group to come
/// back before it commits a smaller one. Without it, N appenders settle
/// into two alternating groups of N/2: one queues while the other syncs.
const LINGER: Duration = Duration::from_micros(100);

/// Counters of the writer since the log opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedStats {
    /// Append calls answered successfully.
    pub appends: u64,
    /// Records in them.
    pub records: u64,
    /// Groups of appends committed together.
    pub groups: u64,
    /// fsyncs of segment files.
    pub fsyncs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    appends: AtomicU64,
    records: AtomicU64,
    groups: AtomicU64,
    fsyncs: AtomicU64,
}

/// The appenders' side of the writer.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    pub fn start(config: EmbeddedConfig, topics: Arc<Topics>) -> Result<Writer> {
        let shared = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let queue = Arc::clone(&shared);
        let counters = Arc::new(Counters::default());
        let writer_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("switchboard-log-writer".into())
            .spawn(move || WriterLoop::new(config, topics, writer_counters).run(&queue))
            .map_err(|e| LogError::io("spawn writer thread", "", e))?;
        Ok(Writer {
            shared,
            counters,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn submit(&self, request: Request) {
        let (lock, ready) = &*self.shared;
        let mut queue = lock.lock().unwrap_or_else(|p| p.into_inner());
        if queue.closed {
            let _ = request.reply.send(Err(LogError::Closed {
                reason: "log shut down".into(),
            }));
            return;
        }
        queue.requests.push(request);
        // Wake the writer when it sleeps on an empty queue, or when the
        // group it lingers for is complete; not for every request.
        let wake = queue.requests.len() == 1 || queue.requests.len() == queue.want;
        drop(queue);
        if wake {
            ready.notify_one();
        }
    }

    pub fn stats(&self) -> EmbeddedStats {
        let c = &self.counters;
        EmbeddedStats {
            appends: c.appends.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            groups: c.groups.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
        }
    }

    /// Finishes queued appends and stops the thread.
    pub fn shutdown(&self) {
        let (lock, ready) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        ready.notify_one();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A partition by its topic's identity: topics live as long as the log, so
/// the address is stable, and hashing it allocates nothing per record.
type PartitionKey = (usize, u32);

fn partition_key(topic: &Arc<TopicState>, partition: u32) -> PartitionKey {
    (Arc::as_ptr(topic) as usize, partition)
}

struct WriterLoop {
    config: EmbeddedConfig,
    topics: Arc<Topics>,
    counters: Arc<Counters>,
    active: HashMap<PartitionKey, Active>,
    /// Set after a failed write or fsync: the page cache can no longer be
    /// trusted, so every later append fails.
    poisoned: Option<String>,
    last_sync: Instant,
    last_retention: Instant,
}

impl WriterLoop {
    fn new(config: EmbeddedConfig, topics: Arc<Topics>, counters: Arc<Counters>) -> Self {
        WriterLoop {
            config,
            topics,
            counters,
            active: HashMap::new(),
            poisoned: None,
            last_sync: Instant::now(),
            last_retention: Instant::now(),
        }
    }

    fn run(mut self, shared: &(Mutex<Queue>, Condvar)) {
        let (lock, ready) = shared;
        let mut last_group = 0;
        loop {
            let (requests, closed) = {
                let mut queue = lock.lock().unwrap_or_else(|p| p.into_inner());
                while queue.requests.is_empty() && !queue.closed {
                    let (q, timeout) = ready
                        .wait_timeout(queue, self.next_timer())
                        .unwrap_or_else(|p| p.into_inner());
                    queue = q;
                    if timeout.timed_out() {
                        break;
                    }
                }
                if !queue.requests.is_empty() && queue.requests.len() < last_group {
                    let until = Instant::now() + LINGER;
                    queue.want = last_group;
                    while queue.requests.len() < last_group && !queue.closed {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        queue = ready
                            .wait_timeout(queue, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    queue.want = 0;
                }
                (std::mem::take(&mut queue.requests), queue.closed)
            };
            if !requests.is_empty() {
                last_group = requests.len();
                self.commit(requests);
            }
            self.timers();
            if closed
                && lock
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .requests
                    .is_empty()
            {
                self.sync_all();
                return;
            }
        }
    }

    fn next_timer(&self) -> Duration {
        let retention = self
            .config
            .retention_check
            .saturating_sub(self.last_retention.elapsed());
        match self.config.durability {
            Durability::Interval(every) => {
                retention.min(every.saturating_sub(self.last_sync.elapsed()))
            }
            _ => retention,
        }
        .max(Duration::from_millis(1))
    }

    fn timers(&mut self) {
        if let Durability::Interval(every) = self.config.durability
            && self.last_sync.elapsed() >= every
        {
            self.sync_all();
        }
        if self.last_retention.elapsed() >= self.config.retention_check {
            self.last_retention = Instant::now();
            super::retention::apply(&self.config.retention, &self.topics);
        }
    }

    /// Writes, syncs and answers one group of requests.
    fn commit(&mut self, requests: Vec<Request>) {
        if let Some(reason) = &self.poisoned {
            for r in requests {
                let _ = r.reply.send(Err(LogError::Closed {
                    reason: reason.clone(),
                }));
            }
            return;
        }
        let mut answers = Vec::with_capacity(requests.len());
        let mut touched: Vec<PartitionKey> = Vec::new();
        let mut failure = None;
        'requests: for request in requests {
            let mut positions = Vec::with_capacity(request.records.len());
            for (partition, record) in &request.records {
                let key = partition_key(&request.topic, *partition);
                match self.stage(&request.topic, *partition, record) {
                    Ok(offset) => positions.push(Position {
                        partition: *partition,
                        offset,
                    }),
                    Err(e) => {
                        failure = Some(e.to_string());
                        let _ = request.reply.send(Err(e));
                        continue 'requests;
                    }
                }
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
            answers.push((request.reply, positions));
        }
        if failure.is_none() {
            failure = self.flush(&touched).err().map(|e| e.to_string());
        }
        if let Some(reason) = failure {
            tracing::error!(%reason, "log writer failed; appends are refused until restart");
            self.poisoned = Some(reason.clone());
            for (reply, _) in answers {
                let _ = reply.send(Err(LogError::Closed {
                    reason: reason.clone(),
                }));
            }
            return;
        }
        let c = &self.counters;
        c.groups.fetch_add(1, Ordering::Relaxed);
        crate::metrics::group_commit(answers.iter().map(|(_, p)| p.len()).sum());
        c.appends.fetch_add(answers.len() as u64, Ordering::Relaxed);
        for (reply, positions) in answers {
            c.records
                .fetch_add(positions.len() as u64, Ordering::Relaxed);
            let _ = reply.send(Ok(positions));
        }
    }

    /// Encodes a record into its partition's buffer, rolling the segment
    /// when it is full. Returns the record's offset.
    fn stage(
        &mut self,
        topic: &Arc<TopicState>,
        partition: u32,
        record: &NewRecord,
    ) -> Result<u64> {
        let segment_bytes = self.config.segment_bytes;
        let active = match self.active.entry(partition_key(topic, partition)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let state = Arc::clone(topic.partition(partition)?);
                entry.insert(open_active(Arc::clone(topic), state)?)
            }
        };
        let pending = active.buf.len() as u64;
        if active.len + pending > segment_bytes && active.next > active.segment.base {
            roll(active)?;
        }
        let offset = active.next;
        let timestamp_ms = record.timestamp_ms.unwrap_or_else(now_ms);
        active
            .positions
            .push((active.len + active.buf.len() as u64) as u32);
        segment::encode(&mut active.buf, offset, timestamp_ms, record);
        active.max_timestamp_ms = active.max_timestamp_ms.max(timestamp_ms);
        active.next += 1;
        Ok(offset)
    }

    /// Writes the staged bytes, fsyncs per the durability policy, then makes
    /// the records visible to readers.
    fn flush(&mut self, touched: &[PartitionKey]) -> Result<()> {
        for key in touched {
            let active = self
                .active
                .get_mut(key)
                .expect("staged partitions are active");
            write_staged(active)?;
        }
        if self.config.durability == Durability::Always {
            let files: Vec<&Active> = touched.iter().map(|key| &self.active[key]).collect();
            sync_in_parallel(&files)?;
            for key in touched {
                self.active
                    .get_mut(key)
                    .expect("staged partitions are active")
                    .unsynced = false;
            }
            self.counters
                .fsyncs
                .fetch_add(touched.len() as u64, Ordering::Relaxed);
            self.last_sync = Instant::now();
        }
        let mut topics: Vec<&Arc<TopicState>> = Vec::new();
        for key in touched {
            let active = &self.active[key];
            active.partition.end.send_replace(active.next);
            if !topics.iter().any(|t| Arc::ptr_eq(t, &active.topic)) {
                topics.push(&active.topic);
            }
        }
        for topic in topics {
            topic.appended.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    fn sync_all(&mut self) {
        for active in self.active.values_mut().filter(|a| a.unsynced) {
            if let Err(e) = crate::metrics::fsync(|| active.file.sync_data()) {
                let reason = format!("fsync {} failed: {e}", active.segment.path.display());
                tracing::error!(%reason, "log writer failed; appends are refused until restart");
                self.poisoned = Some(reason);
                return;
            }
            active.unsynced = false;
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.last_sync = Instant::now();
    }
}
