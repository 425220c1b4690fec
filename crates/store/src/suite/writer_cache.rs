//! The writer's cache, and the scoping of every conversation key by tenant.

use super::*;
use crate::writer_cache::{ParkedConversation, WriterSnapshot};

pub async fn the_writer_cache_keeps_the_newest_entry(store: &dyn ReadModels) {
    let source = LogPartition::new(Topic::Conversations, 3);
    assert_eq!(store.writer_snapshot(source).await.unwrap(), None);
    let snapshot = |next_offset, body: &[u8]| WriterSnapshot {
        source,
        next_offset,
        body: body.to_vec(),
    };
    store
        .put_writer_snapshot(&snapshot(10, b"ten"))
        .await
        .unwrap();
    store
        .put_writer_snapshot(&snapshot(20, b"twenty"))
        .await
        .unwrap();
    store
        .put_writer_snapshot(&snapshot(15, b"late"))
        .await
        .unwrap();
    assert_eq!(
        store.writer_snapshot(source).await.unwrap(),
        Some(snapshot(20, b"twenty")),
        "a late write of an older snapshot does not win"
    );
    let other = LogPartition::new(Topic::Conversations, 4);
    assert_eq!(store.writer_snapshot(other).await.unwrap(), None);

    let parked = |tenant: &str, seq, body: &[u8]| ParkedConversation {
        tenant: super::tenant(tenant),
        conversation: conv("x"),
        last_seq: Seq(seq),
        body: body.to_vec(),
    };
    store
        .park_conversation(&parked("acme", 7, b"seven"))
        .await
        .unwrap();
    store
        .park_conversation(&parked("acme", 5, b"five"))
        .await
        .unwrap();
    store
        .park_conversation(&parked("globex", 2, b"two"))
        .await
        .unwrap();
    let read = |t: &str| {
        let t = super::tenant(t);
        async move { store.parked_conversation(&t, &conv("x")).await.unwrap() }
    };
    assert_eq!(read("acme").await, Some(parked("acme", 7, b"seven")));
    assert_eq!(read("globex").await, Some(parked("globex", 2, b"two")));
    assert_eq!(read("initech").await, None);
}

pub async fn the_same_conversation_id_in_two_tenants_is_two_conversations(store: &dyn ReadModels) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let mut batch = Batch::default();
    batch.conversation(summary(&acme, "x", ConversationStatus::Open, 1, 2));
    batch.conversation(summary(&globex, "x", ConversationStatus::Resolved, 2, 5));
    for seq in 1..=2 {
        batch.timeline(message(&acme, &conv("x"), seq, 1000));
    }
    apply(store, &batch).await;
    let read = |t: &TenantId| {
        let t = t.clone();
        async move { store.conversation(&t, &conv("x")).await.unwrap() }
    };
    let (a, g) = (read(&acme).await.unwrap(), read(&globex).await.unwrap());
    assert_eq!((a.tenant, a.last_seq), (acme.clone(), Seq(2)));
    assert_eq!((g.tenant, g.last_seq), (globex.clone(), Seq(5)));
    let x = conv("x");
    let ours = page(
        store,
        &acme,
        &x,
        TimelineCursor::Oldest,
        10,
        Audience::Staff,
    );
    assert_eq!(ours.await.0, vec![1, 2]);
    let theirs = page(
        store,
        &globex,
        &x,
        TimelineCursor::Oldest,
        10,
        Audience::Staff,
    );
    assert_eq!(theirs.await.0, Vec::<u64>::new());
}
