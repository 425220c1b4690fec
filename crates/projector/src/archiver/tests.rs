//! Given projected conversations, an archive run: the old resolved ones leave the hot store,
//! and every history page read through the archive is the page read before.

use std::sync::Arc;

use switchboard_events::chain::{Verdict, Verifier};
use switchboard_events::{ChainHash, ConversationEvent, Topic, fixtures};
use switchboard_log::Record;
use switchboard_store::checkpoint::LogPartition;
use switchboard_store::cold::timeline_or_archive;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use switchboard_store::timeline::TimelinePage;

use super::*;
use crate::partition::PartitionProjector;

/// Seq 15 of the sample conversation resolves it; 16 reopens it.
const RESOLVED: usize = 15;

/// The sample conversation under another id, `days` later, chained from seq 1, with its link
/// at `broken_at` (if any) made to point at the wrong hash.
fn history(id: &str, days: i64, broken_at: Option<u64>) -> Vec<(ConversationEvent, Vec<u8>)> {
    let id = ConversationId::new(id).unwrap();
    let mut prev = ChainHash::GENESIS;
    fixtures::conversation_history()
        .into_iter()
        .map(|(mut event, _)| {
            event.envelope.conversation_id = id.clone();
            event.envelope.occurred_at.0 += days * 86_400_000_000;
            if Some(event.envelope.seq.0) == broken_at {
                prev = ChainHash([9; 32]);
            }
            let frame = event.encode_chained(prev).unwrap();
            prev = event.envelope.hash;
            (event, frame)
        })
        .collect()
}

/// An embedded store fed through the projector, one log partition.
struct Hot {
    store: Arc<dyn ReadModels>,
    offset: u64,
}

impl Hot {
    fn open(dir: &std::path::Path) -> Self {
        let store = EmbeddedStore::open(dir, EmbeddedOptions::default()).unwrap();
        Self {
            store: Arc::new(store),
            offset: 0,
        }
    }

    async fn project(&mut self, events: &[(ConversationEvent, Vec<u8>)]) {
        let source = LogPartition::new(Topic::Conversations, 0);
        let mut projector = PartitionProjector::open(self.store.clone(), "test", source)
            .await
            .unwrap();
        let records: Vec<Record> = events
            .iter()
            .map(|(event, frame)| {
                self.offset += 1;
                Record {
                    partition: 0,
                    offset: self.offset - 1,
                    key: event.envelope.conversation_id.as_str().as_bytes().to_vec(),
                    value: frame.clone(),
                    headers: vec![],
                    timestamp_ms: event.envelope.occurred_at.as_micros() / 1000,
                }
            })
            .collect();
        let projected = projector.project(&records).await.unwrap();
        assert!(projected.rejected.is_empty(), "{:?}", projected.rejected);
        self.store.apply(&projected.batch).await.unwrap();
    }
}

fn conv(id: &str) -> ConversationId {
    ConversationId::new(id).unwrap()
}

/// Every page a reader can reach: from both ends and from every seq, both directions, both
/// audiences, with page sizes that cut the timeline in different places.
async fn pages(store: &dyn ReadModels, archive: &Archive, id: &str) -> Vec<TimelinePage> {
    let (tenant, conversation) = (fixtures::tenant(), conv(id));
    let mut cursors = vec![TimelineCursor::Oldest, TimelineCursor::Newest];
    for seq in 0..=20 {
        cursors.push(TimelineCursor::After(Seq(seq)));
        cursors.push(TimelineCursor::Before(Seq(seq)));
    }
    let mut out = Vec::new();
    for cursor in cursors {
        for audience in [Audience::Staff, Audience::Customer] {
            for limit in [1, 3, 50] {
                let query = TimelineQuery::new(cursor, limit, audience);
                let page = timeline_or_archive(store, archive, &tenant, &conversation, query);
                out.push(page.await.unwrap());
            }
        }
    }
    out
}

/// The first event's time plus 31 days: the sample conversation resolved 30 days and a few
/// seconds before.
fn a_month_later() -> Timestamp {
    Timestamp(fixtures::EPOCH_MICROS + 31 * 86_400_000_000)
}

struct Scene {
    dir: tempfile::TempDir,
    hot: Hot,
    archive: Archive,
    archiver: Archiver,
}

