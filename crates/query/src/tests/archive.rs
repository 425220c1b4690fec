//! A conversation moved to the cold archive reads as before: its summary from the manifest,
//! its history pages, replay and verification through the archive source.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::principal::Role;
use switchboard_events::{Seq, Timestamp, fixtures};
use switchboard_store::archive::ArchiveEntry;
use switchboard_store::report::Day;
use switchboard_store::timeline::{Audience, TimelineCursor, TimelineQuery};

use super::{World, token};
use crate::error::QueryError;
use crate::source::{EventSource, Frame, HotStore, Sources};

/// The archive's frames of one conversation, in memory.
#[derive(Debug)]
struct Archive(Vec<Frame>);

#[async_trait]
impl EventSource for Archive {
    async fn after(
        &self,
        _: &TenantId,
        _: &ConversationId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, QueryError> {
        Ok(self
            .0
            .iter()
            .filter(|f| f.seq > after)
            .take(max)
            .cloned()
            .collect())
    }
}

fn seqs(page: &serde_json::Value) -> Vec<u64> {
    let events = page["events"].as_array().unwrap();
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn an_archived_conversation_reads_through_the_archive() {
    let mut world = World::new().await;
    let (tenant, id) = (fixtures::tenant(), ConversationId::new("conv-a").unwrap());
    let summary = world
        .store
        .conversation(&tenant, &id)
        .await
        .unwrap()
        .unwrap();
    let hot = HotStore(world.store.clone());
    let frames = hot.after(&tenant, &id, Seq(0), 500).await.unwrap();
    let n = frames.len() as u64;
    world
        .store
        .archive(&ArchiveEntry {
            tenant: tenant.clone(),
            conversation: id.clone(),
            day: Day::of(summary.last_activity_at),
            object: "archive/acme/conv-a.avro".into(),
            first_seq: Seq(1),
            last_seq: summary.last_seq,
            last_hash: summary.last_hash,
            archived_at: Timestamp::now(),
            summary: summary.clone(),
        })
        .await
        .unwrap();
    let query = TimelineQuery::new(TimelineCursor::Oldest, 10, Audience::Staff);
    let left = world.store.timeline(&tenant, &id, query).await.unwrap();
    assert!(left.entries.is_empty(), "the hot store let the events go");

    let sources = Sources::hot(world.store.clone()).then(Arc::new(Archive(frames)));
    let service =
        crate::QueryService::new(world.store.clone(), super::verifier(), &Default::default())
            .with_sources(sources);
    world.router = crate::http::router(Arc::new(service));

    let agent = token("acme", Role::Agent, "agent-7");
    assert_eq!(
        world.json("/v1/conversations/conv-a", &agent).await["last_seq"],
        n
    );
    let oldest = world
        .json(
            "/v1/conversations/conv-a/history?oldest=true&limit=3",
            &agent,
        )
        .await;
    assert_eq!(seqs(&oldest), [1, 2, 3]);
    assert_eq!(
        oldest["events"][0]["event"]["customer_name"]["text"],
        "Ada Lovelace"
    );
    let newest = world
        .json("/v1/conversations/conv-a/history?limit=2", &agent)
        .await;
    assert_eq!(seqs(&newest), [n - 1, n]);
    let around = world
        .json("/v1/conversations/conv-a/history?around=5&limit=4", &agent)
        .await;
    assert_eq!(seqs(&around), [4, 5, 6, 7]);
    let before = world
        .json("/v1/conversations/conv-a/history?before=3&limit=5", &agent)
        .await;
    assert_eq!(seqs(&before), [1, 2]);

    let customer = token("acme", Role::Customer, "cust-1");
    let mine = world
        .json(
            "/v1/conversations/conv-a/history?oldest=true&limit=500",
            &customer,
        )
        .await;
    assert!(
        !seqs(&mine).contains(&5),
        "private notes stay hidden in the archive too"
    );
    assert!((seqs(&mine).len() as u64) < n);

    let auditor = token("acme", Role::Auditor, "audit-1");
    let verdict = world
        .json("/v1/conversations/conv-a/verify", &auditor)
        .await;
    assert_eq!(verdict["verdict"], "intact", "{verdict}");
    assert_eq!(verdict["events"], n);
}
