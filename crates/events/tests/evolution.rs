//! Schema evolution: data written under any published version stays readable; a version that
//! would break FULL_TRANSITIVE compatibility is refused.

mod common;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use serde_json::{Value as Json, json};
use switchboard_events::codec::{Frame, decode_with};
use switchboard_events::registry::{Registry, check_pair, registry};
use switchboard_events::{ConversationEvent, ConversationPayload, fixtures};

const MESSAGE_POSTED: &str = "switchboard.conversations-switchboard.conversation.MessagePosted";

fn current_schema_json() -> Json {
    serde_json::from_str(&registry().version(MESSAGE_POSTED, 1).unwrap().schema_json).unwrap()
}

fn with_fields(mut schema: Json, edit: impl FnOnce(&mut Vec<Json>)) -> Schema {
    edit(schema["fields"].as_array_mut().unwrap());
    Schema::parse_str(&schema.to_string()).unwrap()
}

fn read(writer: &Schema, reader: &Schema, datum: &[u8]) -> Value {
    let mut input = datum;
    let value = GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .unwrap()
        .read_value(&mut input)
        .unwrap();
    assert!(input.is_empty());
    value
}

/// v1 is today's MessagePosted; v2 adds an optional field, as the next change would.
#[test]
fn an_added_optional_field_reads_both_ways() {
    let v1 = Schema::parse_str(&current_schema_json().to_string()).unwrap();
    let v2 = with_fields(current_schema_json(), |fields| {
        fields.push(json!({"name": "language", "type": ["null", "string"], "default": null}));
    });
    check_pair(&v1, &v2).unwrap();

    let (_, frame) = &fixtures::conversation_history()[3];
    let old_datum = Frame::parse(frame).unwrap().datum;
    let as_v2 = common::avro_to_json(&read(&v1, &v2, old_datum));
    assert_eq!(
        as_v2["language"],
        Json::Null,
        "old data reads with the new schema"
    );

    let mut new_value = read(&v1, &v2, old_datum);
    if let Value::Record(fields) = &mut new_value {
        let language = fields
            .iter_mut()
            .find(|(name, _)| name == "language")
            .unwrap();
        language.1 = Value::Union(1, Box::new(Value::String("de".into())));
    }
    let new_datum = GenericDatumWriter::builder(&v2)
        .build()
        .unwrap()
        .write_value_to_vec(new_value)
        .unwrap();
    let as_v1 = common::avro_to_json(&read(&v2, &v1, &new_datum));
    assert!(
        as_v1.get("language").is_none(),
        "new data reads with the old schema"
    );
    assert_eq!(as_v1["message_id"], "msg-4");
}

#[test]
fn a_field_added_without_a_default_is_incompatible() {
    let v1 = Schema::parse_str(&current_schema_json().to_string()).unwrap();
    let v2 = with_fields(current_schema_json(), |fields| {
        fields.push(json!({"name": "language", "type": "string"}));
    });
    assert!(check_pair(&v1, &v2).is_err());
    let v2 = with_fields(current_schema_json(), |fields| {
        let note = fields
            .iter_mut()
            .find(|f| f["name"] == "private_note")
            .unwrap();
        note["type"] = json!("string");
        note["default"] = json!("no");
    });
    assert!(
        check_pair(&v1, &v2).is_err(),
        "a changed field type is incompatible"
    );
}

/// Our decoder reads frames written under an older version by resolving them to the newest:
/// here a registry whose v1 of MessagePosted had no `private_note` yet and whose v2 is today's.
#[test]
fn frames_of_an_older_version_decode_into_todays_types() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/avro");
    let mut files: Vec<(String, String)> = Vec::new();
    for dir in ["common", "conversation", "agent", "tenant"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            let name = format!("{dir}/{}", path.file_name().unwrap().to_str().unwrap());
            files.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    let mut old: Json = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/conversation/MessagePosted.v1.avsc")).unwrap(),
    )
    .unwrap();
    old["fields"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f["name"] != "private_note");
    files.push(("conversation/MessagePosted.v0.avsc".into(), old.to_string()));

    let mut manifest: Json =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/manifest.json")).unwrap())
            .unwrap();
    for subject in manifest["subjects"].as_array_mut().unwrap() {
        if subject["record"] == "switchboard.conversation.MessagePosted" {
            let versions = subject["versions"].as_array_mut().unwrap();
            let mut older = versions[0].clone();
            older["file"] = json!("conversation/MessagePosted.v0.avsc");
            older["id"] = json!(900);
            older["fingerprint"] = json!("");
            versions[0]["version"] = json!(2);
            versions.insert(0, older);
        }
    }
    files.push(("manifest.json".into(), manifest.to_string()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let evolved = Registry::from_files(&refs).unwrap();
    evolved.check_compatibility().unwrap();

    // Write an old-style frame with apache-avro: today's sample without the new field.
    let (event, frame) = &fixtures::conversation_history()[4];
    let current = &registry().version(MESSAGE_POSTED, 1).unwrap().schema;
    let old_schema = &evolved.by_id(900).unwrap().schema;
    let value = read(current, old_schema, Frame::parse(frame).unwrap().datum);
    let mut old_frame = vec![0, 0, 0, 0x03, 0x84]; // schema id 900
    old_frame.extend(
        GenericDatumWriter::builder(old_schema)
            .build()
            .unwrap()
            .write_value_to_vec(value)
            .unwrap(),
    );

    let decoded: ConversationEvent = decode_with(&evolved, &old_frame).unwrap();
    assert_eq!(decoded.envelope, event.envelope);
    let ConversationPayload::MessagePosted(message) = decoded.payload else {
        panic!("a message")
    };
    assert!(!message.private_note, "the new field takes its default");
}
