//! Given events, the read models; replays and crashes change nothing; a rebuild writes the same
//! rows; a poison event goes to the dead letters and projection goes on.

use std::sync::Arc;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::Priority;
use switchboard_events::id::{AgentId, ConversationId, TenantId};
use switchboard_events::{ChainHash, ConversationEvent, Seq, Topic, fixtures};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, NewRecord, Record, TopicSpec};
use switchboard_store::checkpoint::{CheckpointKey, LogPartition};
use switchboard_store::conversation::ConversationStatus;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use switchboard_store::report::{Day, ReportScope};
use switchboard_store::timeline::{Audience, TimelineCursor, TimelineQuery};
use switchboard_store::{Batch, ReadModels};

use crate::partition::PartitionProjector;
use crate::{Projector, ProjectorConfig, rebuild};

fn store(dir: &std::path::Path) -> Arc<dyn ReadModels> {
    Arc::new(EmbeddedStore::open(dir, EmbeddedOptions::default()).unwrap())
}

/// The sample conversation's events, re-chained under another conversation id.
fn conversation(n: usize) -> Vec<(ConversationEvent, Vec<u8>)> {
    let id = ConversationId::new(format!("conv-{n}")).unwrap();
    let mut prev = ChainHash::GENESIS;
    fixtures::conversation_history()
        .into_iter()
        .map(|(mut event, _)| {
            event.envelope.conversation_id = id.clone();
            let frame = event.encode_chained(prev).unwrap();
            prev = event.envelope.hash;
            (event, frame)
        })
        .collect()
}

/// Conversations interleaved as one partition would hold them, as log records.
fn records(conversations: usize) -> Vec<Record> {
    let histories: Vec<_> = (0..conversations).map(conversation).collect();
    let mut out = Vec::new();
    for i in 0..histories[0].len() {
        for history in &histories {
            let (event, frame) = &history[i];
            out.push(Record {
                partition: 0,
                offset: out.len() as u64,
                key: event.envelope.conversation_id.as_str().as_bytes().to_vec(),
                value: frame.clone(),
                headers: vec![],
                timestamp_ms: event.envelope.occurred_at.as_micros() / 1000,
            });
        }
    }
    out
}

fn source() -> LogPartition {
    LogPartition::new(Topic::Conversations, 0)
}

async fn project_all(store: Arc<dyn ReadModels>, consumer: &str, records: &[Record], chunk: usize) {
    let mut projector = PartitionProjector::open(store.clone(), consumer, source())
        .await
        .unwrap();
    for run in records.chunks(chunk) {
        let projected = projector.project(run).await.unwrap();
        assert!(projected.rejected.is_empty(), "{:?}", projected.rejected);
        store.apply(&projected.batch).await.unwrap();
        if let Some(next) = projected.next_offset {
            projector.committed(next);
        }
    }
}

