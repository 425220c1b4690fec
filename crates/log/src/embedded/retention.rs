//! Retention: whole closed segments are deleted by age and by size.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::config::Retention;
use super::partition::{PartitionState, Topics};
use crate::record::now_ms;

/// Applies retention to every partition of every topic.
pub(crate) fn apply(retention: &Retention, topics: &Topics) {
    if retention.max_age.is_none() && retention.max_bytes.is_none() {
        return;
    }
    let partitions: Vec<Arc<PartitionState>> = topics
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .flat_map(|t| t.partitions.iter().cloned())
        .collect();
    for partition in partitions {
        apply_to(retention, &partition);
    }
}

/// Deletes the oldest closed segments of one partition that are past the
/// limits. Readers holding a deleted segment keep reading it: the file
/// stays open until they let go.
pub(crate) fn apply_to(retention: &Retention, partition: &PartitionState) {
    let cutoff_ms = retention
        .max_age
        .map(|age| now_ms() - age.as_millis() as i64);
    let removed = {
        let mut segments = partition
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut total: u64 = segments.iter().map(|s| s.lock().len).sum();
        let mut count = 0;
        while count + 1 < segments.len() {
            let (len, newest) = {
                let index = segments[count].lock();
                (index.len, index.max_timestamp_ms)
            };
            let too_old = cutoff_ms.is_some_and(|cutoff| newest < cutoff);
            let too_big = retention.max_bytes.is_some_and(|max| total > max);
            if !too_old && !too_big {
                break;
            }
            total -= len;
            count += 1;
        }
        if count == 0 {
            return;
        }
        partition
            .start
            .store(segments[count].base, Ordering::Release);
        segments.drain(..count).collect::<Vec<_>>()
    };
    for segment in removed {
        match std::fs::remove_file(&segment.path) {
            Ok(()) => {
                tracing::info!(file = %segment.path.display(), "segment deleted by retention")
            }
            Err(e) => {
                tracing::warn!(file = %segment.path.display(), error = %e, "segment not deleted")
            }
        }
    }
}
