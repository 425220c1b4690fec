//! Scenarios of what keeps the read models right: reports, checkpoints, data keys, the archive.

use super::*;

pub async fn reports_sum_partitions_and_never_double(store: &dyn ReadModels) {
    let acme = tenant("acme");
    let day = Day::of(Timestamp(T0));
    let mut batch = Batch::new();
    batch
        .report(partial(&acme, day, 0, 5, 100))
        .report(partial(&acme, day, 1, 7, 40))
        .report(partial(&acme, day.next(), 0, 1, 101))
        .report(partial(&acme, Day(day.0 + 5), 0, 1, 102))
        .report(partial(&tenant("globex"), day, 0, 50, 100));
    apply(store, &batch).await;
    // Re-applying, and a stale partial, change nothing.
    apply(store, &batch).await;
    let mut stale = Batch::new();
    stale.report(partial(&acme, day, 0, 3, 90));
    apply(store, &stale).await;

    let report = store
        .report(&acme, &ReportScope::Tenant, day, day.next())
        .await
        .unwrap();
    let opened: Vec<_> = report
        .iter()
        .map(|d| (d.day, d.counters.conversations_opened))
        .collect();
    assert_eq!(opened, [(day, 12), (day.next(), 1)]);
    assert_eq!(report[0].counters.ratings, 2);
    let key = ReportKey {
        tenant: acme.clone(),
        day,
        scope: ReportScope::Tenant,
    };
    let mine = store
        .report_partial(&key, partition(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (mine.counters.conversations_opened, mine.through_offset),
        (7, 40)
    );
    assert_eq!(
        store.report_partial(&key, partition(2)).await.unwrap(),
        None
    );
    let agent_scope = ReportScope::Agent(agent("agent-1"));
    assert!(
        store
            .report(&acme, &agent_scope, day, day)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn checkpoints_only_move_forward(store: &dyn ReadModels) {
    assert_eq!(store.checkpoint(&checkpoint_key(0)).await.unwrap(), None);
    let mut batch = Batch::new();
    batch
        .checkpoint(checkpoint_key(0), 500)
        .checkpoint(checkpoint_key(1), 7);
    apply(store, &batch).await;
    let mut back = Batch::new();
    back.checkpoint(checkpoint_key(0), 300);
    apply(store, &back).await;
    assert_eq!(
        store.checkpoint(&checkpoint_key(0)).await.unwrap(),
        Some(500)
    );
    assert_eq!(store.checkpoint(&checkpoint_key(1)).await.unwrap(), Some(7));
    let rebuild = CheckpointKey {
        consumer: "rebuild".to_owned(),
        source: partition(0),
    };
    assert_eq!(store.checkpoint(&rebuild).await.unwrap(), None);
}

pub async fn data_keys_are_created_once_and_destroyed_for_good(store: &dyn ReadModels) {
    let (t, c) = (fixtures::tenant(), fixtures::customer());
    let key = store.create_data_key(&t, &c).await.unwrap();
    assert_eq!(
        store.create_data_key(&t, &c).await.unwrap(),
        key,
        "creation is idempotent"
    );
    let keys: &dyn KeyProvider = store;
    assert_eq!(keys.data_key(&t, &c).unwrap(), Some(key.clone()));
    assert_eq!(keys.data_key(&tenant("globex"), &c).unwrap(), None);
    let sealed = Sealed::seal(&key, &t, &c, "my address").unwrap();
    assert_eq!(
        sealed.reveal(&t, keys).unwrap(),
        Revealed::Text("my address".into())
    );

    store.destroy_data_key(&t, &c).await.unwrap();
    store.destroy_data_key(&t, &c).await.unwrap();
    assert_eq!(keys.data_key(&t, &c).unwrap(), None);
    assert_eq!(sealed.reveal(&t, keys).unwrap(), Revealed::Erased);
    let err = store.create_data_key(&t, &c).await.unwrap_err();
    assert!(matches!(err, StoreError::KeyErased { .. }), "{err}");
}

pub async fn archiving_moves_a_conversation_out(store: &dyn ReadModels) {
    use ConversationStatus::*;
    let acme = tenant("acme");
    let (c1, c2) = (conv("c1"), conv("c2"));
    let mut batch = Batch::new();
    for seq in 1..=10 {
        batch
            .timeline(message(&acme, &c1, seq, 100))
            .timeline(message(&acme, &c2, seq, 100));
    }
    batch
        .conversation(summary(&acme, "c1", Resolved, 10, 10))
        .conversation(summary(&acme, "c2", Resolved, 10, 10))
        .conversation(summary(&tenant("globex"), "c1", Resolved, 10, 1));
    apply(store, &batch).await;
    let day = Day::of(Timestamp(T0 + 10_000_000));
    let resolved = store.resolved_on(day, None, 10).await.unwrap();
    let names: Vec<_> = resolved
        .iter()
        .map(|r| format!("{}/{}", r.tenant, r.conversation))
        .collect();
    assert_eq!(names, ["acme/c1", "acme/c2", "globex/c1"]);
    let after = store.resolved_on(day, Some(&resolved[0]), 1).await.unwrap();
    assert_eq!(
        after,
        [ResolvedRef {
            tenant: acme.clone(),
            conversation: c2.clone()
        }]
    );

    // c2 is archived through seq 8 only: a reopening (seq 9, 10) happened since.
    let entry = |c: &ConversationId, last: u64| ArchiveEntry {
        tenant: acme.clone(),
        conversation: c.clone(),
        day,
        object: format!("acme/{}/part-0.avro", day.0),
        first_seq: Seq(1),
        last_seq: Seq(last),
        last_hash: ChainHash([last as u8; 32]),
        archived_at: Timestamp(T0 + 86_400_000_000 * 31),
        summary: summary(&acme, c.as_str(), Resolved, 10, last),
    };
    for _ in 0..2 {
        store.archive(&entry(&c1, 10)).await.unwrap();
        store.archive(&entry(&c2, 8)).await.unwrap();
    }
    assert_eq!(store.conversation(&acme, &c1).await.unwrap(), None);
    assert!(
        page(
            store,
            &acme,
            &c1,
            TimelineCursor::Oldest,
            50,
            Audience::Staff
        )
        .await
        .0
        .is_empty()
    );
    assert_eq!(
        page(
            store,
            &acme,
            &c2,
            TimelineCursor::Oldest,
            50,
            Audience::Staff
        )
        .await
        .0,
        [9, 10]
    );
    assert!(
        store.conversation(&acme, &c2).await.unwrap().is_some(),
        "c2 moved on: it stays hot"
    );
    let left: Vec<_> = store.resolved_on(day, None, 10).await.unwrap();
    let left: Vec<_> = left
        .iter()
        .map(|r| format!("{}/{}", r.tenant, r.conversation))
        .collect();
    assert_eq!(left, ["acme/c2", "globex/c1"]);
    assert_eq!(
        store.archived(&acme, &c1).await.unwrap(),
        Some(entry(&c1, 10))
    );
    assert_eq!(store.archived(&tenant("globex"), &c1).await.unwrap(), None);
    let manifest = store.archive_manifest(&acme, day).await.unwrap();
    assert_eq!(manifest, [entry(&c1, 10), entry(&c2, 8)]);
    assert!(
        list(store, &acme, ListQuery::first(ConversationList::Recent, 10))
            .await
            .0
            == ["c2"]
    );
}
