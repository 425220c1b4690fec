//! The writer's state is bounded and snapshotted (`state.md`): evicted conversations come
//! back with their idempotency, a restart folds only the tail after a snapshot, and a
//! snapshot or parked state the log does not prove is ignored.

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::writer::cache::{MemoryCache, StateCache};
use crate::writer::keys::BoxFuture;
use crate::writer::snapshot::VERSION;

/// Keys in memory and a cache that counts what the writer does with it.
#[derive(Debug, Default)]
struct Counted {
    keys: InMemoryKeys,
    cache: MemoryCache,
    parks: AtomicUsize,
    /// Parked states read back.
    unparks: AtomicUsize,
    snapshots_written: AtomicUsize,
    /// Replaces every snapshot read, when set.
    forged_snapshot: Mutex<Option<Vec<u8>>>,
}

impl DataKeys for Counted {
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<switchboard_events::personal::DataKey>, CommandError>> {
        self.keys.key(tenant, customer)
    }

    fn destroy<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        self.keys.destroy(tenant, customer)
    }

    fn state_cache(&self) -> Option<&dyn StateCache> {
        Some(self)
    }
}

impl StateCache for Counted {
    fn snapshot(&self, partition: u32) -> BoxFuture<'_, Result<Option<Vec<u8>>, CommandError>> {
        if let Some(forged) = self.forged_snapshot.lock().unwrap().clone() {
            return Box::pin(async move { Ok(Some(forged)) });
        }
        self.cache.snapshot(partition)
    }

    fn put_snapshot(
        &self,
        partition: u32,
        next_offset: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), CommandError>> {
        self.snapshots_written.fetch_add(1, Ordering::SeqCst);
        self.cache.put_snapshot(partition, next_offset, body)
    }

    fn parked<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, CommandError>> {
        self.unparks.fetch_add(1, Ordering::SeqCst);
        self.cache.parked(tenant, conversation)
    }

    fn park<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
        last_seq: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        self.parks.fetch_add(1, Ordering::SeqCst);
        self.cache.park(tenant, conversation, last_seq, body)
    }
}

/// One conversation partition, so that every conversation shares the bound.
async fn start_bounded(
    log: Arc<dyn EventLog>,
    keys: Arc<dyn DataKeys>,
    max_conversations: usize,
    snapshot_every: u64,
) -> Writer {
    let config = WriterConfig {
        conversation_partitions: 1,
        agent_partitions: 1,
        state: StateConfig {
            max_conversations,
            snapshot_every,
        },
        ..WriterConfig::default()
    };
    Writer::start(log, keys, config).await.unwrap()
}

async fn send(
    writer: &Writer,
    conversation: &str,
    command: ConversationCommand,
) -> Result<Ack, CommandError> {
    let id = ConversationId::new(conversation).unwrap();
    writer
        .conversation(customer(), Some(id), command, correlation())
        .await
}

/// Opens `n` conversations `c0..` and posts message `m1` in each.
async fn fill(writer: &Writer, n: usize) -> Vec<Ack> {
    let mut acks = Vec::new();
    for i in 0..n {
        let id = format!("c{i}");
        send(writer, &id, open()).await.unwrap();
        acks.push(send(writer, &id, post("m1", "hello")).await.unwrap());
    }
    acks
}

/// Stops `writer` on `log` (in `dir`) and starts it again with the same bounds on a log that
/// records where it is read from. Answers the new writer, the offsets its start read from, and
/// the end of the conversation partition before the restart.
async fn restart_counting_reads(
    dir: &std::path::Path,
    log: Arc<EmbeddedLog>,
    writer: Writer,
    keys: Arc<Counted>,
    (max_conversations, snapshot_every): (usize, u64),
) -> (Writer, Vec<u64>, u64) {
    let end = log
        .offsets(Topic::Conversations.name(), 0)
        .await
        .unwrap()
        .end;
    log.shutdown();
    drop(writer);
    drop(log);
    let flaky = Arc::new(FlakyLog::new(embedded(dir)));
    let writer = start_bounded(flaky.clone(), keys, max_conversations, snapshot_every).await;
    let reads = flaky.reads_from.lock().unwrap().clone();
    (writer, reads, end)
}

