//! The key directory on a real embedded log shared by several "processes", each with its own
//! embedded store: they agree on one key per customer, the first record in log order wins a
//! race, an erasure holds for good, and a restart goes on from the stored offsets.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::{DataKey, KeyProvider};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{
    AppendOptions, EventLog, GroupMember, NewRecord, OffsetRange, Position, Record, StartAt, Tail,
    TopicSpec,
};
use switchboard_store::ReadModels;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use switchboard_store::key_record::{self, HeldKey, KeyRecord};
use switchboard_store::keywrap::{KeyWrap, LocalKek, key_context};

use super::*;

const TOPIC: &str = "switchboard.keys";

fn kek() -> Arc<dyn KeyWrap> {
    Arc::new(LocalKek::new("kek-1", [7; 32]).unwrap())
}

fn ids(customer: &str) -> (TenantId, CustomerId) {
    (
        TenantId::new("acme").unwrap(),
        CustomerId::new(customer).unwrap(),
    )
}

fn store(dir: &std::path::Path) -> Arc<EmbeddedStore> {
    let options = EmbeddedOptions {
        kek: kek(),
        ..EmbeddedOptions::default()
    };
    Arc::new(EmbeddedStore::open(dir, options).unwrap())
}

/// One process: its own store in `dir`, the shared `log`.
async fn process(log: Arc<dyn EventLog>, dir: &std::path::Path) -> KeyDirectory {
    let store = store(dir);
    let models: Arc<dyn ReadModels> = store.clone();
    KeyDirectory::start(log, store, models, kek(), DirectoryConfig::default())
        .await
        .unwrap()
}

fn wrapped(tenant: &TenantId, customer: &CustomerId, key: &DataKey) -> NewRecord {
    let record = KeyRecord::Wrapped(kek().wrap(key, &key_context(tenant, customer)).unwrap());
    NewRecord::new(key_record::record_key(tenant, customer), record.encode())
}

/// The values of the keys topic, decoded, in log order.
async fn records(log: &dyn EventLog) -> Vec<KeyRecord> {
    log.read(TOPIC, 0, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| KeyRecord::decode(&r.value).unwrap())
        .collect()
}

fn unwrapped(record: &KeyRecord, tenant: &TenantId, customer: &CustomerId) -> DataKey {
    match record {
        KeyRecord::Wrapped(w) => kek().unwrap(w, &key_context(tenant, customer)).unwrap(),
        KeyRecord::Erased => panic!("an erasure, not a key"),
    }
}

#[tokio::test]
async fn processes_agree_on_the_key_one_of_them_made() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dirs[0].path())).unwrap());
    let a = process(log.clone(), dirs[1].path()).await;
    let b = process(log.clone(), dirs[2].path()).await;
    let (tenant, customer) = ids("cust-1");

    let made = a.key(&tenant, &customer).await.unwrap().unwrap();
    assert_eq!(b.key(&tenant, &customer).await.unwrap(), Some(made.clone()));
    assert_eq!(a.key(&tenant, &customer).await.unwrap(), Some(made.clone()));
    assert_eq!(records(&*log).await.len(), 1, "one record: b made none");
    // Readers of b's store (its edge, its query service) open what a sealed under it.
    assert_eq!(
        b.store.data_key(&tenant, &customer).unwrap(),
        Some(made.clone())
    );
    // The key travels wrapped: its bytes are nowhere in the record.
    let raw = log.read(TOPIC, 0, 0, 1).await.unwrap();
    assert!(!raw[0].value.windows(32).any(|w| w == made.as_bytes()));
}

/// A log that appends another writer's record just before the next append of ours: the race
/// of two writers creating a key for one customer at once, which the other one wins.
#[derive(Debug)]
struct Raced {
    inner: Arc<EmbeddedLog>,
    first: Mutex<Option<NewRecord>>,
}

#[async_trait]
impl EventLog for Raced {
    async fn create_topic(&self, spec: &TopicSpec) -> switchboard_log::Result<()> {
        self.inner.create_topic(spec).await
    }
    async fn partitions(&self, topic: &str) -> switchboard_log::Result<u32> {
        self.inner.partitions(topic).await
    }
    async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
        options: &AppendOptions,
    ) -> switchboard_log::Result<Vec<Position>> {
        let first = self.first.lock().unwrap().take();
        if let Some(first) = first {
            self.inner.append(topic, vec![first], options).await?;
        }
        self.inner.append(topic, records, options).await
    }
    async fn claim(
        &self,
        topic: &str,
        partition: u32,
    ) -> switchboard_log::Result<switchboard_log::Fence> {
        self.inner.claim(topic, partition).await
    }
    async fn offsets(&self, topic: &str, partition: u32) -> switchboard_log::Result<OffsetRange> {
        self.inner.offsets(topic, partition).await
    }
    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> switchboard_log::Result<Vec<Record>> {
        self.inner.read(topic, partition, from, max).await
    }
    async fn tail(
        &self,
        topic: &str,
        partition: u32,
        start: StartAt,
    ) -> switchboard_log::Result<Box<dyn Tail>> {
        self.inner.tail(topic, partition, start).await
    }
    async fn join_group(
        &self,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> switchboard_log::Result<Box<dyn GroupMember>> {
        self.inner.join_group(group, topic, start).await
    }
}

