//! Events on the wire: Avro binary in the Confluent framing.
//!
//! A frame is the magic byte `0`, the 4-byte big-endian schema id and the Avro datum, exactly
//! what Confluent's serializers write, so standard Kafka and Avro tooling reads our topics with
//! the schemas the query service registry serves. Encoders always write a kind's newest schema
//! version; decoders read every version ever published: the newest directly, older ones by Avro
//! schema resolution to the newest.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::agent::AgentEvent;
use crate::avro::wire::{Datum, Reader};
use crate::conversation::ConversationEvent;
use crate::error::{DecodeError, EncodeError};
use crate::event::{Event, Payload, Topic};
use crate::registry::{Registry, registry};

/// The first byte of every frame.
pub const MAGIC: u8 = 0;
/// Magic byte and schema id.
pub const HEADER_LEN: usize = 5;
/// The largest frame encoded or decoded: the event log's default record limit.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// The header of a frame and its datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub schema_id: u32,
    pub datum: &'a [u8],
}

impl<'a> Frame<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::EmptyFrame);
        }
        if bytes.len() > MAX_FRAME_LEN {
            return Err(DecodeError::FrameTooLarge {
                len: bytes.len(),
                max: MAX_FRAME_LEN,
            });
        }
        if bytes[0] != MAGIC {
            return Err(DecodeError::BadMagic(bytes[0]));
        }
        let header: [u8; 4] = bytes
            .get(1..HEADER_LEN)
            .ok_or(DecodeError::Truncated)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(Self {
            schema_id: u32::from_be_bytes(header),
            datum: &bytes[HEADER_LEN..],
        })
    }
}

/// An event of any topic.
#[allow(
    clippy::large_enum_variant,
    reason = "decoded values are short-lived; boxing costs an allocation per event"
)]
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AnyEvent {
    Conversation(ConversationEvent),
    Agent(AgentEvent),
}

impl<P: Payload> Event<P::Envelope, P> {
    /// The event's frame under the newest schema of its kind.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the event's frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let record = self.payload.record_name();
        let id = registry()
            .latest_id(P::TOPIC, self.payload.kind_index())
            .ok_or(EncodeError::NoSchema { record })?;
        let start = out.len();
        out.push(MAGIC);
        out.extend_from_slice(&id.to_be_bytes());
        self.envelope.write(out);
        self.payload.write(out);
        let len = out.len() - start;
        if len > MAX_FRAME_LEN {
            out.truncate(start);
            return Err(EncodeError::TooLarge {
                len,
                max: MAX_FRAME_LEN,
            });
        }
        Ok(())
    }

    /// Decodes a frame of this topic with the schemas built into this binary.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        decode_with(registry(), frame)
    }
}

/// Decodes a frame of any topic.
pub fn decode_any(frame: &[u8]) -> Result<AnyEvent, DecodeError> {
    let parsed = Frame::parse(frame)?;
    let version = registry()
        .by_id(parsed.schema_id)
        .ok_or(DecodeError::UnknownSchemaId(parsed.schema_id))?;
    match version.topic {
        Topic::Conversations => ConversationEvent::decode(frame).map(AnyEvent::Conversation),
        Topic::Agents => AgentEvent::decode(frame).map(AnyEvent::Agent),
    }
}

/// Decodes a frame against `registry`.
pub fn decode_with<P: Payload>(
    registry: &Registry,
    frame: &[u8],
) -> Result<Event<P::Envelope, P>, DecodeError> {
    let frame = Frame::parse(frame)?;
    let id = frame.schema_id;
    let version = registry.by_id(id).ok_or(DecodeError::UnknownSchemaId(id))?;
    if version.topic != P::TOPIC {
        return Err(DecodeError::WrongTopic {
            id,
            found: version.topic.name(),
            expected: P::TOPIC.name(),
        });
    }
    if registry.is_latest(version) {
        return read_datum(version.kind_index, frame.datum);
    }
    // An older version: resolve to the newest, then read that.
    let newest = registry
        .latest_id(version.topic, version.kind_index)
        .and_then(|id| registry.by_id(id))
        .ok_or(DecodeError::UnknownSchemaId(id))?;
    let resolution = |e: apache_avro::Error| DecodeError::Resolution {
        id,
        reason: e.to_string(),
    };
    let reader = GenericDatumReader::builder(&version.schema)
        .reader_schema(&newest.schema)
        .build()
        .map_err(resolution)?;
    let mut input = frame.datum;
    let value = reader.read_value(&mut input).map_err(resolution)?;
    if !input.is_empty() {
        return Err(DecodeError::TrailingBytes { extra: input.len() });
    }
    let datum = GenericDatumWriter::builder(&newest.schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(resolution)?;
    read_datum(version.kind_index, &datum)
}

fn read_datum<P: Payload>(
    kind_index: usize,
    datum: &[u8],
) -> Result<Event<P::Envelope, P>, DecodeError> {
    let mut r = Reader::new(datum);
    let envelope = P::Envelope::read(&mut r)?;
    let payload = P::read(kind_index, &mut r)?;
    r.finish()?;
    Ok(Event { envelope, payload })
}