#[tokio::test]
async fn an_evicted_conversation_comes_back_with_its_idempotency() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Counted::default());
    let writer = start_bounded(embedded(dir.path()), keys.clone(), 4, 1_000).await;
    let first = fill(&writer, 20).await;
    assert!(keys.parks.load(Ordering::SeqCst) >= 16, "the bound holds");

    // c0 was parked long ago: a retried send still answers the original message.
    let retry = send(&writer, "c0", post("m1", "hello")).await.unwrap();
    assert_eq!(
        (retry.seq, retry.unchanged, retry.message_id),
        (Seq(2), true, first[0].message_id.clone())
    );
    let conflict = send(&writer, "c0", post("m1", "other")).await.unwrap_err();
    assert_eq!(conflict.code(), "idempotency_conflict");
    let next = send(&writer, "c0", post("m2", "more")).await.unwrap();
    assert_eq!((next.seq, next.unchanged), (Seq(3), false));
    let reopened = send(&writer, "c1", open()).await.unwrap();
    assert_eq!((reopened.seq, reopened.unchanged), (Seq(1), true));
}

#[tokio::test]
async fn a_restart_folds_only_the_tail_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Counted::default());
    let log = embedded(dir.path());
    let writer = start_bounded(log.clone(), keys.clone(), 8, 10).await;
    let first = fill(&writer, 30).await;
    assert!(keys.snapshots_written.load(Ordering::SeqCst) > 0);
    let (writer, reads, end) =
        restart_counting_reads(dir.path(), log, writer, keys.clone(), (8, 10)).await;
    assert!(
        reads.iter().all(|&from| from + 12 >= end),
        "only the tail after a recent snapshot is read: {reads:?} of {end}"
    );
    for (i, sent) in first.iter().enumerate() {
        let retry = send(&writer, &format!("c{i}"), post("m1", "hello"))
            .await
            .unwrap();
        assert_eq!((retry.seq, retry.unchanged), (sent.seq, true), "c{i}");
        assert_eq!(retry.message_id, sent.message_id);
    }
    let next = send(&writer, "c29", post("m2", "more")).await.unwrap();
    assert_eq!(next.seq, Seq(3));
}

#[tokio::test]
async fn a_stopped_writer_finishes_its_queue_and_leaves_a_snapshot_of_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Counted::default());
    let log = embedded(dir.path());
    // No snapshot falls due while it runs: only the stop writes one.
    let writer = start_bounded(log.clone(), keys.clone(), 1_000, 1_000_000).await;
    let first = fill(&writer, 10).await;
    assert_eq!(keys.snapshots_written.load(Ordering::SeqCst), 0);

    // Commands queued when the stop begins are decided, appended and answered.
    let queued: Vec<_> = (0..10)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { send(&writer, &format!("c{i}"), post("m2", "more")).await })
        })
        .collect();
    tokio::task::yield_now().await;
    writer.stop().await;
    for (i, answer) in queued.into_iter().enumerate() {
        let ack = answer.await.unwrap().unwrap();
        assert_eq!((ack.seq, ack.unchanged), (Seq(3), false), "c{i}");
    }
    let refused = send(&writer, "c0", post("m3", "late")).await.unwrap_err();
    assert_eq!(refused.code(), "unavailable");
    assert_eq!(keys.snapshots_written.load(Ordering::SeqCst), 1);
    // The next start folds nothing: the snapshot is of the log's end. The one record read is
    // the last, which the snapshot names and is checked against.
    let (writer, reads, end) =
        restart_counting_reads(dir.path(), log, writer, keys.clone(), (1_000, 1_000_000)).await;
    assert!(
        reads.iter().all(|&from| from + 1 >= end),
        "nothing before the last record ({end} in all) is read again: {reads:?}"
    );
    for (i, sent) in first.iter().enumerate() {
        let retry = send(&writer, &format!("c{i}"), post("m1", "hello"))
            .await
            .unwrap();
        assert_eq!((retry.seq, retry.unchanged), (sent.seq, true), "c{i}");
        let again = send(&writer, &format!("c{i}"), post("m2", "more"))
            .await
            .unwrap();
        assert_eq!((again.seq, again.unchanged), (Seq(3), true), "c{i}");
    }
}