#[tokio::test]
async fn the_first_key_in_log_order_wins_a_race_and_stays_the_newest_record() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (tenant, customer) = ids("cust-1");
    let winner = DataKey::generate().unwrap();
    let inner = Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dirs[0].path())).unwrap());
    let raced = Arc::new(Raced {
        inner: inner.clone(),
        first: Mutex::new(Some(wrapped(&tenant, &customer, &winner))),
    });
    let other = process(inner.clone(), dirs[1].path()).await;
    let loser = process(raced, dirs[2].path()).await;

    // The loser found no key, made one, and its record came second: it uses the winner's.
    assert_eq!(
        loser.key(&tenant, &customer).await.unwrap(),
        Some(winner.clone())
    );
    assert_eq!(
        other.key(&tenant, &customer).await.unwrap(),
        Some(winner.clone())
    );
    let log: &dyn EventLog = &*inner;
    let written = records(log).await;
    assert_eq!(
        written.len(),
        3,
        "the winner, the loser's, the winner again"
    );
    assert_eq!(unwrapped(&written[0], &tenant, &customer), winner);
    assert_ne!(unwrapped(&written[1], &tenant, &customer), winner);
    // Compaction keeps only the newest record of a key: the winner's.
    assert_eq!(unwrapped(&written[2], &tenant, &customer), winner);

    // A new process folds the topic from its start to the same key.
    let late = process(inner.clone(), dirs[3].path()).await;
    assert_eq!(late.key(&tenant, &customer).await.unwrap(), Some(winner));
    assert_eq!(records(log).await.len(), 3);
}

#[tokio::test]
async fn an_erased_customer_stays_erased_everywhere() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dirs[0].path())).unwrap());
    let a = process(log.clone(), dirs[1].path()).await;
    let b = process(log.clone(), dirs[2].path()).await;
    let (tenant, customer) = ids("cust-1");
    a.key(&tenant, &customer).await.unwrap().unwrap();
    assert!(b.key(&tenant, &customer).await.unwrap().is_some());

    b.destroy(&tenant, &customer).await.unwrap();
    assert_eq!(b.key(&tenant, &customer).await.unwrap(), None);
    // A key record after the erasure (a writer that had not seen it) changes nothing.
    let late = wrapped(&tenant, &customer, &DataKey::generate().unwrap());
    let at = log
        .append(TOPIC, vec![late], &AppendOptions::default())
        .await
        .unwrap()[0];
    a.folded_to(0, at.offset + 1).await.unwrap();
    for process in [&a, &b] {
        assert_eq!(process.key(&tenant, &customer).await.unwrap(), None);
        assert_eq!(process.store.data_key(&tenant, &customer).unwrap(), None);
        assert_eq!(
            process.store.held_key(&tenant, &customer).unwrap(),
            HeldKey::Erased
        );
    }
    // Erasing again appends nothing; a new process knows of the erasure.
    b.destroy(&tenant, &customer).await.unwrap();
    assert_eq!(records(&*log).await.len(), 3);
    let fresh = process(log.clone(), dirs[3].path()).await;
    assert_eq!(fresh.key(&tenant, &customer).await.unwrap(), None);
    // The store of a shared directory makes and erases no key of its own.
    assert!(
        fresh
            .store
            .create_data_key(&tenant, &customer)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_restart_goes_on_from_the_offset_its_store_holds() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let log: Arc<dyn EventLog> =
        Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dirs[0].path())).unwrap());
    let (tenant, first) = ids("cust-1");
    let (_, second) = ids("cust-2");
    let made = {
        let process = process(log.clone(), dirs[1].path()).await;
        process.key(&tenant, &first).await.unwrap().unwrap()
    };
    // While it is down, another process makes a key.
    let other = DataKey::generate().unwrap();
    log.append(
        TOPIC,
        vec![wrapped(&tenant, &second, &other)],
        &AppendOptions::default(),
    )
    .await
    .unwrap();

    let again = process(log.clone(), dirs[1].path()).await;
    assert_eq!(
        *again.folded[0].borrow(),
        1,
        "it starts after what it folded"
    );
    assert_eq!(again.key(&tenant, &first).await.unwrap(), Some(made));
    assert_eq!(again.key(&tenant, &second).await.unwrap(), Some(other));
    assert_eq!(again.store.key_offset(TOPIC, 0).unwrap(), Some(2));
}
