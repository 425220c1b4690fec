//! The event log: one port for appending, reading, tailing and consumer
//! groups over keyed byte records, with two backends:
//!
//! - [`embedded::EmbeddedLog`], the default: a durable log in segment files
//!   under one data directory, with group commit and crash recovery.
//! - `kafka::KafkaLog`: any Kafka-protocol broker through librdkafka (the default
//!   feature `kafka`; without it the crate builds no C).
//!
//! Both place a key on the partition Kafka's murmur2 partitioner picks, so a
//! conversation lands on the same partition whichever backend wrote it.
//! Services hold the log as `Arc<dyn EventLog>`.

pub mod embedded;
mod error;
pub mod follow;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod metrics;
mod port;
mod record;
pub mod trace;

#[cfg(test)]
mod suite;

pub use error::{ErrorDomain, LogError, Result};
pub use follow::Follow;
pub use port::{
    AppendOptions, EventLog, Fence, GroupEvent, GroupMember, OffsetRange, StartAt, Tail, TopicSpec,
};
pub use record::{Header, NewRecord, Position, Record};
