//! Topics and partitions as readers see them: segments and a durable end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::segment::Segment;
use crate::error::{LogError, Result};
use crate::port::{OffsetRange, StartAt};
use crate::record::Record;

/// How many bytes one read returns at most, whatever the record count.
pub(crate) const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;

/// One partition. The writer appends to the last segment and then moves
/// `end` forward; readers only ever read below `end`.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub topic: String,
    pub id: u32,
    pub dir: PathBuf,
    pub segments: RwLock<Vec<Arc<Segment>>>,
    /// The first retained offset.
    pub start: AtomicU64,
    /// The offset after the last durable record.
    pub end: watch::Sender<u64>,
}

impl PartitionState {
    pub fn new(topic: &str, id: u32, dir: PathBuf, segments: Vec<Arc<Segment>>) -> Self {
        let start = segments.first().map_or(0, |s| s.base);
        let end = segments.last().map_or(0, |s| s.end());
        PartitionState {
            topic: topic.to_owned(),
            id,
            dir,
            segments: RwLock::new(segments),
            start: AtomicU64::new(start),
            end: watch::Sender::new(end),
        }
    }

    pub fn offsets(&self) -> OffsetRange {
        OffsetRange {
            start: self.start.load(Ordering::Acquire),
            end: *self.end.borrow(),
        }
    }

    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves where a reader starts.
    pub fn resolve(&self, start: StartAt) -> Result<u64> {
        let range = self.offsets();
        match start {
            StartAt::Earliest => Ok(range.start),
            StartAt::Latest => Ok(range.end),
            StartAt::Offset(offset) => {
                self.check(offset, range)?;
                Ok(offset)
            }
        }
    }

    fn check(&self, offset: u64, range: OffsetRange) -> Result<()> {
        if offset < range.start || offset > range.end {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.id,
                offset,
                start: range.start,
                end: range.end,
            });
        }
        Ok(())
    }

    /// Reads up to `max` durable records from `from`, and about
    /// `MAX_READ_BYTES` at most (but always one record).
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Record>> {
        let range = self.offsets();
        self.check(from, range)?;
        let want = max.min((range.end - from) as usize);
        let mut out = Vec::with_capacity(want);
        if want == 0 {
            return Ok(out);
        }
        let segments = self.segments();
        let mut i = segments
            .partition_point(|s| s.base <= from)
            .saturating_sub(1);
        let mut next = from;
        let mut bytes = 0;
        while out.len() < want && bytes < MAX_READ_BYTES && i < segments.len() {
            let segment = &segments[i];
            if next < segment.base {
                // Retention removed what we were reading.
                break;
            }
            if next >= segment.end() {
                i += 1;
                continue;
            }
            let before = out.len();
            bytes += segment.read(
                self.id,
                next,
                want - out.len(),
                MAX_READ_BYTES - bytes,
                &mut out,
            )?;
            next += (out.len() - before) as u64;
        }
        Ok(out)
    }
}

/// Every topic of the log, by name.
pub(crate) type Topics = RwLock<HashMap<String, Arc<TopicState>>>;

/// A topic: its partitions, and a counter bumped whenever any of them grows,
/// which consumer-group members wait on.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub name: String,
    pub partitions: Vec<Arc<PartitionState>>,
    pub appended: watch::Sender<u64>,
}

impl TopicState {
    pub fn new(name: &str, partitions: Vec<Arc<PartitionState>>) -> Self {
        TopicState {
            name: name.to_owned(),
            partitions,
            appended: watch::Sender::new(0),
        }
    }

    pub fn partition(&self, partition: u32) -> Result<&Arc<PartitionState>> {
        self.partitions
            .get(partition as usize)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: self.name.clone(),
                partition,
                partitions: self.partitions.len() as u32,
            })
    }
}

/// Topic and group names become file names: Kafka's rules keep them safe.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(LogError::invalid(format!(
            "{kind} name {name:?} must be 1 to 249 characters of [a-zA-Z0-9._-]"
        )))
    }
}
