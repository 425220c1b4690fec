//! What both kinds of shard do to take a partition: claim it, then fold it to its end.

use switchboard_events::Topic;
use switchboard_log::{EventLog, Fence, Record};

use crate::error::CommandError;
use crate::writer::shard::unavailable;

/// How many records one catch-up read takes.
const READ_CHUNK: usize = 1024;

/// Claims the partition when fencing is on (see `ownership.md`).
pub(crate) async fn claim(
    log: &dyn EventLog,
    topic: Topic,
    partition: u32,
    fencing: bool,
) -> Result<Option<Fence>, CommandError> {
    if !fencing {
        return Ok(None);
    }
    log.claim(topic.name(), partition)
        .await
        .map(Some)
        .map_err(unavailable)
}

/// Hands every record of the partition from `*next` to its end to `fold`, in order. `*next`
/// is one past the last record folded, also when a read fails part of the way.
pub(crate) async fn read_to_end(
    log: &dyn EventLog,
    topic: Topic,
    partition: u32,
    next: &mut u64,
    mut fold: impl FnMut(Record),
) -> Result<(), CommandError> {
    let range = log
        .offsets(topic.name(), partition)
        .await
        .map_err(unavailable)?;
    *next = (*next).max(range.start);
    while *next < range.end {
        let records = log
            .read(topic.name(), partition, *next, READ_CHUNK)
            .await
            .map_err(unavailable)?;
        let Some(last) = records.last() else { break };
        *next = last.offset + 1;
        records.into_iter().for_each(&mut fold);
    }
    Ok(())
}
