//! Scenarios of what people read: timelines, lists, the queue, agents.

use super::*;

pub async fn timeline_pages_go_both_ways_with_cursors(store: &dyn ReadModels) {
    let (acme, c1) = (tenant("acme"), conv("c1"));
    let mut batch = Batch::new();
    for seq in (1..=120).rev() {
        batch.timeline(message(&acme, &c1, seq, 10));
    }
    batch.timeline(message(&tenant("globex"), &c1, 1, 10));
    apply(store, &batch).await;

    let staff = Audience::Staff;
    let (first, next) = page(store, &acme, &c1, TimelineCursor::Oldest, 50, staff).await;
    assert_eq!(first, (1..=50).collect::<Vec<_>>());
    assert_eq!(next, Some(TimelineCursor::After(Seq(50))));
    let (second, next) = page(store, &acme, &c1, next.unwrap(), 50, staff).await;
    assert_eq!(second, (51..=100).collect::<Vec<_>>());
    let (last, next) = page(store, &acme, &c1, next.unwrap(), 50, staff).await;
    assert_eq!(last, (101..=120).collect::<Vec<_>>());
    assert_eq!(next, None, "the end of the timeline has no next page");

    let (newest, next) = page(store, &acme, &c1, TimelineCursor::Newest, 50, staff).await;
    assert_eq!(newest, (71..=120).rev().collect::<Vec<_>>());
    assert_eq!(next, Some(TimelineCursor::Before(Seq(71))));
    let (older, _) = page(store, &acme, &c1, TimelineCursor::Before(Seq(3)), 50, staff).await;
    assert_eq!(older, vec![2, 1]);
    let (exact, next) = page(store, &acme, &c1, TimelineCursor::After(Seq(70)), 50, staff).await;
    assert_eq!(
        (exact.len(), next),
        (50, None),
        "a page that ends the timeline exactly has no next"
    );

    // Customers never see private notes (every tenth seq), and still get full pages.
    let (customer, next) = page(
        store,
        &acme,
        &c1,
        TimelineCursor::Newest,
        15,
        Audience::Customer,
    )
    .await;
    let expected: Vec<u64> = (1..=120).rev().filter(|s| s % 10 != 0).take(15).collect();
    assert_eq!(customer, expected);
    assert_eq!(
        next,
        Some(TimelineCursor::Before(Seq(*expected.last().unwrap())))
    );

    // Tenants are isolated; unknown conversations are empty, not errors.
    let (other, _) = page(
        store,
        &tenant("globex"),
        &c1,
        TimelineCursor::Oldest,
        50,
        staff,
    )
    .await;
    assert_eq!(other, vec![1]);
    let (none, next) = page(
        store,
        &acme,
        &conv("nope"),
        TimelineCursor::Newest,
        50,
        staff,
    )
    .await;
    assert!(none.is_empty() && next.is_none());
    let too_big = TimelineQuery::new(TimelineCursor::Oldest, 501, staff);
    let err = store.timeline(&acme, &c1, too_big).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidRequest { .. }), "{err}");
}

pub async fn timeline_keeps_the_original_frames(store: &dyn ReadModels) {
    let history = fixtures::conversation_history();
    let mut batch = Batch::new();
    for (event, frame) in &history {
        batch.timeline(TimelineRow::from_event(event, frame.clone()));
    }
    apply(store, &batch).await;
    let (t, c) = (fixtures::tenant(), fixtures::conversation());
    let page = store
        .timeline(
            &t,
            &c,
            TimelineQuery::new(TimelineCursor::Oldest, 100, Audience::Staff),
        )
        .await
        .unwrap();
    let head = history.last().unwrap().0.envelope.clone();
    let mut verifier = Verifier::new().expect_head(head.seq, head.hash);
    for (entry, (_, frame)) in page.entries.iter().zip(&history) {
        assert_eq!(
            &entry.frame, frame,
            "seq {} is stored byte for byte",
            entry.seq
        );
        verifier.push(&entry.frame);
    }
    assert!(matches!(
        verifier.finish(),
        Verdict::Intact { events: 18, .. }
    ));
    let customer = store
        .timeline(
            &t,
            &c,
            TimelineQuery::new(TimelineCursor::Oldest, 100, Audience::Customer),
        )
        .await
        .unwrap();
    assert_eq!(
        customer.entries.len(),
        17,
        "the private note at seq 5 is hidden"
    );
    assert!(customer.entries.iter().all(|e| e.seq != Seq(5)));
}