/// Two old resolved conversations, one resolved recently, one never resolved, one with a
/// broken chain.
async fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let mut hot = Hot::open(&dir.path().join("hot"));
    let archive = Archive::local(&dir.path().join("archive")).unwrap();
    for (id, days, broken) in [("old-1", 0, None), ("old-2", 0, None), ("young", 10, None)] {
        hot.project(&history(id, days, broken)[..RESOLVED]).await;
    }
    hot.project(&history("open", 0, None)[..8]).await;
    // The projector refuses a broken link, so the damage is done to the store itself: the row
    // of seq 8 replaced by a frame that links elsewhere, as tampering with the store would.
    hot.project(&history("broken", 0, None)[..RESOLVED]).await;
    let forged = history("broken", 0, Some(8));
    let (event, frame) = &forged[7];
    let mut tampered = switchboard_store::Batch::default();
    tampered.timeline(switchboard_store::timeline::TimelineRow::from_event(
        event,
        frame.clone(),
    ));
    hot.store.apply(&tampered).await.unwrap();
    let archiver = Archiver::new(
        hot.store.clone(),
        archive.clone(),
        ArchiverConfig::default(),
    );
    Scene {
        dir,
        hot,
        archive,
        archiver,
    }
}

/// The day the old conversations were resolved.
fn resolved_day() -> Day {
    let (resolution, _) = &history("old-1", 0, None)[RESOLVED - 1];
    Day::of(resolution.envelope.occurred_at)
}

const ALL: [&str; 5] = ["old-1", "old-2", "young", "open", "broken"];

#[tokio::test]
async fn archived_history_reads_back_page_for_page_and_verifies() {
    let s = scene().await;
    let store = &*s.hot.store;
    let mut before = Vec::new();
    for id in ALL {
        before.push(pages(store, &s.archive, id).await);
    }

    let report = s.archiver.run_once(a_month_later()).await.unwrap();
    assert_eq!(
        report,
        ArchiveReport {
            conversations: 2,
            files: 1,
            refused: 1
        }
    );
    for (id, before) in ALL.into_iter().zip(&before) {
        assert_eq!(&pages(store, &s.archive, id).await, before, "{id}");
    }
    for id in ["old-1", "old-2"] {
        let entry = store
            .archived(&fixtures::tenant(), &conv(id))
            .await
            .unwrap();
        let entry = entry.expect("archived");
        assert_eq!((entry.first_seq, entry.last_seq), (Seq(1), Seq(15)));
        let query = TimelineQuery::new(TimelineCursor::Oldest, 50, Audience::Staff);
        let hot = store.timeline(&fixtures::tenant(), &conv(id), query).await;
        assert!(hot.unwrap().entries.is_empty(), "{id} left the hot store");
        let frames = s.archive.read_conversation(&entry).await.unwrap();
        let expected: Vec<_> = history(id, 0, None)[..RESOLVED]
            .iter()
            .map(|(_, frame)| frame.clone())
            .collect();
        assert_eq!(frames, expected, "byte-identical frames");
        let mut verifier = Verifier::new().expect_head(entry.last_seq, entry.last_hash);
        frames.iter().for_each(|f| verifier.push(f));
        assert!(matches!(
            verifier.finish(),
            Verdict::Intact { events: 15, .. }
        ));
    }
    for id in ["young", "open", "broken"] {
        let entry = store
            .archived(&fixtures::tenant(), &conv(id))
            .await
            .unwrap();
        assert_eq!(entry, None, "{id} stays hot");
    }
}

#[tokio::test]
async fn a_second_run_changes_nothing() {
    let s = scene().await;
    let store = &*s.hot.store;
    s.archiver.run_once(a_month_later()).await.unwrap();
    let day = Day::of(
        history("old-1", 0, None)[RESOLVED - 1]
            .0
            .envelope
            .occurred_at,
    );
    let manifest = store.archive_manifest(&fixtures::tenant(), day).await;
    let manifest = manifest.unwrap();
    let mut before = Vec::new();
    for id in ALL {
        before.push(pages(store, &s.archive, id).await);
    }

    let again = s.archiver.run_once(a_month_later()).await.unwrap();
    assert_eq!(again.conversations + again.files, 0, "{again:?}");
    let after = store.archive_manifest(&fixtures::tenant(), day).await;
    assert_eq!(after.unwrap(), manifest);
    assert_eq!(manifest.len(), 2);
    for (id, before) in ALL.into_iter().zip(&before) {
        assert_eq!(&pages(store, &s.archive, id).await, before, "{id}");
    }
}