/// Everything the read models say about the sample tenant, hashed.
async fn digest(store: &dyn ReadModels, conversations: usize) -> String {
    let tenant = fixtures::tenant();
    let mut text = String::new();
    for n in 0..conversations {
        let id = ConversationId::new(format!("conv-{n}")).unwrap();
        text += &format!("{:?}\n", store.conversation(&tenant, &id).await.unwrap());
        let mut cursor = Some(TimelineCursor::Oldest);
        while let Some(at) = cursor {
            let page = store
                .timeline(&tenant, &id, TimelineQuery::new(at, 7, Audience::Staff))
                .await
                .unwrap();
            text += &format!("{:?}\n", page.entries);
            cursor = page.next;
        }
    }
    let day = Day::of(fixtures::conversation_history()[0].0.envelope.occurred_at);
    for scope in [ReportScope::Tenant, ReportScope::Agent(fixtures::agent())] {
        text += &format!(
            "{:?}\n",
            store
                .report(&tenant, &scope, day, day.next())
                .await
                .unwrap()
        );
    }
    text += &format!("{:?}\n", store.agents(&tenant).await.unwrap());
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn a_conversation_history_folds_into_its_views() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    project_all(store.clone(), "projector", &records(1), 1000).await;
    let tenant = fixtures::tenant();
    let id = ConversationId::new("conv-0").unwrap();
    let summary = store.conversation(&tenant, &id).await.unwrap().unwrap();
    assert_eq!(
        summary.status,
        ConversationStatus::Assigned,
        "reopened with its agent"
    );
    assert_eq!(summary.priority, Priority::High);
    assert_eq!(summary.agent, Some(fixtures::agent()));
    assert!(summary.tags.is_empty() && summary.vip && summary.erased);
    assert_eq!(summary.rating, Some(4));
    assert_eq!(
        summary.messages, 1,
        "the private note is not a message of the conversation"
    );
    assert_eq!(summary.first_response_at, None, "a note is not a response");
    assert_eq!(summary.agent_read_seq, Seq(6));
    assert_eq!(summary.last_seq, Seq(18));

    let page = |audience| {
        let store = store.clone();
        let (tenant, id) = (tenant.clone(), id.clone());
        async move {
            store
                .timeline(
                    &tenant,
                    &id,
                    TimelineQuery::new(TimelineCursor::Oldest, 100, audience),
                )
                .await
                .unwrap()
        }
    };
    let staff = page(Audience::Staff).await;
    assert_eq!(staff.entries.len(), 18);
    assert_eq!(
        staff.entries[3].frame,
        conversation(0)[3].1,
        "the original frame is kept"
    );
    let customer = page(Audience::Customer).await;
    let seqs: Vec<u64> = customer.entries.iter().map(|e| e.seq.0).collect();
    assert!(
        !seqs.contains(&5) && !seqs.contains(&7),
        "neither the note nor its redaction: {seqs:?}"
    );
    assert_eq!(seqs.len(), 16);

    let day = Day::of(conversation(0)[0].0.envelope.occurred_at);
    let report = store
        .report(&tenant, &ReportScope::Tenant, day, day)
        .await
        .unwrap();
    let c = report[0].counters;
    assert_eq!(
        (
            c.conversations_opened,
            c.messages_from_customers,
            c.conversations_resolved,
            c.ratings,
            c.rating_sum,
            c.satisfied
        ),
        (1, 1, 1, 1, 4, 1)
    );
}

#[tokio::test]
async fn agent_events_fold_into_agent_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let records: Vec<Record> = fixtures::agent_history()
        .into_iter()
        .enumerate()
        .map(|(i, (_, frame))| Record {
            partition: 0,
            offset: i as u64,
            key: b"acme".to_vec(),
            value: frame,
            headers: vec![],
            timestamp_ms: 0,
        })
        .collect();
    let mut projector = PartitionProjector::open(
        store.clone(),
        "projector",
        LogPartition::new(Topic::Agents, 0),
    )
    .await
    .unwrap();
    let projected = projector.project(&records).await.unwrap();
    store.apply(&projected.batch).await.unwrap();
    let agent = store
        .agent(
            &TenantId::new("acme").unwrap(),
            &AgentId::new("agent-7").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent.record.status, AgentStatus::Online);
    assert_eq!(agent.record.max_conversations, 5);
    assert_eq!(agent.record.skills.len(), 1);
    assert_eq!(agent.load, 0);
}

#[tokio::test]
async fn projecting_the_same_records_again_changes_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let records = records(3);
    let once = store(a.path());
    project_all(once.clone(), "projector", &records, 10).await;
    let twice = store(b.path());
    project_all(twice.clone(), "projector", &records, 10).await;
    // A second projector that lost its checkpoint folds everything again.
    project_all(twice.clone(), "other-name", &records, 7).await;
    // And one that did not skips it all.
    project_all(twice.clone(), "projector", &records, 5).await;
    assert_eq!(
        digest(once.as_ref(), 3).await,
        digest(twice.as_ref(), 3).await
    );
}

