//! The archive file format: an Avro object container file (deflate codec) of one record per
//! event, in (conversation, seq) order.
//!
//! The container's schema is the archive's own, `switchboard.archive.ArchivedEvent`, not an
//! event schema: each record holds the event's original frame, byte for byte (so the hash
//! chain verifies from it), with the ids that place it and the fields a timeline page filters
//! on, exactly as the hot timeline kept them (`private_note` included, which the projector
//! derives for edits and redactions of a note and the frame alone does not tell).
//!
//! Versions: the header's user metadata `switchboard.archive.format` holds the format version.
//! This build writes version [`FORMAT_VERSION`] and reads every version up to it; a newer file
//! is refused with [`StoreError::UnknownVersion`], never misread.

use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Reader, Schema, Writer};
use switchboard_events::envelope::ActorKind;
use switchboard_events::id::{ConversationId, MessageId, TenantId};
use switchboard_events::{Seq, Timestamp};

use crate::error::StoreError;
use crate::timeline::{EventKind, TimelineEntry};

/// The format this build writes.
pub const FORMAT_VERSION: u8 = 1;

/// The user-metadata key that holds the format version.
pub const FORMAT_KEY: &str = "switchboard.archive.format";

/// Version 1 of the record schema.
pub const SCHEMA_V1: &str = r#"{
  "type": "record",
  "name": "ArchivedEvent",
  "namespace": "switchboard.archive",
  "doc": "One archived conversation event: its original frame and the timeline's fields.",
  "fields": [
    {"name": "tenant", "type": "string"},
    {"name": "conversation", "type": "string"},
    {"name": "seq", "type": "long"},
    {"name": "occurred_at", "type": "long", "doc": "microseconds since the epoch, UTC"},
    {"name": "kind", "type": "int", "doc": "index of the payload in the event contract"},
    {"name": "actor", "type": {"type": "enum", "name": "ActorKind",
      "symbols": ["customer", "agent", "supervisor", "auditor", "system"]}},
    {"name": "private_note", "type": "boolean"},
    {"name": "message_id", "type": ["null", "string"], "default": null},
    {"name": "frame", "type": "bytes", "doc": "the event exactly as the log holds it"}
  ]
}"#;

const ACTORS: [ActorKind; 5] = [
    ActorKind::Customer,
    ActorKind::Agent,
    ActorKind::Supervisor,
    ActorKind::Auditor,
    ActorKind::System,
];
const ACTOR_SYMBOLS: [&str; 5] = ["customer", "agent", "supervisor", "auditor", "system"];

/// One record of an archive file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedEvent {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub entry: TimelineEntry,
}

fn corrupt(reason: impl ToString) -> StoreError {
    StoreError::corrupt("archive", reason)
}

fn schema() -> Result<Schema, StoreError> {
    Schema::parse_str(SCHEMA_V1).map_err(corrupt)
}