#[tokio::test]
async fn a_late_event_is_served_after_the_archived_ones() {
    let mut s = scene().await;
    s.archiver.run_once(a_month_later()).await.unwrap();
    let reopened = &history("old-1", 0, None)[..RESOLVED + 1];
    s.hot.project(&reopened[RESOLVED..]).await;

    let dir = tempfile::tempdir().unwrap();
    let mut reference = Hot::open(dir.path());
    reference.project(reopened).await;
    assert_eq!(
        pages(&*s.hot.store, &s.archive, "old-1").await,
        pages(&*reference.store, &s.archive, "old-1").await
    );
    let query = TimelineQuery::new(TimelineCursor::Newest, 1, Audience::Customer);
    let (tenant, old) = (fixtures::tenant(), conv("old-1"));
    let page = timeline_or_archive(&*s.hot.store, &s.archive, &tenant, &old, query).await;
    assert_eq!(page.unwrap().entries[0].seq, Seq(16));
}

#[tokio::test]
async fn a_reopened_conversation_resolved_again_is_archived_whole() {
    let mut s = scene().await;
    s.archiver.run_once(a_month_later()).await.unwrap();
    // Reopened at seq 16; a 17th event resolves it again (a re-chained resolution).
    let mut events = history("old-1", 0, None);
    let (mut resolved, _) = events[RESOLVED - 1].clone();
    resolved.envelope.seq = Seq(17);
    resolved.envelope.event_id = fixtures::event_id(17);
    let frame = resolved
        .encode_chained(events[RESOLVED].0.envelope.hash)
        .unwrap();
    events.truncate(RESOLVED + 1);
    events.push((resolved, frame));
    s.hot.project(&events[RESOLVED..]).await;

    let later = Timestamp(a_month_later().0 + 31 * 86_400_000_000);
    s.archiver.run_once(later).await.unwrap();
    let entry = s
        .hot
        .store
        .archived(&fixtures::tenant(), &conv("old-1"))
        .await;
    let entry = entry.unwrap().expect("archived again");
    assert_eq!((entry.first_seq, entry.last_seq), (Seq(1), Seq(17)));
    let frames = s.archive.read_conversation(&entry).await.unwrap();
    let expected: Vec<_> = events.iter().map(|(_, f)| f.clone()).collect();
    assert_eq!(frames, expected);
}

#[tokio::test]
async fn a_crash_between_the_file_and_the_manifest_reuses_the_file() {
    let s = scene().await;
    // The run that crashed wrote the file of both old conversations, and recorded nothing.
    let mut written = Vec::new();
    for id in ["old-1", "old-2"] {
        let store = &s.hot.store;
        let summary = store.conversation(&fixtures::tenant(), &conv(id)).await;
        let summary = summary.unwrap().unwrap();
        written.push(s.archiver.whole_timeline(&summary).await.unwrap().unwrap());
    }
    let day = resolved_day();
    let object = s.archive.write(&fixtures::tenant(), day, &written).await;
    let object = object.unwrap();

    let report = s.archiver.run_once(a_month_later()).await.unwrap();
    assert_eq!((report.conversations, report.files), (2, 1));
    let manifest = s.hot.store.archive_manifest(&fixtures::tenant(), day).await;
    let objects: Vec<_> = manifest.unwrap().into_iter().map(|e| e.object).collect();
    assert_eq!(objects, [object.clone(), object.clone()]);
    let dir = s.dir.path().join("archive").join(&object);
    let files = std::fs::read_dir(dir.parent().unwrap()).unwrap().count();
    assert_eq!(files, 1, "the rerun wrote no second file");
}

#[tokio::test(start_paused = true)]
async fn the_task_runs_until_told_to_stop() {
    let s = scene().await;
    let (stop, shutdown) = watch::channel(false);
    let task = s.archiver.clone().spawn(shutdown);
    stop.send(true).unwrap();
    // Paused time runs ahead to the timeout if the task keeps ticking instead of stopping.
    let stopped = tokio::time::timeout(Duration::from_secs(7200), task).await;
    assert!(stopped.is_ok(), "the archiver did not stop");
}
