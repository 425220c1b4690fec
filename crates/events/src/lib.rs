//! The event contract of switchboard.
//!
//! Everything that happens in a conversation, or to an agent, is an immutable [`Event`]: an
//! [`envelope`] (ids, seq, time, actor, hash-chain links) and a payload, one Avro record per
//! kind ([`conversation`], [`agent`], a tenant's settings in [`tenant`]). This crate defines the types, their Avro encoding in the
//! Confluent framing ([`codec`]), the schemas and their compatibility rules ([`registry`]),
//! Kafka's key partitioner ([`partition`]), the hash chain ([`chain`]) and the sealing of
//! personal data ([`personal`]).
//!
//! It does no I/O: no network, no files, no clock beyond reading the time and the system
//! random generator.

pub mod agent;
mod avro;
pub mod chain;
pub mod codec;
pub mod conversation;
pub mod envelope;
pub mod error;
pub mod event;
pub mod fixtures;
pub mod hex;
pub mod id;
pub mod metrics;
pub mod partition;
pub mod personal;
pub mod principal;
pub mod rate;
pub mod registry;
pub mod status;
pub mod tenant;
pub mod token;
pub mod visitor;

pub use agent::{AgentEvent, AgentPayload};
pub use codec::{AnyEvent, decode_any};
pub use conversation::{ConversationEvent, ConversationPayload};
pub use envelope::{ChainHash, Seq, Timestamp};
pub use error::{DecodeError, EncodeError, IdError};
pub use event::{Event, Payload, Topic};