#[tokio::test]
async fn a_rebuild_from_the_log_gives_identical_read_models() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let log = EmbeddedLog::open(EmbeddedConfig::new(dirs[0].path())).unwrap();
    log.create_topic(&TopicSpec::new(Topic::Conversations.name(), 1))
        .await
        .unwrap();
    log.create_topic(&TopicSpec::new(Topic::Agents.name(), 1))
        .await
        .unwrap();
    let records = records(4);
    let appends = records
        .iter()
        .map(|r| NewRecord::new(r.key.clone(), r.value.clone()))
        .collect();
    log.append(Topic::Conversations.name(), appends, &Default::default())
        .await
        .unwrap();
    let live = store(dirs[1].path());
    project_all(live.clone(), "projector", &records, 13).await;
    let rebuilt = store(dirs[2].path());
    let report = rebuild(&log, rebuilt.clone(), "rebuild-1", 64)
        .await
        .unwrap();
    assert_eq!((report.records, report.rejected), (records.len() as u64, 0));
    assert_eq!(
        digest(live.as_ref(), 4).await,
        digest(rebuilt.as_ref(), 4).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_goes_to_the_dead_letters_and_projection_goes_on() {
    let (log_dir, store_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(log_dir.path())).unwrap());
    log.create_topic(&TopicSpec::new(Topic::Conversations.name(), 1))
        .await
        .unwrap();
    let history = conversation(0);
    let mut appends = vec![NewRecord::new("conv-0", history[0].1.clone())];
    appends.push(NewRecord::new(
        "conv-0",
        b"\x00\x00\x00\x00\x02not an event".to_vec(),
    ));
    appends.extend(
        history[1..]
            .iter()
            .map(|(_, frame)| NewRecord::new("conv-0", frame.clone())),
    );
    let end = appends.len() as u64;
    log.append(Topic::Conversations.name(), appends, &Default::default())
        .await
        .unwrap();

    let store = store(store_dir.path());
    let projector = Projector::new(
        log.clone(),
        store.clone(),
        Topic::Conversations,
        ProjectorConfig::default(),
    );
    let mut progress = projector.progress();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(projector.run(stopped));
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        progress.wait_for(|p| p.partitions.get(&0).is_some_and(|(next, _)| *next == end)),
    )
    .await
    .expect("projection reaches the end of the log")
    .unwrap();
    assert_eq!(progress.borrow().lag(), 0);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    let summary = store
        .conversation(&fixtures::tenant(), &ConversationId::new("conv-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary.last_seq,
        Seq(18),
        "everything after the poison event was projected"
    );
    let dead = log.read(crate::DEAD_LETTERS, 0, 0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    let header = |name: &str| {
        dead[0]
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
    };
    assert!(
        header("switchboard-dead-letter-reason")
            .unwrap()
            .contains("undecodable")
    );
    assert_eq!(header("switchboard-origin-offset").as_deref(), Some("1"));
    assert_eq!(
        header("switchboard-origin-topic").as_deref(),
        Some("switchboard.conversations")
    );
}

/// Strips the checkpoints from a batch: what a backend that writes rows before checkpoints
/// leaves behind when it crashes in between.
fn without_checkpoint(batch: &Batch) -> Batch {
    Batch {
        checkpoints: Vec::new(),
        ..batch.clone()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// A crash after a batch's rows were written but before its checkpoint: the projector
    /// restarts from the old checkpoint, folds the same records again, and ends where a run
    /// without a crash ends.
    #[test]
    fn a_crash_between_rows_and_checkpoint_changes_nothing(crash_at in 1usize..54, crash_len in 1usize..20, chunk in 1usize..30) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let records = records(3);
            let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let clean = store(a.path());
            project_all(clean.clone(), "projector", &records, chunk).await;

            let crashed = store(b.path());
            project_all(crashed.clone(), "projector", &records[..crash_at], chunk).await;
            let end = (crash_at + crash_len).min(records.len());
            let mut doomed = PartitionProjector::open(crashed.clone(), "projector", source()).await.unwrap();
            let projected = doomed.project(&records[crash_at..end]).await.unwrap();
            crashed.apply(&without_checkpoint(&projected.batch)).await.unwrap();
            drop(doomed);
            // Restart: a fresh projector from the store's checkpoint, over the whole partition.
            project_all(crashed.clone(), "projector", &records, chunk).await;

            assert_eq!(digest(clean.as_ref(), 3).await, digest(crashed.as_ref(), 3).await);
        });
    }
}

