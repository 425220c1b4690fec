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

mod keys_at_rest {
    use std::path::Path;
    use std::sync::Arc;

    use switchboard_events::id::{CustomerId, TenantId};
    use switchboard_events::personal::KeyProvider;

    use super::super::{EmbeddedOptions, EmbeddedStore, schema};
    use crate::ReadModels;
    use crate::keywrap::{KeyWrap, LocalKek};

    fn kek(id: &str, byte: u8) -> Arc<dyn KeyWrap> {
        Arc::new(LocalKek::new(id, [byte; 32]).unwrap())
    }

    fn open_with(dir: &Path, kek: Arc<dyn KeyWrap>) -> Result<EmbeddedStore, crate::StoreError> {
        EmbeddedStore::open(
            dir,
            EmbeddedOptions {
                kek,
                ..EmbeddedOptions::default()
            },
        )
    }

    /// The files under `dir` that hold `needle` anywhere.
    fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    // Journals are preallocated with zeros: scan only up to their written end.
                    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                    let written = &bytes[..(end + needle.len()).min(bytes.len())];
                    if written.windows(needle.len()).any(|w| w == needle) {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        found
    }

    fn customer(n: usize) -> CustomerId {
        CustomerId::new(format!("cust-{n}")).unwrap()
    }

    #[tokio::test]
    async fn data_keys_are_never_in_the_files_in_clear_and_an_erased_one_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
        let mut keys = Vec::new();
        for n in 0..20 {
            keys.push(store.create_data_key(&tenant, &customer(n)).await.unwrap());
        }
        let erased = customer(3);
        let wrapped = store
            .inner
            .t
            .data_keys
            .get(schema::data_key(tenant.as_str(), erased.as_str()))
            .unwrap()
            .unwrap()
            .to_vec();
        // Flushed to table files as well as in the journal: every place a key could be.
        for table in store.inner.t.all() {
            table.rotate_memtable_and_wait().unwrap();
        }
        for key in &keys {
            assert_eq!(
                files_holding(dir.path(), key.as_bytes()),
                Vec::<String>::new()
            );
        }
        let wrapped_tail = &wrapped[wrapped.len() - 48..];
        assert!(
            !files_holding(dir.path(), wrapped_tail).is_empty(),
            "the grep finds the wrapped key while it lives"
        );

