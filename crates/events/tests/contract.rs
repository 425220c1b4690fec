//! The contract against apache-avro and the `.avsc` files: what our hand-written codec writes
//! is exactly what the schemas say, for every kind of event.

mod common;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::Value as Json;
use switchboard_events::codec::Frame;
use switchboard_events::fixtures;
use switchboard_events::registry::registry;
use switchboard_events::{AgentEvent, AnyEvent, ConversationEvent, decode_any};

fn every_frame() -> Vec<(Json, Vec<u8>)> {
    let conversations = fixtures::conversation_history()
        .into_iter()
        .map(|(event, frame)| (serde_json::to_value(event).unwrap(), frame));
    let agents = fixtures::agent_history()
        .into_iter()
        .chain(fixtures::tenant_history())
        .map(|(event, frame)| (serde_json::to_value(event).unwrap(), frame));
    conversations.chain(agents).collect()
}

#[test]
fn every_event_kind_round_trips() {
    for (event, frame) in fixtures::conversation_history() {
        assert_eq!(ConversationEvent::decode(&frame).unwrap(), event);
        assert_eq!(
            decode_any(&frame).unwrap(),
            AnyEvent::Conversation(event.clone())
        );
        assert_eq!(
            event.encode().unwrap(),
            frame,
            "re-encoding is byte-identical"
        );
    }
    for (event, frame) in fixtures::agent_history()
        .into_iter()
        .chain(fixtures::tenant_history())
    {
        assert_eq!(AgentEvent::decode(&frame).unwrap(), event);
        assert_eq!(decode_any(&frame).unwrap(), AnyEvent::Agent(event));
    }
}

#[test]
fn the_samples_cover_every_kind() {
    let mut kinds: Vec<_> = every_frame()
        .iter()
        .map(|(_, frame)| Frame::parse(frame).unwrap().schema_id)
        .collect();
    kinds.sort();
    kinds.dedup();
    let mut ids: Vec<_> = registry().versions().iter().map(|v| v.id).collect();
    ids.sort();
    assert_eq!(kinds, ids, "a sample for every schema");
}

#[test]
fn apache_avro_reads_our_bytes_as_the_schema_says() {
    for (json, frame) in every_frame() {
        let parsed = Frame::parse(&frame).unwrap();
        let version = registry().by_id(parsed.schema_id).unwrap();
        let reader = GenericDatumReader::builder(&version.schema)
            .build()
            .unwrap();
        let mut input = parsed.datum;
        let value = reader.read_value(&mut input).unwrap();
        assert!(
            input.is_empty(),
            "{}: apache-avro left {} bytes",
            version.record,
            input.len()
        );

        let mut decoded = common::avro_to_json(&value);
        decoded["type"] = Json::String(version.record.clone());
        assert_eq!(decoded, json, "{}: field values by name", version.record);

        let rewritten = GenericDatumWriter::builder(&version.schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap();
        // Byte equality would be too strict: apache-avro writes map entries in hash order.
        let mut reframed = frame[..5].to_vec();
        reframed.extend_from_slice(&rewritten);
        assert_eq!(
            decode_any(&reframed).unwrap(),
            decode_any(&frame).unwrap(),
            "{}: we read what apache-avro writes",
            version.record
        );
    }
}

#[test]
fn frames_use_confluent_framing_with_the_newest_schema_id() {
    let (event, frame) = &fixtures::conversation_history()[3];
    assert_eq!(frame[0], 0, "magic byte");
    let id = u32::from_be_bytes(frame[1..5].try_into().unwrap());
    let version = registry().by_id(id).unwrap();
    assert_eq!(version.record, event.payload_record());
    assert_eq!(
        version.subject, "switchboard.conversations-switchboard.conversation.MessagePosted",
        "TopicRecordNameStrategy"
    );
}

trait PayloadRecord {
    fn payload_record(&self) -> &'static str;
}

impl PayloadRecord for ConversationEvent {
    fn payload_record(&self) -> &'static str {
        use switchboard_events::Payload;
        self.payload.record_name()
    }
}
