//! The generic suite on the embedded store, and what only the embedded store promises: a
//! batch and its checkpoint are atomic and survive a reopen.

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use tempfile::TempDir;

use super::{EmbeddedOptions, EmbeddedStore};
use crate::suite::{self, digest};
use crate::{Batch, ReadModels};

fn open() -> (TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = EmbeddedOptions {
        sync_batches: false,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options).expect("the store opens");
    (dir, store)
}

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                let (_dir, store) = open();
                suite::$scenario(&store).await;
            }
        )*
    };
}

suite!(
    timeline_pages_go_both_ways_with_cursors,
    timeline_keeps_the_original_frames,
    lists_follow_the_summaries,
    agents_carry_their_load,
    reports_sum_partitions_and_never_double,
    checkpoints_only_move_forward,
    data_keys_are_created_once_and_destroyed_for_good,
    archiving_moves_a_conversation_out,
    the_writer_cache_keeps_the_newest_entry,
    the_same_conversation_id_in_two_tenants_is_two_conversations,
);

#[tokio::test]
async fn a_batch_and_its_checkpoint_survive_a_crash_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    store.apply(&suite::sample_batch(3)).await.unwrap();
    let before = digest(&store, 0).await;
    // A crash: nothing is flushed or closed, the directory is reopened as found.
    std::mem::forget(store);
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(digest(&store, 0).await, before);
    assert!(before.contains("checkpoint projector/0 = 3"), "{before}");
    assert!(before.contains("timeline acme/c1"), "{before}");
}

#[tokio::test]
async fn a_list_page_stays_full_when_entries_moved_on_under_it() {
    use crate::conversation::{ConversationList, ConversationStatus, ListQuery};
    use switchboard_events::Timestamp;

    let (_dir, store) = open();
    let acme = suite::tenant("acme");
    let mut batch = crate::Batch::new();
    for (i, name) in ["c1", "c2", "c3"].into_iter().enumerate() {
        batch.conversation(suite::summary(
            &acme,
            name,
            ConversationStatus::Open,
            i as i64,
            1,
        ));
    }
    store.apply(&batch).await.unwrap();
    // Entries a reader may meet mid-write: one without a summary, one whose summary moved.
    let prefix = super::schema::list_prefix("acme", &ConversationList::Recent);
    for (at, name) in [(i64::MAX, "gone"), (i64::MAX - 1, "c1")] {
        let key = super::schema::list_entry(&prefix, Timestamp(at), name);
        store.inner.t.lists.insert(key, []).unwrap();
    }
    let page = store
        .conversations(&acme, &ListQuery::first(ConversationList::Recent, 2))
        .await
        .unwrap();
    let ids: Vec<_> = page
        .items
        .iter()
        .map(|s| s.conversation.to_string())
        .collect();
    assert_eq!(ids, ["c3", "c2"]);
    assert!(page.next.is_some(), "c1 is still to come");
    let stale = super::schema::queue_entry("acme", Timestamp(0), "c2");
    store.inner.t.queue.insert(stale, []).unwrap();
    assert!(
        store.queue(&acme).await.unwrap().is_empty(),
        "c2 is open, not queued"
    );
}

#[tokio::test]
async fn the_projection_digest_sees_every_projected_row_and_only_those() {
    let ((_a, a), (_b, b)) = (open(), open());
    assert_eq!(
        a.projection_digest().unwrap(),
        b.projection_digest().unwrap()
    );
    let batch = suite::sample_batch(3);
    a.apply(&batch).await.unwrap();
    // Another checkpoint and a data key are not folds of the log: same digest.
    let mut elsewhere = batch.clone();
    elsewhere.checkpoints[0].next_offset = 99;
    b.apply(&elsewhere).await.unwrap();
    let customer = switchboard_events::fixtures::customer();
    b.create_data_key(&suite::tenant("acme"), &customer)
        .await
        .unwrap();
    assert_eq!(
        a.projection_digest().unwrap(),
        b.projection_digest().unwrap()
    );
    // One byte of one frame is not the same projection.
    let mut altered = batch.clone();
    altered.timeline[2].entry.frame.push(0);
    b.apply(&altered).await.unwrap();
    assert_ne!(
        a.projection_digest().unwrap(),
        b.projection_digest().unwrap()
    );
}

fn run<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// Runs a property over random batches, each case in a universe of its own (fresh tenants
/// and consumers) of the same two stores: opening stores per case would dominate the time.
fn for_all_batches(
    cases: u32,
    property: impl Fn(&EmbeddedStore, &EmbeddedStore, Vec<Batch>, usize, u32) -> Result<(), String>,
) {
    let ((_a, a), (_b, b)) = (open(), open());
    let next = std::sync::atomic::AtomicU32::new(1);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let inputs = (suite::batches(), 0usize..64);
    let result = runner.run(&inputs, |(batches, n)| {
        let tag = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let batches = suite::in_universe(&batches, tag);
        property(&a, &b, batches, n, tag).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Applying any batch twice, or replaying it after the ones that followed (in any order),
/// leaves what applying it once leaves: every key keeps its newest version; the digest a
/// rebuild is checked with agrees too.
#[test]
fn applying_batches_again_changes_nothing() {
    for_all_batches(64, |once, again, batches, _, tag| {
        run(suite::replaying_changes_nothing(once, again, &batches, tag))?;
        let (a, b) = (once.projection_digest(), again.projection_digest());
        (a.unwrap() == b.unwrap())
            .then_some(())
            .ok_or("projection digests differ".into())
    });
}

/// A projector that crashes after writing some or all of a batch's rows but before its
/// checkpoint, and replays from the checkpoint, ends where one that never crashed ends.
#[test]
fn a_crash_between_rows_and_checkpoint_replays_to_the_same_state() {
    for_all_batches(64, |clean, crashed, batches, n, tag| {
        let crash_at = n % batches.len();
        let cut = n / 4;
        run(suite::a_crash_before_the_checkpoint_replays_cleanly(
            clean, crashed, &batches, crash_at, cut, tag,
        ))
    });
}
