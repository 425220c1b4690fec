//! The active segment of each partition, as the writer holds it: staged
//! bytes, the append handle, segment rolls and fsyncs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Arc;

use super::partition::{PartitionState, TopicState};
use super::recovery;
use super::segment::{self, Segment, SegmentIndex};
use crate::error::{LogError, Result};

/// The active segment of a partition, open for appending.
pub(crate) struct Active {
    pub topic: Arc<TopicState>,
    pub partition: Arc<PartitionState>,
    pub segment: Arc<Segment>,
    pub file: File,
    pub len: u64,
    pub next: u64,
    pub buf: Vec<u8>,
    pub positions: Vec<u32>,
    pub max_timestamp_ms: i64,
    /// Written since the last fsync.
    pub unsynced: bool,
}

/// fsyncs several segment files at once: the file system merges
/// concurrent syncs into fewer journal commits, so a group touching many
/// partitions costs little more than one touching a single partition.
pub(crate) fn sync_in_parallel(files: &[&Active]) -> Result<()> {
    let sync = |active: &Active| {
        crate::metrics::fsync(|| active.file.sync_data())
            .map_err(|e| LogError::io("fsync segment", &active.segment.path, e))
    };
    let Some((last, rest)) = files.split_last() else {
        return Ok(());
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = rest.iter().map(|a| scope.spawn(move || sync(a))).collect();
        let mine = sync(last);
        others
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(LogError::Closed {
                        reason: "fsync thread panicked".into(),
                    })
                })
            })
            .chain([mine])
            .collect::<Result<Vec<()>>>()
            .map(drop)
    })
}

pub(crate) fn open_active(
    topic: Arc<TopicState>,
    partition: Arc<PartitionState>,
) -> Result<Active> {
    let segment = Arc::clone(
        partition
            .segments()
            .last()
            .expect("a partition has a segment"),
    );
    let file = OpenOptions::new()
        .append(true)
        .open(&segment.path)
        .map_err(|e| LogError::io("open segment for append", &segment.path, e))?;
    let (len, next) = {
        let index = segment.lock();
        (index.len, segment.base + index.positions.len() as u64)
    };
    Ok(Active {
        topic,
        partition,
        segment,
        file,
        len,
        next,
        buf: Vec::with_capacity(64 * 1024),
        positions: Vec::new(),
        max_timestamp_ms: i64::MIN,
        unsynced: false,
    })
}

/// Appends the staged bytes to the segment file and extends its index.
/// Readers still stop at the partition's published end.
pub(crate) fn write_staged(active: &mut Active) -> Result<()> {
    if active.buf.is_empty() {
        return Ok(());
    }
    active
        .file
        .write_all(&active.buf)
        .map_err(|e| LogError::io("write segment", &active.segment.path, e))?;
    active.len += active.buf.len() as u64;
    active.unsynced = true;
    active.buf.clear();
    let mut index = active.segment.lock();
    index.positions.append(&mut active.positions);
    index.len = active.len;
    index.max_timestamp_ms = index.max_timestamp_ms.max(active.max_timestamp_ms);
    Ok(())
}

/// Closes the full segment (written and synced) and starts the next one.
pub(crate) fn roll(active: &mut Active) -> Result<()> {
    write_staged(active)?;
    crate::metrics::fsync(|| active.file.sync_data())
        .map_err(|e| LogError::io("fsync segment", &active.segment.path, e))?;
    let path = recovery::create_segment(&active.partition.dir, active.next)?;
    let segment = Arc::new(Segment::new(
        active.next,
        path.clone(),
        SegmentIndex {
            len: segment::FILE_HEADER_LEN,
            ..Default::default()
        },
    )?);
    active.file = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| LogError::io("open segment for append", &path, e))?;
    active
        .partition
        .segments
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .push(Arc::clone(&segment));
    active.segment = segment;
    active.len = segment::FILE_HEADER_LEN;
    active.max_timestamp_ms = i64::MIN;
    active.unsynced = false;
    Ok(())
}
