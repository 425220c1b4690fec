//! Rebuilding the read models: every partition of both topics replayed from its first
//! retained offset into the store under a fresh consumer name, with the same fold as the live
//! projector, so the rows come out the same. Rejected records are counted, not sent to the
//! dead letters again: the live projector sent them when it first met them.

use std::sync::Arc;

use switchboard_events::Topic;
use switchboard_log::EventLog;
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::LogPartition;

use crate::partition::PartitionProjector;
use crate::runner::ProjectorError;

/// What a rebuild did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub records: u64,
    pub rejected: u64,
}

/// Replays both topics from the start into `store` under checkpoints named `consumer`.
pub async fn rebuild(
    log: &dyn EventLog,
    store: Arc<dyn ReadModels>,
    consumer: &str,
    chunk: usize,
) -> Result<RebuildReport, ProjectorError> {
    rebuild_with_progress(log, store, consumer, chunk, &mut |_| {}).await
}

/// [`rebuild`], telling `progress` the records read so far after each chunk.
pub async fn rebuild_with_progress(
    log: &dyn EventLog,
    store: Arc<dyn ReadModels>,
    consumer: &str,
    chunk: usize,
    progress: &mut (dyn FnMut(&RebuildReport) + Send),
) -> Result<RebuildReport, ProjectorError> {
    let mut report = RebuildReport::default();
    // Agents first: conversation folds never read agent records, but a reader of a half-built
    // store sees consistent agents sooner.
    for topic in [Topic::Agents, Topic::Conversations] {
        let Ok(partitions) = log.partitions(topic.name()).await else {
            continue;
        };
        for partition in 0..partitions {
            let source = LogPartition::new(topic, partition);
            let mut projector = PartitionProjector::open(store.clone(), consumer, source).await?;
            let range = log.offsets(topic.name(), partition).await?;
            let mut offset = projector.next_offset().max(range.start);
            while offset < range.end {
                let records = log.read(topic.name(), partition, offset, chunk).await?;
                let Some(last) = records.last() else { break };
                offset = last.offset + 1;
                let projected = projector.project(&records).await?;
                report.records += records.len() as u64;
                report.rejected += projected.rejected.len() as u64;
                store.apply(&projected.batch).await?;
                if let Some(next) = projected.next_offset {
                    projector.committed(next);
                }
                progress(&report);
            }
        }
    }
    Ok(report)
}
