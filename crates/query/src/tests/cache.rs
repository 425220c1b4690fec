//! Caching against projection: a cached page stays until its conversation changes, a change
//! noticed before the projector applied it never caches the older state, unknown ids are
//! remembered briefly, and the log follower reports what projection is about to change.

use std::sync::Arc;

use switchboard_events::conversation::ConversationPayload;
use switchboard_events::envelope::{Actor, ActorKind};
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::personal::Sealed;
use switchboard_events::principal::Role;
use switchboard_events::{ConversationEvent, Seq, Topic, fixtures};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, NewRecord, Record, StartAt, TopicSpec};
use tokio::sync::mpsc;

use super::{World, history, project, token};
use crate::cache::Invalidate;

/// The next message of acme's `id`, after `last`.
async fn next_message(
    world: &World,
    id: &str,
    last: &(ConversationEvent, Vec<u8>),
) -> (ConversationEvent, Vec<u8>) {
    let tenant = fixtures::tenant();
    let key = world
        .store
        .create_data_key(&tenant, &fixtures::customer())
        .await
        .unwrap();
    let seq = last.0.envelope.seq.next();
    let mut message = fixtures::message_posted(seq.0, 10);
    message.body = Sealed::seal(&key, &tenant, &fixtures::customer(), "one more thing").unwrap();
    let mut envelope =
        fixtures::conversation_envelope(seq.0, Actor::new(ActorKind::Customer, "cust-1").unwrap());
    envelope.tenant_id = tenant;
    envelope.conversation_id = ConversationId::new(id).unwrap();
    let mut event = ConversationEvent {
        envelope,
        payload: ConversationPayload::MessagePosted(message),
    };
    let frame = event.encode_chained(last.0.envelope.hash).unwrap();
    (event, frame)
}

async fn apply(world: &World, event: &(ConversationEvent, Vec<u8>), offset: u64) {
    let record = Record {
        partition: 0,
        offset,
        key: event
            .0
            .envelope
            .conversation_id
            .as_str()
            .as_bytes()
            .to_vec(),
        value: event.1.clone(),
        headers: vec![],
        timestamp_ms: 0,
    };
    project(&world.store, &[record]).await;
}

async fn newest_seq(world: &World, id: &str) -> u64 {
    let agent = token("acme", Role::Agent, "agent-7");
    let page = world
        .json(&format!("/v1/conversations/{id}/history?limit=5"), &agent)
        .await;
    page["events"].as_array().unwrap().last().unwrap()["seq"]
        .as_u64()
        .unwrap()
}

/// The sample history of acme's `conv-a` as the world holds it (its last event's hash).
async fn last_of_conv_a(world: &World) -> (ConversationEvent, Vec<u8>) {
    let auditor = token("acme", Role::Auditor, "audit-1");
    let (_, body) = world
        .get("/v1/conversations/conv-a/replay", Some(&auditor))
        .await;
    let line = body
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(line).unwrap();
    let frame = switchboard_events::hex::decode(line["frame"].as_str().unwrap()).unwrap();
    (ConversationEvent::decode(&frame).unwrap(), frame)
}

#[tokio::test]
async fn pages_stay_cached_until_projection_reports_the_change() {
    let world = World::new().await;
    let n = history("acme", "x", &fixtures::data_key()).len() as u64;
    assert_eq!(newest_seq(&world, "conv-a").await, n);
    let last = last_of_conv_a(&world).await;
    let next = next_message(&world, "conv-a", &last).await;
    apply(&world, &next, 1_000).await;
    assert_eq!(
        newest_seq(&world, "conv-a").await,
        n,
        "served from the cache"
    );
    world.service.cache().changed(
        &fixtures::tenant(),
        &ConversationId::new("conv-a").unwrap(),
        Seq(n + 1),
    );
    assert_eq!(
        newest_seq(&world, "conv-a").await,
        n + 1,
        "the change evicted it"
    );
}

#[tokio::test]
async fn a_change_noticed_before_projection_never_caches_the_older_state() {
    let world = World::new().await;
    let n = history("acme", "x", &fixtures::data_key()).len() as u64;
    let last = last_of_conv_a(&world).await;
    let next = next_message(&world, "conv-a", &last).await;
    // The log follower sees seq n + 1 before the projector applies it.
    world.service.cache().changed(
        &fixtures::tenant(),
        &ConversationId::new("conv-a").unwrap(),
        Seq(n + 1),
    );
    assert_eq!(newest_seq(&world, "conv-a").await, n, "the store is behind");
    apply(&world, &next, 1_000).await;
    assert_eq!(
        newest_seq(&world, "conv-a").await,
        n + 1,
        "the lagging read was not cached"
    );
}

#[tokio::test]
async fn unknown_ids_are_remembered_until_they_appear() {
    let world = World::new().await;
    let sup = token("acme", Role::Supervisor, "sup-1");
    let uri = "/v1/conversations/conv-new";
    assert_eq!(world.get(uri, Some(&sup)).await.0, 404);
    let key = world
        .store
        .create_data_key(&fixtures::tenant(), &fixtures::customer())
        .await
        .unwrap();
    let events = history("acme", "conv-new", &key);
    let records: Vec<_> = super::records(&events)
        .into_iter()
        .map(|mut r| {
            r.offset += 2_000;
            r
        })
        .collect();
    project(&world.store, &records).await;
    assert_eq!(
        world.get(uri, Some(&sup)).await.0,
        404,
        "the miss is cached"
    );
    world.service.cache().changed(
        &fixtures::tenant(),
        &ConversationId::new("conv-new").unwrap(),
        Seq(1),
    );
    assert_eq!(world.get(uri, Some(&sup)).await.0, 200);
}

/// What the follower reported: a conversation and seq, or (flag set) an erasure.
type Notice = (TenantId, ConversationId, Seq, bool);

struct Seen(mpsc::UnboundedSender<Notice>);

impl Invalidate for Seen {
    fn changed(&self, tenant: &TenantId, conversation: &ConversationId, seq: Seq) {
        let _ = self
            .0
            .send((tenant.clone(), conversation.clone(), seq, false));
    }
    fn erased(&self) {
        let _ = self
            .0
            .send((fixtures::tenant(), fixtures::conversation(), Seq(0), true));
    }
}

#[tokio::test]
async fn the_log_follower_reports_every_event_and_erasures() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap());
    let topic = Topic::Conversations.name();
    log.create_topic(&TopicSpec::new(topic, 3)).await.unwrap();
    let events = history("acme", "conv-f", &fixtures::data_key());
    let appended = events
        .iter()
        .map(|(e, f)| NewRecord::new(e.envelope.conversation_id.as_str(), f.clone()))
        .collect();
    log.append(topic, appended, &Default::default())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let seen = Arc::new(Seen(tx));
    let follower = tokio::spawn(crate::follow::follow(log, seen, StartAt::Earliest));
    let mut seqs = Vec::new();
    let mut erased = false;
    while seqs.len() < events.len() {
        let (tenant, conversation, seq, erasure) = rx.recv().await.unwrap();
        if erasure {
            erased = true;
            continue;
        }
        assert_eq!((tenant.as_str(), conversation.as_str()), ("acme", "conv-f"));
        seqs.push(seq.0);
    }
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    let last_is_erasure = matches!(
        events.last().unwrap().0.payload,
        ConversationPayload::CustomerDataErased(_)
    );
    if last_is_erasure && !erased {
        let (.., erasure) = rx.recv().await.unwrap();
        erased = erasure;
    }
    assert_eq!(erased, last_is_erasure);
    follower.abort();
}