/// A deposed writer's appends, as the projector meets them after the owner's.
#[tokio::test]
async fn events_that_do_not_continue_the_chain_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let history = conversation(0);
    let key = CheckpointKey {
        consumer: "projector".to_owned(),
        source: source(),
    };
    let mut projector = PartitionProjector::open(store.clone(), "projector", source())
        .await
        .unwrap();
    let as_record = |offset: u64, frame: &[u8]| Record {
        partition: 0,
        offset,
        key: b"conv-0".to_vec(),
        value: frame.to_vec(),
        headers: vec![],
        timestamp_ms: 0,
    };
    let honest: Vec<Record> = history[..3]
        .iter()
        .enumerate()
        .map(|(i, (_, frame))| as_record(i as u64, frame))
        .collect();
    // Seq 3 again with other content; seq 4 linked to the forged seq 3; seq 9 after a gap.
    let (mut forged, _) = history[2].clone();
    forged.envelope.occurred_at = switchboard_events::Timestamp(forged.envelope.occurred_at.0 + 1);
    let forged_frame = forged.encode_chained(history[1].0.envelope.hash).unwrap();
    let (mut after_forged, _) = history[3].clone();
    after_forged.envelope.occurred_at =
        switchboard_events::Timestamp(after_forged.envelope.occurred_at.0 + 1);
    let after_forged_frame = after_forged.encode_chained(forged.envelope.hash).unwrap();
    let gap = &history[8].1;
    let mut records = honest.clone();
    records.push(as_record(3, &forged_frame));
    records.push(as_record(4, &after_forged_frame));
    records.push(as_record(5, gap));
    let projected = projector.project(&records).await.unwrap();
    store.apply(&projected.batch).await.unwrap();
    let reasons: Vec<&str> = projected
        .rejected
        .iter()
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].contains("a second event at seq 3"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("does not link to the head"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("missing"), "{reasons:?}");
    for reason in &reasons {
        assert_eq!(crate::metrics::reason_code(reason), "broken_chain");
    }
    let summary = store
        .conversation(&fixtures::tenant(), &ConversationId::new("conv-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary.last_seq, history[2].0.envelope.seq,
        "the forgeries changed nothing"
    );
    assert_eq!(summary.last_hash, history[2].0.envelope.hash);
    assert_eq!(store.checkpoint(&key).await.unwrap(), Some(6));
    // The honest history goes on after the refusals.
    let next = as_record(6, &history[3].1);
    let projected = projector.project(&[next]).await.unwrap();
    assert!(projected.rejected.is_empty(), "{:?}", projected.rejected);
}

#[tokio::test]
async fn resolved_conversations_are_forgotten_once_written_and_a_bounded_cache_projects_the_same() {
    const N: usize = 5;
    let records = records(N);
    let history = fixtures::conversation_history();
    let resolved_at = history
        .iter()
        .position(|(e, _)| {
            matches!(
                e.payload,
                switchboard_events::conversation::ConversationPayload::Resolved(_)
            )
        })
        .expect("the sample history resolves");

    let dir = tempfile::tempdir().unwrap();
    let bounded = store(dir.path());
    let mut projector = PartitionProjector::open(bounded.clone(), "projector", source())
        .await
        .unwrap()
        .with_cache_limit(3);
    // One run per event of the history, holding that event of every conversation.
    for (i, run) in records.chunks(N).enumerate() {
        let projected = projector.project(run).await.unwrap();
        assert!(projected.rejected.is_empty(), "{:?}", projected.rejected);
        bounded.apply(&projected.batch).await.unwrap();
        projector.committed(projected.next_offset.unwrap());
        if i == resolved_at {
            assert_eq!(
                projector.cached_conversations(),
                0,
                "every conversation was resolved and is written: none stays in memory"
            );
        } else {
            assert!(
                projector.cached_conversations() <= N,
                "{} summaries held",
                projector.cached_conversations()
            );
        }
    }

    // The reopening, rating and erasure after the resolution folded onto the summaries read
    // back from the store: the same read models as one unbounded run.
    let dir = tempfile::tempdir().unwrap();
    let whole = store(dir.path());
    project_all(whole.clone(), "projector", &records, records.len()).await;
    assert_eq!(
        digest(bounded.as_ref(), N).await,
        digest(whole.as_ref(), N).await
    );
    let summary = bounded
        .conversation(&fixtures::tenant(), &ConversationId::new("conv-0").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary.rating,
        Some(4),
        "the rating after the reopening is there"
    );
}
