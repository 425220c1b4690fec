//! Configuration of the embedded log.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{LogError, Result};

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before acknowledging; concurrent appenders share fsyncs.
    Always,
    /// fsync at most this long after an append; acknowledged on write, so a
    /// machine crash may lose the last interval.
    Interval(Duration),
    /// Leave flushing to the operating system.
    Never,
}

/// What to do with a damaged record in the middle of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Refuse to open, naming the file and byte offset. The default.
    Refuse,
    /// Truncate the partition at the damaged record, dropping it and every
    /// later record. An operator's explicit choice after inspection.
    TruncateCorruption,
}

/// What old records to delete. A segment goes as a whole, once every record
/// in it is past the limit; the active segment is never deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete segments whose newest record is older than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest segments while a partition is larger than this.
    pub max_bytes: Option<u64>,
}

/// Configuration of the embedded log.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The data directory; the log owns everything under it.
    pub dir: PathBuf,
    pub durability: Durability,
    pub recovery: Recovery,
    pub retention: Retention,
    /// A segment file rolls over past this size.
    pub segment_bytes: u64,
    /// The largest record accepted (key + value + headers).
    pub max_record_bytes: usize,
    /// How often the writer applies retention.
    pub retention_check: Duration,
}

impl EmbeddedConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            dir: dir.into(),
            durability: Durability::Always,
            recovery: Recovery::Refuse,
            retention: Retention::default(),
            segment_bytes: 128 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            retention_check: Duration::from_secs(60),
        }
    }
}

impl EmbeddedConfig {
    /// Rejects settings the segment format cannot hold.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.segment_bytes < 4096 || self.segment_bytes > u64::from(u32::MAX) {
            return Err(LogError::invalid(format!(
                "segment_bytes must be between 4096 and {}, not {}",
                u32::MAX,
                self.segment_bytes
            )));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_LIMIT {
            return Err(LogError::invalid(format!(
                "max_record_bytes must be between 1 and {MAX_RECORD_LIMIT}, not {}",
                self.max_record_bytes
            )));
        }
        Ok(())
    }
}

/// Frames carry u32 lengths; stay well clear of them.
const MAX_RECORD_LIMIT: usize = 256 * 1024 * 1024;
