//! Errors of the log, classified by who can fix them.

use std::io;
use std::path::PathBuf;

/// Who can act on an error: the caller (bad input), the environment (disk,
/// broker, network), or us (a bug or a broken invariant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDomain {
    /// The request was wrong; retrying it unchanged fails the same way.
    User,
    /// Something outside the process failed: a disk, a broker, the network.
    External,
    /// The log itself is in a state it should never reach.
    Internal,
}

/// Everything the event log can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("empty batch: an append needs at least one record")]
    EmptyBatch,
    #[error(
        "record too large: record {index} of the batch is {size} bytes, the limit is {max} bytes"
    )]
    RecordTooLarge {
        index: usize,
        size: usize,
        max: usize,
    },
    #[error("unknown topic: {topic}")]
    UnknownTopic { topic: String },
    #[error(
        "unknown partition: {topic} has {partitions} partitions, asked for partition {partition}"
    )]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error(
        "offset out of range: {topic}/{partition} holds offsets {start}..{end}, asked for {offset}"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "topic conflict: {topic} exists with {existing} partitions, asked for {requested}: a key \
         would map to another partition than the one its records are in, so the topic is left \
         as it is (configure {existing} partitions, or move the data to a new topic)"
    )]
    TopicConflict {
        topic: String,
        existing: u32,
        requested: u32,
    },
    #[error("invalid argument: {reason}")]
    Invalid { reason: String },
    #[error("corrupt log: {file} at byte {position}: {reason}")]
    Corrupt {
        file: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("log i/o failed: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("data directory in use: {dir} is locked by another process")]
    Locked { dir: PathBuf },
    #[error(
        "fenced: {topic}/{partition} was claimed by a newer writer (epoch {current}); this writer held epoch {held}"
    )]
    Fenced {
        topic: String,
        partition: u32,
        held: u64,
        current: u64,
    },
    #[error("log is closed: {reason}")]
    Closed { reason: String },
    #[error("kafka {op} failed: {message}")]
    Kafka {
        op: &'static str,
        message: String,
        retriable: bool,
    },
}

/// Shorthand for results of the log.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl LogError {
    /// Who can act on this error.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            LogError::EmptyBatch
            | LogError::RecordTooLarge { .. }
            | LogError::UnknownTopic { .. }
            | LogError::UnknownPartition { .. }
            | LogError::OffsetOutOfRange { .. }
            | LogError::TopicConflict { .. }
            | LogError::Invalid { .. } => ErrorDomain::User,
            LogError::Io { .. }
            | LogError::Kafka { .. }
            | LogError::Corrupt { .. }
            | LogError::Locked { .. }
            | LogError::Fenced { .. } => ErrorDomain::External,
            LogError::Closed { .. } => ErrorDomain::Internal,
        }
    }

    /// Whether the same request may succeed if tried again later.
    pub fn is_retriable(&self) -> bool {
        match self {
            LogError::Kafka { retriable, .. } => *retriable,
            LogError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        LogError::Invalid {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_a_user_error_and_not_retriable() {
        let err = LogError::RecordTooLarge {
            index: 2,
            size: 2_000_000,
            max: 1_048_576,
        };
        assert_eq!(err.domain(), ErrorDomain::User);
        assert!(!err.is_retriable());
        assert_eq!(
            err.to_string(),
            "record too large: record 2 of the batch is 2000000 bytes, the limit is 1048576 bytes"
        );
    }

    #[test]
    fn broker_errors_carry_their_retry_hint() {
        let err = LogError::Kafka {
            op: "produce",
            message: "broker transport failure".into(),
            retriable: true,
        };
        assert_eq!(err.domain(), ErrorDomain::External);
        assert!(err.is_retriable());
    }
}
