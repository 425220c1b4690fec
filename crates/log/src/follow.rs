//! Following one partition for as long as the process runs: the one loop every service uses to
//! tail the log (the edge's live fan-out, the query cache, the router, the signal bus).
//!
//! A [`Follow`] knows the offset of the next record it will hand out, so a caller can say
//! exactly where it stands. A read error never ends it: the tail is reopened at that offset
//! after a backoff (doubling from 10 ms to 5 s), and the error is logged once per outage, not
//! once per try. Only an offset the log no longer retains moves it forward, to the oldest
//! retained record, with an error, since the records in between are gone for this follower.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Consumed;
use crate::{EventLog, LogError, Record, StartAt, Tail};

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A tail of one partition that survives read errors.
#[derive(Debug)]
pub struct Follow {
    log: Arc<dyn EventLog>,
    topic: String,
    partition: u32,
    next: u64,
    tail: Option<Box<dyn Tail>>,
    consumed: Option<Consumed>,
}

impl Follow {
    /// Positions a follower at `start`, resolved to an offset now: a record appended after this
    /// returns is never missed. Fails only when the partition cannot be reached at all.
    pub async fn start(
        log: Arc<dyn EventLog>,
        topic: &str,
        partition: u32,
        start: StartAt,
    ) -> Result<Self, LogError> {
        let range = log.offsets(topic, partition).await?;
        let next = match start {
            StartAt::Earliest => range.start,
            StartAt::Latest => range.end,
            StartAt::Offset(offset) => offset.clamp(range.start, range.end),
        };
        let tail = log.tail(topic, partition, StartAt::Offset(next)).await?;
        Ok(Self {
            log,
            topic: topic.to_owned(),
            partition,
            next,
            tail: Some(tail),
            consumed: None,
        })
    }

    /// Counts what this follower reads, and its lag, as `consumer` (a value of the `consumer`
    /// label: `edge`, `router`, `query`, …).
    pub fn counted(mut self, consumer: &'static str) -> Self {
        self.consumed = Some(Consumed::new(
            consumer,
            &self.topic,
            self.partition,
            self.next,
        ));
        self
    }

    /// The partition followed.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// The offset of the next record [`Follow::next`] returns: every record before it has
    /// been handed out already.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next record, waiting for one to be appended. Retries through errors forever; drop
    /// the future (e.g. in a `select!` with a shutdown signal) to stop.
    pub async fn next(&mut self) -> Record {
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        loop {
            let result = match self.tail.as_mut() {
                Some(tail) => tail.next().await,
                None => self.reopen().await,
            };
            match result {
                Ok(record) if record.offset < self.next => continue, // a redelivery
                Ok(record) => {
                    if failing {
                        tracing::info!(topic = %self.topic, partition = self.partition, offset = record.offset, "log follower recovered");
                    }
                    self.next = record.offset + 1;
                    if let Some(consumed) = &self.consumed {
                        consumed.read(self.next);
                    }
                    return record;
                }
                Err(error) => {
                    self.tail = None;
                    if !failing {
                        tracing::warn!(topic = %self.topic, partition = self.partition, offset = self.next, %error, "log follower failed; retrying with backoff");
                        failing = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Opens a new tail at the position; skips forward when the position is no longer held.
    async fn reopen(&mut self) -> Result<Record, LogError> {
        let range = self.log.offsets(&self.topic, self.partition).await?;
        if self.next < range.start {
            tracing::error!(topic = %self.topic, partition = self.partition, from = self.next, to = range.start, "log follower fell behind retention: records skipped");
            self.next = range.start;
        }
        let mut tail = self
            .log
            .tail(&self.topic, self.partition, StartAt::Offset(self.next))
            .await?;
        let record = tail.next().await;
        self.tail = Some(tail);
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{EmbeddedConfig, EmbeddedLog};
    use crate::{AppendOptions, NewRecord, TopicSpec};

    async fn log_with(records: usize) -> (tempfile::TempDir, Arc<dyn EventLog>) {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap();
        log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
        for i in 0..records {
            let record = NewRecord::new(b"k".to_vec(), format!("v{i}").into_bytes());
            log.append("t", vec![record], &AppendOptions::default())
                .await
                .unwrap();
        }
        (dir, Arc::new(log))
    }

    #[tokio::test]
    async fn starts_where_asked_and_reports_its_position() {
        let (_dir, log) = log_with(3).await;
        let mut from_start = Follow::start(log.clone(), "t", 0, StartAt::Earliest)
            .await
            .unwrap();
        assert_eq!(from_start.position(), 0);
        assert_eq!(from_start.next().await.offset, 0);
        assert_eq!(from_start.position(), 1);

        let mut latest = Follow::start(log.clone(), "t", 0, StartAt::Latest)
            .await
            .unwrap();
        assert_eq!(latest.position(), 3, "latest is the end, as a number");
        let beyond = Follow::start(log.clone(), "t", 0, StartAt::Offset(99))
            .await
            .unwrap();
        assert_eq!(beyond.position(), 3, "an offset past the end clamps to it");
        let record = NewRecord::new(b"k".to_vec(), b"late".to_vec());
        log.append("t", vec![record], &AppendOptions::default())
            .await
            .unwrap();
        let next = latest.next().await;
        assert_eq!((next.offset, next.value.as_slice()), (3, &b"late"[..]));
    }

    #[tokio::test]
    async fn a_follower_without_a_tail_reopens_at_its_position() {
        let (_dir, log) = log_with(5).await;
        let mut follow = Follow::start(log, "t", 0, StartAt::Offset(2))
            .await
            .unwrap();
        assert_eq!(follow.next().await.offset, 2);
        // As after a read error: the tail is gone and the next call reopens it.
        follow.tail = None;
        assert_eq!(follow.next().await.offset, 3);
        assert_eq!(follow.next().await.offset, 4);
    }
}