fn to_value(event: &ArchivedEvent) -> Value {
    let entry = &event.entry;
    let actor = ACTORS.iter().position(|a| *a == entry.actor).unwrap_or(4);
    let message_id = match &entry.message_id {
        Some(id) => Value::Union(1, Box::new(Value::String(id.as_str().to_owned()))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    Value::Record(vec![
        ("tenant".into(), Value::String(event.tenant.as_str().into())),
        (
            "conversation".into(),
            Value::String(event.conversation.as_str().into()),
        ),
        ("seq".into(), Value::Long(entry.seq.0 as i64)),
        ("occurred_at".into(), Value::Long(entry.occurred_at.0)),
        ("kind".into(), Value::Int(i32::from(entry.kind.0))),
        (
            "actor".into(),
            Value::Enum(actor as u32, ACTOR_SYMBOLS[actor].into()),
        ),
        ("private_note".into(), Value::Boolean(entry.private_note)),
        ("message_id".into(), message_id),
        ("frame".into(), Value::Bytes(entry.frame.clone())),
    ])
}

/// Writes the events as one container file. `marker` is the container's sync marker: the
/// archiver derives it from the file's name, so that the same events make the same bytes.
pub fn encode(events: &[ArchivedEvent], marker: [u8; 16]) -> Result<Vec<u8>, StoreError> {
    let schema = schema()?;
    let mut writer = Writer::builder()
        .schema(&schema)
        .writer(Vec::new())
        .codec(Codec::Deflate(DeflateSettings::default()))
        .marker(marker)
        .build()
        .map_err(corrupt)?;
    writer
        .add_user_metadata(FORMAT_KEY.to_owned(), FORMAT_VERSION.to_string())
        .map_err(corrupt)?;
    for event in events {
        writer.append_value(to_value(event)).map_err(corrupt)?;
    }
    writer.into_inner().map_err(corrupt)
}

/// Reads every record of a container file written by this or an older build.
pub fn decode(bytes: &[u8]) -> Result<Vec<ArchivedEvent>, StoreError> {
    let reader = Reader::new(bytes).map_err(corrupt)?;
    let version = match reader.user_metadata().get(FORMAT_KEY) {
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<u8>().ok())
            .ok_or_else(|| corrupt("format version is not a number"))?,
        None => return Err(corrupt("file has no format version")),
    };
    if version == 0 || version > FORMAT_VERSION {
        return Err(StoreError::UnknownVersion {
            table: "archive",
            version,
            newest: FORMAT_VERSION,
        });
    }
    reader
        .map(|value| from_value(value.map_err(corrupt)?))
        .collect()
}

fn from_value(value: Value) -> Result<ArchivedEvent, StoreError> {
    let Value::Record(fields) = value else {
        return Err(corrupt("record expected"));
    };
    let mut f = Fields(fields);
    let tenant = TenantId::new(f.string("tenant")?).map_err(corrupt)?;
    let conversation = ConversationId::new(f.string("conversation")?).map_err(corrupt)?;
    let seq = Seq(u64::try_from(f.long("seq")?).map_err(corrupt)?);
    let occurred_at = Timestamp(f.long("occurred_at")?);
    let kind = match f.take("kind")? {
        Value::Int(k) => EventKind(u8::try_from(k).map_err(corrupt)?),
        other => return Err(corrupt(format!("kind is {other:?}"))),
    };
    let actor = match f.take("actor")? {
        Value::Enum(i, _) => *ACTORS
            .get(i as usize)
            .ok_or_else(|| corrupt(format!("actor symbol {i}")))?,
        other => return Err(corrupt(format!("actor is {other:?}"))),
    };
    let private_note = match f.take("private_note")? {
        Value::Boolean(b) => b,
        other => return Err(corrupt(format!("private_note is {other:?}"))),
    };
    let message_id = match f.take("message_id")? {
        Value::Union(_, inner) => match *inner {
            Value::Null => None,
            Value::String(s) => Some(MessageId::new(s).map_err(corrupt)?),
            other => return Err(corrupt(format!("message_id is {other:?}"))),
        },
        other => return Err(corrupt(format!("message_id is {other:?}"))),
    };
    let frame = match f.take("frame")? {
        Value::Bytes(b) => b,
        other => return Err(corrupt(format!("frame is {other:?}"))),
    };
    Ok(ArchivedEvent {
        tenant,
        conversation,
        entry: TimelineEntry {
            seq,
            occurred_at,
            kind,
            actor,
            private_note,
            message_id,
            frame,
        },
    })
}

/// A record's fields, taken by name.
struct Fields(Vec<(String, Value)>);

impl Fields {
    fn take(&mut self, name: &str) -> Result<Value, StoreError> {
        let at = self
            .0
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| corrupt(format!("record has no field {name}")))?;
        Ok(self.0.swap_remove(at).1)
    }

    fn string(&mut self, name: &str) -> Result<String, StoreError> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            other => Err(corrupt(format!("{name} is {other:?}"))),
        }
    }

    fn long(&mut self, name: &str) -> Result<i64, StoreError> {
        match self.take(name)? {
            Value::Long(n) => Ok(n),
            other => Err(corrupt(format!("{name} is {other:?}"))),
        }
    }
}