pub async fn lists_follow_the_summaries(store: &dyn ReadModels) {
    use ConversationStatus::*;
    let acme = tenant("acme");
    let mut batch = Batch::new();
    batch
        .conversation(summary(&acme, "c1", Assigned, 10, 3))
        .conversation(summary(&acme, "c2", Queued, 30, 2))
        .conversation(summary(&acme, "c3", Resolved, 20, 9))
        .conversation(summary(&acme, "c4", Queued, 5, 2))
        .conversation(summary(&tenant("globex"), "c9", Queued, 1, 1));
    apply(store, &batch).await;

    let recent = ListQuery::first(ConversationList::Recent, 2);
    let (first, next) = list(store, &acme, recent.clone()).await;
    assert_eq!(first, ["c2", "c3"]);
    let (rest, next) = list(
        store,
        &acme,
        ListQuery {
            after: next,
            ..recent
        },
    )
    .await;
    assert_eq!((rest, next), (vec!["c1".to_owned(), "c4".to_owned()], None));
    let queued = ListQuery::first(ConversationList::Status(Queued), 10);
    assert_eq!(list(store, &acme, queued.clone()).await.0, ["c2", "c4"]);
    let inbox = ListQuery::first(ConversationList::Inbox(agent("agent-1")), 10);
    assert_eq!(list(store, &acme, inbox.clone()).await.0, ["c1"]);
    let customer = ListQuery::first(
        ConversationList::Customer(CustomerId::new("cust-of-c3").unwrap()),
        10,
    );
    assert_eq!(list(store, &acme, customer).await.0, ["c3"]);
    let queue: Vec<_> = store
        .queue(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.conversation.to_string())
        .collect();
    assert_eq!(queue, ["c4", "c2"], "longest waiting first");

    // c2 is assigned: it leaves the queue and the queued list, and enters the inbox.
    // A stale upsert of c1 (lower last_seq) changes nothing.
    let mut batch = Batch::new();
    batch
        .conversation(summary(&acme, "c2", Assigned, 40, 3))
        .conversation(summary(&acme, "c1", Queued, 99, 2));
    apply(store, &batch).await;
    assert_eq!(list(store, &acme, queued).await.0, ["c4"]);
    assert_eq!(list(store, &acme, inbox).await.0, ["c2", "c1"]);
    let queue = store.queue(&acme).await.unwrap();
    assert_eq!(queue.len(), 1);
    let c1 = store
        .conversation(&acme, &conv("c1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c1.status, c1.last_seq), (Assigned, Seq(3)));
    assert_eq!(
        store
            .conversation(&tenant("globex"), &conv("c1"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        list(
            store,
            &tenant("globex"),
            ListQuery::first(ConversationList::Recent, 10)
        )
        .await
        .0,
        ["c9"]
    );
}

pub async fn agents_carry_their_load(store: &dyn ReadModels) {
    use ConversationStatus::*;
    let acme = tenant("acme");
    let mut batch = Batch::new();
    batch
        .agent(agent_record(&acme, "agent-1", 2, 5))
        .agent(agent_record(&acme, "agent-1", 9, 4))
        .agent(agent_record(&acme, "agent-2", 3, 1))
        .conversation(summary(&acme, "c1", Assigned, 1, 2))
        .conversation(summary(&acme, "c2", Assigned, 2, 2))
        .conversation(summary(&acme, "c3", Resolved, 3, 2));
    apply(store, &batch).await;
    let one = store
        .agent(&acme, &agent("agent-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (one.record.max_conversations, one.load),
        (2, 2),
        "the newest record wins"
    );
    assert!(!one.has_capacity());
    let all = store.agents(&acme).await.unwrap();
    let loads: Vec<_> = all
        .iter()
        .map(|a| (a.record.agent.to_string(), a.load))
        .collect();
    assert_eq!(
        loads,
        [("agent-1".to_owned(), 2), ("agent-2".to_owned(), 0)]
    );
    assert_eq!(
        store
            .agent(&tenant("globex"), &agent("agent-1"))
            .await
            .unwrap(),
        None
    );
}
