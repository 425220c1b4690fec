//! The formats a replay is written in: NDJSON (one audit line per event, see `render.rs`) or an
//! Avro object container file whose records carry each event's original frame, so that an
//! exported file verifies byte for byte and decodes with the schema registry.
//!
//! [`encode`] is the one loop that turns a replay into bytes: the HTTP API streams what it
//! hands out and the `switchboard` CLI writes it to a file, so the same replay gives the same
//! bytes on every path. For that, Avro files carry a fixed sync marker rather than a random one.

use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::types::Value;
use axum::body::Bytes;
use switchboard_events::id::ConversationId;

use crate::audit::Replay;
use crate::error::QueryError;
use crate::render;
use crate::source::Frame;

/// The schema of an exported Avro file's records.
pub const EXPORT_SCHEMA: &str = r#"{
  "type": "record",
  "name": "ExportedEvent",
  "namespace": "switchboard.export",
  "doc": "One event as the log holds it: `frame` is the Confluent-framed datum (magic byte 0, 4-byte schema id, Avro binary), whose schema the registry API serves under `schema_id`.",
  "fields": [
    {"name": "conversation_id", "type": "string"},
    {"name": "seq", "type": "long"},
    {"name": "schema_id", "type": "int"},
    {"name": "frame", "type": "bytes"}
  ]
}"#;

/// The sync marker of every exported Avro file: fixed, so an export is reproducible byte for
/// byte; random-looking, so it is as unlikely as a generated one to occur inside a block.
const SYNC_MARKER: [u8; 16] = [
    0x5b, 0x1e, 0xc4, 0x9a, 0x07, 0xd3, 0x62, 0xf8, 0x3c, 0xa1, 0x4e, 0x95, 0xb0, 0x2d, 0x77, 0xe6,
];

static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::parse_str(EXPORT_SCHEMA).expect("the export schema parses"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Avro,
}

impl Format {
    pub fn parse(name: &str) -> Result<Self, QueryError> {
        match name {
            "ndjson" => Ok(Self::Ndjson),
            "avro" => Ok(Self::Avro),
            other => Err(QueryError::invalid(format!(
                "unknown format {other:?}: `ndjson` or `avro`"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Avro => "application/avro",
        }
    }
}

/// Writes frames in a format, handing out the bytes ready so far.
pub enum Encoder {
    Ndjson(Vec<u8>),
    Avro(Box<apache_avro::Writer<'static, Vec<u8>>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ndjson(_) => "Encoder::Ndjson",
            Self::Avro(_) => "Encoder::Avro",
        })
    }
}

fn avro_error(e: apache_avro::Error) -> QueryError {
    QueryError::Internal(format!("avro export: {e}"))
}

impl Encoder {
    pub fn new(format: Format) -> Result<Self, QueryError> {
        Ok(match format {
            Format::Ndjson => Self::Ndjson(Vec::with_capacity(64 * 1024)),
            Format::Avro => Self::Avro(Box::new(
                apache_avro::Writer::builder()
                    .schema(&SCHEMA)
                    .writer(Vec::new())
                    .marker(SYNC_MARKER)
                    .build()
                    .map_err(avro_error)?,
            )),
        })
    }

    pub fn push(&mut self, conversation: &ConversationId, frame: &Frame) -> Result<(), QueryError> {
        match self {
            Self::Ndjson(out) => render::audit_line(&frame.bytes, out),
            Self::Avro(writer) => {
                let schema_id = frame
                    .bytes
                    .get(1..5)
                    .map_or(0, |id| i32::from_be_bytes([id[0], id[1], id[2], id[3]]));
                let record = Value::Record(vec![
                    (
                        "conversation_id".into(),
                        Value::String(conversation.to_string()),
                    ),
                    ("seq".into(), Value::Long(frame.seq.0 as i64)),
                    ("schema_id".into(), Value::Int(schema_id)),
                    ("frame".into(), Value::Bytes(frame.bytes.clone())),
                ]);
                writer.append_value(record).map_err(avro_error)?;
                Ok(())
            }
        }
    }

    /// The bytes complete so far (for Avro, the blocks written: a block per call).
    pub fn take(&mut self) -> Result<Bytes, QueryError> {
        let out = match self {
            Self::Ndjson(out) => std::mem::take(out),
            Self::Avro(writer) => {
                writer.flush().map_err(avro_error)?;
                std::mem::take(writer.get_mut())
            }
        };
        Ok(Bytes::from(out))
    }
}

/// A piece of an encoded replay: the bytes complete after one chunk of one conversation.
#[derive(Debug)]
pub struct Piece {
    pub conversation: Option<ConversationId>,
    /// Events encoded in `bytes`.
    pub events: usize,
    pub bytes: Bytes,
}

/// Encodes `replay` in `format`, handing each piece to `sink` as it is ready (the last one, the
/// end of the file, with no conversation). `sink` answers whether to go on. The error that
/// stopped the replay, or the encoder's, ends it: whatever was handed out is then incomplete.
pub async fn encode<Sent: Future<Output = bool>>(
    mut replay: Replay,
    format: Format,
    mut sink: impl FnMut(Piece) -> Sent,
) -> Result<(), QueryError> {
    let mut encoder = Encoder::new(format)?;
    while let Some(chunk) = replay.recv().await {
        let chunk = chunk?;
        for frame in &chunk.frames {
            encoder.push(&chunk.conversation, frame)?;
        }
        let piece = Piece {
            events: chunk.frames.len(),
            bytes: encoder.take()?,
            conversation: Some(chunk.conversation),
        };
        if !sink(piece).await {
            return Ok(());
        }
    }
    let rest = encoder.take()?;
    if !rest.is_empty() {
        sink(Piece {
            conversation: None,
            events: 0,
            bytes: rest,
        })
        .await;
    }
    Ok(())
}