        store.destroy_data_key(&tenant, &erased).await.unwrap();
        assert_eq!(store.data_key(&tenant, &erased).unwrap(), None);
        assert_eq!(
            files_holding(dir.path(), wrapped_tail),
            Vec::<String>::new(),
            "the erased key's wrapped form is gone from every file"
        );
        assert_eq!(
            files_holding(dir.path(), keys[3].as_bytes()),
            Vec::<String>::new()
        );
        // The others still open, after a reopen too.
        drop(store);
        let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
        assert_eq!(
            store.data_key(&tenant, &customer(4)).unwrap(),
            Some(keys[4].clone())
        );
    }

    #[tokio::test]
    async fn a_store_opened_with_the_wrong_or_a_missing_kek_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
        store.create_data_key(&tenant, &customer(1)).await.unwrap();
        drop(store);

        let error = open_with(dir.path(), kek("kek-1", 2))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "key-encryption key \"kek-1\" does not open what this store wrapped under that id: it is the wrong key"
        );
        let error = open_with(dir.path(), kek("kek-2", 2))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"kek-1\", which is not configured"),
            "{error}"
        );
        // The refusals changed nothing: the right KEK still opens it.
        assert!(open_with(dir.path(), kek("kek-1", 1)).is_ok());
    }

    #[tokio::test]
    async fn a_rotation_rewraps_every_key_so_the_old_kek_can_go() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
        let key = store.create_data_key(&tenant, &customer(1)).await.unwrap();
        store.create_data_key(&tenant, &customer(2)).await.unwrap();
        store.destroy_data_key(&tenant, &customer(2)).await.unwrap();
        drop(store);

        let rotated: Arc<dyn KeyWrap> = Arc::new(
            LocalKek::new("kek-2", [2; 32])
                .unwrap()
                .with_previous("kek-1", [1; 32])
                .unwrap(),
        );
        let store = open_with(dir.path(), rotated).unwrap();
        assert_eq!(
            store.data_key(&tenant, &customer(1)).unwrap(),
            Some(key.clone())
        );
        drop(store);

        let store = open_with(dir.path(), kek("kek-2", 2)).unwrap();
        assert_eq!(store.data_key(&tenant, &customer(1)).unwrap(), Some(key));
        assert_eq!(store.data_key(&tenant, &customer(2)).unwrap(), None);
    }

    #[tokio::test]
    async fn keys_stored_in_clear_by_an_older_build_are_wrapped_at_the_first_open() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let clear = [0x42u8; 32];
        {
            let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
            // What an older build wrote: `[version][live][key]`, and no check value.
            let mut row = vec![crate::codec::VERSION, 1];
            row.extend_from_slice(&clear);
            let t = &store.inner.t;
            t.data_keys
                .insert(schema::data_key(tenant.as_str(), customer(1).as_str()), row)
                .unwrap();
            t.keks.remove("kek-1").unwrap();
            for table in t.all() {
                table.rotate_memtable_and_wait().unwrap();
            }
            assert!(!files_holding(dir.path(), &clear).is_empty());
        }
        let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
        let key = store.data_key(&tenant, &customer(1)).unwrap().unwrap();
        assert_eq!(key.as_bytes(), &clear);
        assert_eq!(files_holding(dir.path(), &clear), Vec::<String>::new());
    }

    mod shared {
        use std::time::Duration;

        use switchboard_events::personal::DataKey;

        use super::*;
        use crate::key_record::{HeldKey, KeyRecord};
        use crate::keywrap::key_context;

        const TOPIC: &str = "switchboard.keys";

        fn record(
            kek: &dyn KeyWrap,
            tenant: &TenantId,
            customer: &CustomerId,
        ) -> (DataKey, KeyRecord) {
            let key = DataKey::generate().unwrap();
            let wrapped = kek.wrap(&key, &key_context(tenant, customer)).unwrap();
            (key, KeyRecord::Wrapped(wrapped))
        }

        #[test]
        fn the_first_key_wins_an_erasure_holds_and_the_offset_is_kept() {
            let dir = tempfile::tempdir().unwrap();
            let ring = kek("kek-1", 1);
            let store = open_with(dir.path(), ring.clone()).unwrap();
            let tenant = TenantId::new("acme").unwrap();
            let (one, two) = (customer(1), customer(2));
            let (first, first_record) = record(&*ring, &tenant, &one);
            let (_, second_record) = record(&*ring, &tenant, &one);
            assert_eq!(store.held_key(&tenant, &one).unwrap(), HeldKey::Unknown);
            store
                .fold_key_record(TOPIC, 0, 0, (&tenant, &one), &first_record)
                .unwrap();
            store
                .fold_key_record(TOPIC, 0, 1, (&tenant, &one), &second_record)
                .unwrap();
            assert_eq!(
                store.held_key(&tenant, &one).unwrap(),
                HeldKey::Key(first.clone())
            );

            let (kept, kept_record) = record(&*ring, &tenant, &two);
            store
                .fold_key_record(TOPIC, 0, 2, (&tenant, &two), &kept_record)
                .unwrap();
            store
                .fold_key_record(TOPIC, 0, 3, (&tenant, &one), &KeyRecord::Erased)
                .unwrap();
            store
                .fold_key_record(TOPIC, 0, 4, (&tenant, &one), &second_record)
                .unwrap();
            assert_eq!(store.held_key(&tenant, &one).unwrap(), HeldKey::Erased);
            assert_eq!(
                store.held_key(&tenant, &two).unwrap(),
                HeldKey::Key(kept.clone())
            );
            assert_eq!(store.key_offset(TOPIC, 0).unwrap(), Some(5));
            assert_eq!(store.key_offset(TOPIC, 1).unwrap(), None);
            // The erased key left the files; what was folded survives a restart.
            assert_eq!(
                files_holding(dir.path(), first.as_bytes()),
                Vec::<String>::new()
            );
            drop(store);
            let store = open_with(dir.path(), ring.clone()).unwrap();
            assert_eq!(store.held_key(&tenant, &two).unwrap(), HeldKey::Key(kept));
            assert_eq!(store.key_offset(TOPIC, 0).unwrap(), Some(5));
        }

        #[test]
        fn a_key_no_configured_kek_opens_is_not_folded() {
            let dir = tempfile::tempdir().unwrap();
            let store = open_with(dir.path(), kek("kek-1", 1)).unwrap();
            let tenant = TenantId::new("acme").unwrap();
            let (_, foreign) = record(&*kek("kek-1", 2), &tenant, &customer(1));
            let refused = store.fold_key_record(TOPIC, 0, 0, (&tenant, &customer(1)), &foreign);
            assert!(refused.is_err());
            assert_eq!(store.key_offset(TOPIC, 0).unwrap(), None);
            assert_eq!(
                store.held_key(&tenant, &customer(1)).unwrap(),
                HeldKey::Unknown
            );
        }

        #[tokio::test]
        async fn a_shared_store_waits_for_a_key_being_folded_and_makes_none_itself() {
            let dir = tempfile::tempdir().unwrap();
            let ring = kek("kek-1", 1);
            let store = open_with(dir.path(), ring.clone()).unwrap();
            store.share_keys(Duration::from_secs(30));
            let tenant = TenantId::new("acme").unwrap();
            let (key, folded) = record(&*ring, &tenant, &customer(1));
            let reader = {
                let (store, tenant) = (store.clone(), tenant.clone());
                std::thread::spawn(move || store.data_key(&tenant, &customer(1)).unwrap())
            };
            // Fold only once the reader waits: it must be woken by the fold.
            while store.inner.folds.lock().unwrap().waiting == 0 {
                std::thread::yield_now();
            }
            store
                .fold_key_record(TOPIC, 0, 0, (&tenant, &customer(1)), &folded)
                .unwrap();
            assert_eq!(reader.join().unwrap(), Some(key));
            assert!(store.create_data_key(&tenant, &customer(2)).await.is_err());
            assert!(store.destroy_data_key(&tenant, &customer(1)).await.is_err());
        }
    }
}

