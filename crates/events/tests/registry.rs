//! The schemas as a registry: complete, immutable once published, FULL_TRANSITIVE compatible,
//! personal data marked.

use serde_json::Value;
use switchboard_events::registry::{Registry, RegistryError, registry};
use switchboard_events::{AgentPayload, ConversationPayload, Payload, Topic};

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../schemas/avro/manifest.json"
);

/// `SWITCHBOARD_BLESS=1` records the fingerprints of versions not yet published. A published
/// fingerprint is never rewritten: changing a published schema needs a new version.
#[test]
fn every_version_is_published_with_its_fingerprint() {
    let unpublished: Vec<_> = registry()
        .versions()
        .iter()
        .filter(|v| v.published_fingerprint.is_empty())
        .collect();
    if unpublished.is_empty() {
        return;
    }
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        let mut text = std::fs::read_to_string(MANIFEST).unwrap();
        for version in &unpublished {
            text = text.replacen(
                "\"fingerprint\": \"\"",
                &format!("\"fingerprint\": \"{}\"", version.fingerprint),
                1,
            );
        }
        std::fs::write(MANIFEST, text).unwrap();
    }
    let names: Vec<_> = unpublished
        .iter()
        .map(|v| format!("{} v{}", v.subject, v.version))
        .collect();
    panic!("unpublished schema versions (run the tests once with SWITCHBOARD_BLESS=1): {names:?}");
}

#[test]
fn every_subject_is_full_transitive_compatible() {
    registry().check_compatibility().unwrap();
}

#[test]
fn every_event_kind_has_a_subject_named_by_topic_and_record() {
    let subjects: Vec<_> = registry().subjects().collect();
    for (topic, records) in [
        (Topic::Conversations, ConversationPayload::RECORDS),
        (Topic::Agents, AgentPayload::RECORDS),
    ] {
        for record in records {
            let subject = format!("{}-{}", topic.name(), record);
            assert!(subjects.contains(&subject.as_str()), "{subject} is missing");
        }
    }
    assert_eq!(
        subjects.len(),
        ConversationPayload::RECORDS.len() + AgentPayload::RECORDS.len()
    );
}

#[test]
fn schemas_are_self_contained_for_standard_tooling() {
    for version in registry().versions() {
        // Parses alone, with no other schema to resolve names against.
        apache_avro::Schema::parse_str(&version.schema_json)
            .unwrap_or_else(|e| panic!("{}: {e}", version.subject));
    }
}

/// Walks every field of a schema, with the field's JSON.
fn fields<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Array(list)) = object.get("fields") {
                for field in list {
                    out.push(field);
                    fields(&field["type"], out);
                }
            }
            for key in ["items", "values", "type"] {
                if let Some(inner) = object.get(key) {
                    fields(inner, out);
                }
            }
        }
        Value::Array(branches) => branches.iter().for_each(|b| fields(b, out)),
        _ => {}
    }
}

fn holds_sealed(ty: &Value) -> bool {
    match ty {
        Value::String(name) => name == "switchboard.Sealed",
        Value::Array(branches) => branches.iter().any(holds_sealed),
        Value::Object(object) => {
            object.get("name").and_then(Value::as_str) == Some("switchboard.Sealed")
        }
        _ => false,
    }
}

#[test]
fn personal_data_is_sealed_exactly_where_it_is_marked() {
    let mut marked = 0;
    for version in registry().versions() {
        let schema: Value = serde_json::from_str(&version.schema_json).unwrap();
        let mut all = Vec::new();
        fields(&schema, &mut all);
        for field in all {
            let pii = field.get("pii") == Some(&Value::Bool(true));
            let sealed = holds_sealed(&field["type"]);
            assert_eq!(
                pii, sealed,
                "{} field {}: pii mark and sealed type disagree",
                version.subject, field["name"]
            );
            marked += usize::from(pii);
        }
    }
    assert!(marked >= 5, "names, email, bodies and comments are marked");
}

fn files_with(edit: impl Fn(&str, &str) -> String) -> Vec<(String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/avro");
    let mut out = Vec::new();
    for dir in ["", "common/", "conversation/", "agent/"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = format!("{dir}{}", path.file_name().unwrap().to_str().unwrap());
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((name.clone(), edit(&name, &text)));
            }
        }
    }
    out
}

fn build(files: &[(String, String)]) -> Result<Registry, RegistryError> {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Registry::from_files(&refs)
}

#[test]
fn editing_a_published_schema_is_refused() {
    let files = files_with(|name, text| {
        if name == "conversation/MessagePosted.v1.avsc" {
            text.replace("\"private_note\"", "\"internal_note\"")
        } else {
            text.to_owned()
        }
    });
    let err = build(&files).unwrap_err();
    assert!(
        matches!(err, RegistryError::Changed { version: 1, .. }),
        "{err}"
    );
}

#[test]
fn duplicate_ids_and_unknown_types_are_refused() {
    let files = files_with(|name, text| {
        if name == "manifest.json" {
            text.replacen("\"id\": 2,", "\"id\": 1,", 1)
        } else {
            text.to_owned()
        }
    });
    assert_eq!(build(&files).unwrap_err(), RegistryError::DuplicateId(1));

    let files = files_with(|name, text| {
        if name == "conversation/MessageEdited.v1.avsc" {
            text.replace("switchboard.Sealed", "switchboard.Unsealed")
        } else {
            text.to_owned()
        }
    });
    assert!(matches!(
        build(&files).unwrap_err(),
        RegistryError::UnknownType { .. }
    ));
}
