//! Audit replay, verification and export: in order, from every source, and a tampered history
//! reports its first bad seq.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;
use switchboard_events::chain::{self, Problem, Verdict};
use switchboard_events::personal::DataKey;
use switchboard_events::principal::Role;
use switchboard_events::{Seq, Topic};
use switchboard_events::{fixtures, hex};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, NewRecord, TopicSpec};
use switchboard_store::ReadModels;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};

use super::{World, history, project, records, token};
use crate::source::{LogSource, Sources};

fn lines(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn frames(lines: &[Value]) -> Vec<Vec<u8>> {
    lines
        .iter()
        .map(|l| hex::decode(l["frame"].as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_conversation_replays_in_order_and_verifies_from_its_lines() {
    let world = World::new().await;
    let auditor = token("acme", Role::Auditor, "audit-1");
    let (status, body) = world
        .get("/v1/conversations/conv-a/replay", Some(&auditor))
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines = lines(&body);
    let n = history("acme", "conv-a", &DataKey::from_bytes([1; 32])).len();
    assert_eq!(lines.len(), n);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1);
        assert_eq!(line["event"]["envelope"]["conversation_id"], "conv-a");
    }
    let frames = frames(&lines);
    assert!(matches!(
        chain::verify(frames.iter().map(Vec::as_slice)),
        Verdict::Intact { events, .. } if events == n as u64
    ));
    let verdict = world
        .json("/v1/conversations/conv-a/verify", &auditor)
        .await;
    assert_eq!(verdict["verdict"], "intact");
    assert_eq!(verdict["events"], n as u64);

    for role in [Role::Agent, Role::Supervisor, Role::Customer] {
        let other = token("acme", role, "cust-1");
        for uri in [
            "/v1/conversations/conv-a/replay",
            "/v1/conversations/conv-a/verify",
        ] {
            assert_eq!(world.get(uri, Some(&other)).await.0, StatusCode::FORBIDDEN);
        }
    }
}

#[tokio::test]
async fn a_tenant_range_replays_conversation_by_conversation() {
    let world = World::new().await;
    let auditor = token("acme", Role::Auditor, "audit-1");
    let (status, body) = world
        .get("/v1/replay?from=0&to=9000000000000000", Some(&auditor))
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines = lines(&body);
    let ids: Vec<_> = lines
        .iter()
        .map(|l| l["event"]["envelope"]["conversation_id"].as_str().unwrap())
        .collect();
    let half = ids.len() / 2;
    assert!(ids[..half].iter().all(|id| *id == "conv-a"));
    assert!(ids[half..].iter().all(|id| *id == "conv-a2"));
    let (_, empty) = world.get("/v1/replay?from=0&to=1", Some(&auditor)).await;
    assert!(
        empty.is_empty(),
        "nothing occurred before 1970-01-01T00:00:00.000001Z"
    );
    let (status, _) = world.get("/v1/replay?from=5&to=5", Some(&auditor)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn exports_come_as_ndjson_or_an_avro_container_of_original_frames() {
    let world = World::new().await;
    let sup = token("acme", Role::Supervisor, "sup-1");
    let (status, ndjson) = world
        .get("/v1/conversations/conv-a/export", Some(&sup))
        .await;
    assert_eq!(status, StatusCode::OK);
    let expected = frames(&lines(&ndjson));
    let (status, avro) = world
        .get("/v1/conversations/conv-a/export?format=avro", Some(&sup))
        .await;
    assert_eq!(status, StatusCode::OK);
    let reader = apache_avro::Reader::new(&avro[..]).unwrap();
    let mut got = Vec::new();
    for value in reader {
        let apache_avro::types::Value::Record(fields) = value.unwrap() else {
            panic!("records");
        };
        let apache_avro::types::Value::Bytes(frame) = &fields[3].1 else {
            panic!("frame is bytes");
        };
        got.push(frame.clone());
    }
    assert_eq!(got, expected);
    let (_, again) = world
        .get("/v1/conversations/conv-a/export?format=avro", Some(&sup))
        .await;
    assert_eq!(again, avro, "the same export gives the same bytes");
    let (status, empty) = world
        .get("/v1/export?from=0&to=1&format=avro", Some(&sup))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        apache_avro::Reader::new(&empty[..]).unwrap().count(),
        0,
        "a valid empty file"
    );
    let agent = token("acme", Role::Agent, "agent-7");
    let (status, _) = world
        .get("/v1/conversations/conv-a/export", Some(&agent))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A frame of seq 6 whose content was changed after it was hashed.
fn tampered(key: &DataKey) -> Vec<switchboard_log::Record> {
    let mut records = records(&history("acme", "conv-t", key));
    let frame = &mut records[5].value;
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    records
}

#[tokio::test]
async fn a_tampered_timeline_reports_its_first_bad_seq() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ReadModels> =
        Arc::new(EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap());
    let key = store
        .create_data_key(&fixtures::tenant(), &fixtures::customer())
        .await
        .unwrap();
    project(&store, &tampered(&key)).await;
    let world = World::over(dir, store);
    let auditor = token("acme", Role::Auditor, "audit-1");
    let verdict = world
        .json("/v1/conversations/conv-t/verify", &auditor)
        .await;
    assert_eq!(verdict["verdict"], "broken", "{verdict}");
    assert_eq!(verdict["seq"], 6, "{verdict}");
}

#[tokio::test]
async fn a_tampered_log_replays_to_its_first_bad_seq() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path().join("log"))).unwrap());
    let topic = Topic::Conversations.name();
    log.create_topic(&TopicSpec::new(topic, 4)).await.unwrap();
    let appended: Vec<_> = tampered(&DataKey::from_bytes([3; 32]))
        .into_iter()
        .map(|r| NewRecord::new(r.key, r.value))
        .collect();
    log.append(topic, appended, &Default::default())
        .await
        .unwrap();
    // Nothing projected: the conversation is only in the log.
    let store: Arc<dyn ReadModels> = Arc::new(
        EmbeddedStore::open(dir.path().join("store"), EmbeddedOptions::default()).unwrap(),
    );
    let mut world = World::over(dir, store.clone());
    let service = crate::QueryService::new(store.clone(), super::verifier(), &Default::default())
        .with_sources(Sources::hot(store).then(Arc::new(LogSource::new(log))));
    world.router = crate::http::router(Arc::new(service));
    let auditor = token("acme", Role::Auditor, "audit-1");
    let (status, body) = world
        .get("/v1/conversations/conv-t/replay", Some(&auditor))
        .await;
    assert_eq!(status, StatusCode::OK);
    let frames = frames(&lines(&body));
    assert_eq!(
        frames.len(),
        history("acme", "x", &DataKey::from_bytes([0; 32])).len()
    );
    assert_eq!(
        chain::verify(frames.iter().map(Vec::as_slice)),
        Verdict::Broken {
            seq: Seq(6),
            problem: Problem::Altered
        }
    );
    let verdict = world
        .json("/v1/conversations/conv-t/verify", &auditor)
        .await;
    assert_eq!(verdict["verdict"], "broken");
    assert_eq!(verdict["seq"], 6);
    assert_eq!(verdict["problem"], "altered");
    let other = token("globex", Role::Auditor, "audit-1");
    let (status, _) = world
        .get("/v1/conversations/conv-t/replay", Some(&other))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the log is filtered by tenant too"
    );
}
