//! Golden files: for every published (subject, version), the bytes of a sample frame and the
//! value it decodes to, under `tests/golden/<record>/v<version>.{hex,json}`. They are written
//! once, when a version is published (`SWITCHBOARD_BLESS=1`), and never rewritten: every later
//! build must still decode them to a value that contains everything they recorded (later
//! versions may add fields with defaults).

mod common;

use std::path::PathBuf;

use serde_json::Value as Json;
use switchboard_events::chain::{frame_hash, read_head};
use switchboard_events::codec::Frame;
use switchboard_events::registry::registry;
use switchboard_events::{AnyEvent, decode_any, fixtures, hex};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn to_json(event: &AnyEvent) -> Json {
    match event {
        AnyEvent::Conversation(e) => serde_json::to_value(e).unwrap(),
        AnyEvent::Agent(e) => serde_json::to_value(e).unwrap(),
    }
}

/// The newest sample frame of every schema id.
fn samples() -> Vec<(u32, Vec<u8>)> {
    let conversations = fixtures::conversation_history().into_iter().map(|(_, f)| f);
    let agents = fixtures::agent_history().into_iter().map(|(_, f)| f);
    let tenants = fixtures::tenant_history().into_iter().map(|(_, f)| f);
    conversations
        .chain(agents)
        .chain(tenants)
        .map(|f| (Frame::parse(&f).unwrap().schema_id, f))
        .collect()
}

#[test]
fn every_published_version_has_golden_files_that_still_decode() {
    let bless = std::env::var_os("SWITCHBOARD_BLESS").is_some();
    let mut missing = Vec::new();
    for version in registry().versions() {
        let dir = golden_dir().join(&version.record);
        let hex_path = dir.join(format!("v{}.hex", version.version));
        let json_path = dir.join(format!("v{}.json", version.version));
        if !hex_path.exists() {
            let Some((_, frame)) = samples().into_iter().find(|(id, _)| *id == version.id) else {
                missing.push(format!(
                    "{} v{} (no sample)",
                    version.record, version.version
                ));
                continue;
            };
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&hex_path, hex::encode(&frame) + "\n").unwrap();
                let json = to_json(&decode_any(&frame).unwrap());
                std::fs::write(
                    &json_path,
                    serde_json::to_string_pretty(&json).unwrap() + "\n",
                )
                .unwrap();
            }
            missing.push(format!("{} v{}", version.record, version.version));
            continue;
        }
        let frame = hex::decode(std::fs::read_to_string(&hex_path).unwrap().trim()).unwrap();
        let expected: Json =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(
            Frame::parse(&frame).unwrap().schema_id,
            version.id,
            "{}",
            hex_path.display()
        );
        assert_eq!(
            frame_hash(&frame).unwrap(),
            read_head(&frame).unwrap().hash,
            "{}: the chain hash of the bytes as written still verifies",
            hex_path.display()
        );
        let decoded =
            to_json(&decode_any(&frame).unwrap_or_else(|e| panic!("{}: {e}", hex_path.display())));
        assert!(
            common::json_contains(&decoded, &expected),
            "{} no longer decodes to what it recorded:\n{decoded:#}",
            hex_path.display()
        );
    }
    assert!(
        missing.is_empty(),
        "golden files missing (run once with SWITCHBOARD_BLESS=1): {missing:?}"
    );
}
