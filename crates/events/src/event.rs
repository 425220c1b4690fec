//! An event: an envelope and a payload, one Avro record per payload kind.

use serde::{Deserialize, Serialize};

use crate::avro::wire::{Datum, Reader};
use crate::envelope::Envelope;
use crate::error::DecodeError;

/// The Kafka topics that carry events of record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Topic {
    /// Conversation events, keyed by conversation id.
    Conversations,
    /// Agent events, keyed by tenant id so that one router sees all of a tenant's agents.
    Agents,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Conversations, Topic::Agents];

    pub fn name(self) -> &'static str {
        match self {
            Self::Conversations => "switchboard.conversations",
            Self::Agents => "switchboard.agents",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The payload kinds of one topic; each kind is its own Avro record.
pub trait Payload: Sized {
    const TOPIC: Topic;
    /// The envelope this topic's events carry.
    type Envelope: Envelope + Datum + Clone;
    /// The full Avro names of the kinds, in the order of [`Payload::kind_index`].
    const RECORDS: &'static [&'static str];

    fn kind_index(&self) -> usize;
    fn write(&self, out: &mut Vec<u8>);
    fn read(kind_index: usize, r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    fn record_name(&self) -> &'static str {
        Self::RECORDS[self.kind_index()]
    }
}

/// One event of record. Its Avro record is the envelope followed by the payload's fields.
///
/// In JSON (exports, the audit API, golden files) it is an object with the `envelope`, the
/// payload's `type` and the payload's fields.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "E: Serialize, P: Serialize"))]
#[serde(bound(deserialize = "E: Deserialize<'de>, P: Deserialize<'de>"))]
pub struct Event<E, P> {
    pub envelope: E,
    #[serde(flatten)]
    pub payload: P,
}

/// Declares the payload enum of a topic: one variant per Avro record.
macro_rules! payloads {
    (
        $(#[$doc:meta])*
        $name:ident for $topic:ident with $envelope:ty {
            $( $(#[$vdoc:meta])* $variant:ident($ty:ident) = $record:literal, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type")]
        pub enum $name {
            $( $(#[$vdoc])* #[serde(rename = $record)] $variant($ty), )*
        }

        impl $crate::event::Payload for $name {
            const TOPIC: $crate::event::Topic = $crate::event::Topic::$topic;
            type Envelope = $envelope;
            const RECORDS: &'static [&'static str] = &[$($record),*];

            fn kind_index(&self) -> usize {
                let mut _index = 0;
                $(
                    if let Self::$variant(_) = self {
                        return _index;
                    }
                    _index += 1;
                )*
                unreachable!("every variant is listed")
            }

            fn write(&self, out: &mut Vec<u8>) {
                match self {
                    $( Self::$variant(payload) => $crate::avro::wire::Datum::write(payload, out), )*
                }
            }

            fn read(
                kind_index: usize,
                r: &mut $crate::avro::wire::Reader<'_>,
            ) -> Result<Self, $crate::error::DecodeError> {
                let mut _index = 0;
                $(
                    if kind_index == _index {
                        return Ok(Self::$variant($crate::avro::wire::Datum::read(r)?));
                    }
                    _index += 1;
                )*
                Err($crate::error::DecodeError::InvalidIndex {
                    index: kind_index as i64,
                    count: _index,
                })
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(payload: $ty) -> Self {
                    Self::$variant(payload)
                }
            }
        )*
    };
}

pub(crate) use payloads;
