//! Tailing one partition: woken by the writer when records become durable.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use super::partition::PartitionState;
use crate::error::{LogError, Result};
use crate::port::{StartAt, Tail};
use crate::record::Record;

/// How many records a tailer reads per wake-up at most.
const BATCH: usize = 256;

#[derive(Debug)]
pub(crate) struct PartitionTail {
    partition: Arc<PartitionState>,
    next: u64,
    end: watch::Receiver<u64>,
    buffered: VecDeque<Record>,
}

impl PartitionTail {
    pub fn new(partition: Arc<PartitionState>, start: StartAt) -> Result<Self> {
        let end = partition.end.subscribe();
        let next = partition.resolve(start)?;
        Ok(PartitionTail {
            partition,
            next,
            end,
            buffered: VecDeque::new(),
        })
    }
}

#[async_trait]
impl Tail for PartitionTail {
    async fn next(&mut self) -> Result<Record> {
        loop {
            if let Some(record) = self.buffered.pop_front() {
                return Ok(record);
            }
            let end = *self.end.borrow_and_update();
            if self.next < end {
                let records = self.partition.read(self.next, BATCH)?;
                if records.is_empty() {
                    // Retention overtook this tailer.
                    self.partition.resolve(StartAt::Offset(self.next))?;
                    continue;
                }
                self.next += records.len() as u64;
                self.buffered.extend(records);
                continue;
            }
            self.end.changed().await.map_err(|_| LogError::Closed {
                reason: "partition closed".into(),
            })?;
        }
    }
}
