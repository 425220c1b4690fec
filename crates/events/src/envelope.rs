//! The envelope every event carries: who, what stream, where in it, when, why, and the links of
//! the hash chain.
//!
//! The envelope is the first field of every event record, and `hash` is the envelope's first
//! field, so the first 32 bytes of every datum are the event's hash (see [`crate::chain`]).
//! The envelope only ever grows at its end, so its leading fields keep their position in every
//! schema version.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::avro::wire::{Datum, Reader, record, symbols, write_long};
use crate::error::DecodeError;
use crate::id::{AgentId, ConversationId, CorrelationId, EventId, PrincipalId, TenantId};

/// A SHA-256 link of the hash chain. [`ChainHash::GENESIS`] (all zeros) precedes seq 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct ChainHash(#[serde(with = "crate::hex::array")] pub [u8; 32]);

impl ChainHash {
    pub const GENESIS: Self = Self([0; 32]);
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", crate::hex::encode(&self.0[..8]))
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl Datum for ChainHash {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_fixed().map(Self)
    }
}

/// A point in time, in microseconds since the Unix epoch, UTC (`timestamp-micros`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(micros)
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }
}

impl Datum for Timestamp {
    fn write(&self, out: &mut Vec<u8>) {
        write_long(out, self.0);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_long().map(Self)
    }
}

/// A position in a stream: gapless, from 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    pub const FIRST: Self = Self(1);

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Datum for Seq {
    fn write(&self, out: &mut Vec<u8>) {
        write_long(out, self.0 as i64);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_long()? {
            n if n >= 1 => Ok(Self(n as u64)),
            n => Err(DecodeError::InvalidValue {
                field: "seq",
                reason: format!("{n} is below 1"),
            }),
        }
    }
}

/// What kind of principal acted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Customer,
    Agent,
    Supervisor,
    Auditor,
    /// switchboard itself: the router, the archiver, a timer.
    System,
}

symbols!(ActorKind {
    Customer,
    Agent,
    Supervisor,
    Auditor,
    System
});

/// Who caused an event. For a message, the actor is its author.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: PrincipalId,
}

record!(Actor { kind, id });

impl Actor {
    pub fn new(kind: ActorKind, id: impl AsRef<str>) -> Result<Self, crate::error::IdError> {
        Ok(Self {
            kind,
            id: PrincipalId::new(id.as_ref())?,
        })
    }

    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: PrincipalId::new("switchboard").expect("valid id"),
        }
    }
}

/// The fields every envelope shares, whatever stream it belongs to.
pub trait Envelope {
    fn hash(&self) -> ChainHash;
    fn prev_hash(&self) -> ChainHash;
    fn seq(&self) -> Seq;
    fn event_id(&self) -> EventId;
    fn tenant_id(&self) -> &TenantId;
    /// The id of the stream the chain runs along: a conversation or an agent.
    fn stream_id(&self) -> &str;
    fn occurred_at(&self) -> Timestamp;
}

macro_rules! envelope {
    ($(#[$doc:meta])* $name:ident, $stream:ident: $stream_ty:ty) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
        pub struct $name {
            /// This event's link; filled in by [`crate::chain`] when the event is framed.
            pub hash: ChainHash,
            /// The hash of the stream's previous event, [`ChainHash::GENESIS`] before seq 1.
            pub prev_hash: ChainHash,
            pub seq: Seq,
            pub event_id: EventId,
            pub tenant_id: TenantId,
            pub $stream: $stream_ty,
            pub occurred_at: Timestamp,
            pub actor: Actor,
            pub correlation_id: CorrelationId,
            pub causation_id: Option<CorrelationId>,
        }

        record!($name {
            hash, prev_hash, seq, event_id, tenant_id, $stream, occurred_at, actor,
            correlation_id, causation_id,
        });

        impl Envelope for $name {
            fn hash(&self) -> ChainHash {
                self.hash
            }
            fn prev_hash(&self) -> ChainHash {
                self.prev_hash
            }
            fn seq(&self) -> Seq {
                self.seq
            }
            fn event_id(&self) -> EventId {
                self.event_id
            }
            fn tenant_id(&self) -> &TenantId {
                &self.tenant_id
            }
            fn stream_id(&self) -> &str {
                self.$stream.as_str()
            }
            fn occurred_at(&self) -> Timestamp {
                self.occurred_at
            }
        }
    };
}

envelope!(
    /// The envelope of conversation events; the chain runs along the conversation.
    ConversationEnvelope, conversation_id: ConversationId
);
envelope!(
    /// The envelope of agent events; the chain runs along the agent.
    AgentEnvelope, agent_id: AgentId
);

/// The leading fields of any envelope, read without decoding the rest of the event: all the
/// verifier needs. Valid for every schema version because the envelope only grows at its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeHead {
    pub hash: ChainHash,
    pub prev_hash: ChainHash,
    pub seq: Seq,
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub stream_id: String,
}

impl EnvelopeHead {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            hash: ChainHash::read(r)?,
            prev_hash: ChainHash::read(r)?,
            seq: Seq::read(r)?,
            event_id: EventId::read(r)?,
            tenant_id: TenantId::read(r)?,
            stream_id: r.read_str()?.to_owned(),
        })
    }
}
