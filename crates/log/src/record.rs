//! Keyed byte records: what goes into the log and what comes out.

use crate::error::{LogError, Result};

/// A record header, e.g. trace context. Names need not be unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A record to append. The key picks the partition (Kafka's murmur2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch; `None` takes the append time.
    pub timestamp_ms: Option<i64>,
}

impl NewRecord {
    pub fn new(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        NewRecord {
            key: key.into(),
            value: value.into(),
            headers: Vec::new(),
            timestamp_ms: None,
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    pub fn with_timestamp_ms(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// The bytes this record counts against the record size limit.
    pub fn size(&self) -> usize {
        self.key.len()
            + self.value.len()
            + self
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.len())
                .sum::<usize>()
    }
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: u32,
    pub offset: u64,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: u32,
    pub offset: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<Header>,
    pub timestamp_ms: i64,
}

impl Record {
    pub fn position(&self) -> Position {
        Position {
            partition: self.partition,
            offset: self.offset,
        }
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_slice())
    }
}

/// Checks a batch before either backend takes it: not empty, no record over
/// `max` bytes, headers within what a frame can carry.
pub(crate) fn validate(records: &[NewRecord], max: usize) -> Result<()> {
    if records.is_empty() {
        return Err(LogError::EmptyBatch);
    }
    for (index, record) in records.iter().enumerate() {
        let size = record.size();
        if size > max {
            return Err(LogError::RecordTooLarge { index, size, max });
        }
        if record.headers.len() > usize::from(u16::MAX) {
            return Err(LogError::invalid(format!(
                "record {index} has {} headers, at most {} are allowed",
                record.headers.len(),
                u16::MAX
            )));
        }
        if let Some(h) = record
            .headers
            .iter()
            .find(|h| h.name.len() > usize::from(u16::MAX))
        {
            return Err(LogError::invalid(format!(
                "record {index} has a header name of {} bytes, at most {} are allowed",
                h.name.len(),
                u16::MAX
            )));
        }
    }
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