#[tokio::test]
async fn the_configured_write_buffer_bounds_what_stays_in_memory() {
    use super::EmbeddedMemory;

    let dir = tempfile::tempdir().unwrap();
    let memory = EmbeddedMemory {
        cache_bytes: 1 << 20,
        write_buffer_bytes: 1 << 20,
        memtable_bytes: 128 << 10,
    };
    let too_small = EmbeddedMemory {
        write_buffer_bytes: 512 << 10,
        ..memory
    };
    let refused = EmbeddedStore::open(
        dir.path(),
        EmbeddedOptions {
            memory: too_small,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("write_buffer_bytes must be at least"),
        "{refused}"
    );
    let options = EmbeddedOptions {
        memory,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options).unwrap();
    let acme = suite::tenant("acme");
    for c in 0..400 {
        let mut batch = Batch::new();
        for seq in 1..=50 {
            batch.timeline(suite::message(
                &acme,
                &suite::conv(&format!("c{c}")),
                seq,
                7,
            ));
        }
        store.apply(&batch).await.unwrap();
    }
    let inner = &store.inner;
    assert_eq!(inner.keyspace.cache_capacity(), 1 << 20);
    // Flushes run in fjall's background threads: wait for them, within reason.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while inner.keyspace.write_buffer_size() > memory.write_buffer_bytes
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        inner.keyspace.write_buffer_size() <= memory.write_buffer_bytes,
        "{} bytes unflushed",
        inner.keyspace.write_buffer_size()
    );
    assert!(
        inner.t.timeline.segment_count() > 0,
        "the timeline was flushed to table files"
    );
    let page = store
        .timeline(
            &acme,
            &suite::conv("c0"),
            crate::timeline::TimelineQuery::new(
                crate::timeline::TimelineCursor::Oldest,
                100,
                crate::timeline::Audience::Staff,
            ),
        )
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 50, "what was flushed reads back");
}