#[tokio::test]
async fn a_snapshot_the_log_does_not_prove_is_ignored() {
    // A cache filled against one log, then a writer on another, empty one.
    let keys = Arc::new(Counted::default());
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let log = embedded(first_dir.path());
    let writer = start_bounded(log.clone(), keys.clone(), 2, 4).await;
    fill(&writer, 6).await;
    log.shutdown();
    drop(writer);
    drop(log);

    let writer = start_bounded(embedded(second_dir.path()), keys.clone(), 2, 4).await;
    let opened = send(&writer, "c0", open()).await.unwrap();
    assert_eq!(
        (opened.seq, opened.unchanged),
        (Seq(1), false),
        "the parked c0 is not in this log"
    );
    let sent = send(&writer, "c5", post("m1", "hello")).await.unwrap_err();
    assert_eq!(
        sent.code(),
        "not_found",
        "the snapshot's c5 is not in this log"
    );
}

#[tokio::test]
async fn a_damaged_or_newer_snapshot_is_ignored_and_the_log_folded() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(Counted::default());
    let log = embedded(dir.path());
    let writer = start_bounded(log.clone(), keys.clone(), 1_000, 4).await;
    let first = fill(&writer, 5).await;
    log.shutdown();
    drop(writer);
    drop(log);

    for forged in [vec![VERSION + 1, 0, 0], vec![VERSION, 0xff]] {
        *keys.forged_snapshot.lock().unwrap() = Some(forged);
        let log = embedded(dir.path());
        let writer = start_bounded(log.clone(), keys.clone(), 1_000, 4).await;
        let retry = send(&writer, "c4", post("m1", "hello")).await.unwrap();
        assert_eq!((retry.seq, retry.unchanged), (first[4].seq, true));
        log.shutdown();
    }
}

#[tokio::test]
async fn a_resolved_conversation_is_parked_after_its_batch_and_continues_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = embedded(dir.path());
    let keys = Arc::new(Counted::default());
    // A bound far above what the test opens: only the resolution parks.
    let writer = start_bounded(log.clone(), keys.clone(), 1_000, 1_000).await;
    let first = fill(&writer, 3).await;
    assert_eq!(
        keys.parks.load(Ordering::SeqCst),
        0,
        "nothing parked below the bound"
    );
    let resolved = send(&writer, "c1", ConversationCommand::Resolve)
        .await
        .unwrap();
    assert_eq!(resolved.seq, Seq(3));
    assert_eq!(
        keys.parks.load(Ordering::SeqCst),
        1,
        "the resolved conversation is parked"
    );
    let parked = keys
        .cache
        .parked(&customer().tenant, &ConversationId::new("c1").unwrap())
        .await
        .unwrap();
    assert!(parked.is_some(), "its state is in the cache");

    // A command that changes nothing brings it back and leaves it parked as it was: each
    // one reads it from the cache again, and nothing is written.
    for _ in 0..2 {
        let before = keys.unparks.load(Ordering::SeqCst);
        let again = send(&writer, "c1", ConversationCommand::Resolve).await;
        assert!(
            again.as_ref().is_err() || again.as_ref().is_ok_and(|a| a.unchanged),
            "{again:?}"
        );
        assert_eq!(keys.unparks.load(Ordering::SeqCst), before + 1);
    }
    assert_eq!(keys.parks.load(Ordering::SeqCst), 1, "not parked again");

    // It comes back from the cache: a retried send still answers the original message, and
    // a message on the resolved conversation reopens it on the next seqs.
    let retry = send(&writer, "c1", post("m1", "hello")).await.unwrap();
    assert_eq!(
        (retry.seq, retry.unchanged, retry.message_id),
        (Seq(2), true, first[1].message_id.clone())
    );
    let next = send(&writer, "c1", post("m2", "back again")).await.unwrap();
    assert_eq!(
        (next.seq, next.unchanged),
        (Seq(5), false),
        "reopened at 4, posted at 5"
    );

    let events = history(log.as_ref(), &ConversationId::new("c1").unwrap()).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.envelope.seq.0).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "gapless, each once");
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].envelope.prev_hash, pair[0].envelope.hash,
            "seq {} links to the seq before it",
            pair[1].envelope.seq.0
        );
    }
    assert!(matches!(
        events[3].payload,
        ConversationPayload::Reopened(_)
    ));
}
