//! The customers' data keys shared by every process of a deployment through a compacted keys
//! topic, for a Kafka log with an embedded store in each process (with ScyllaDB the store
//! itself is the shared key store, and [`super::keys::StoreKeys`] is used instead).
//!
//! Each process folds the whole topic into its own embedded store, in log order, with the
//! rules of [`switchboard_store::key_record`]: a customer's first key record wins, an erasure
//! always applies and nothing brings the key back. The offsets folded are stored with the keys,
//! so a restart goes on where it stopped; a store that is ahead of the topic (a topic made
//! anew) folds it from its start again.
//!
//! A writer asking for a customer's key the store does not hold first catches up with the
//! keys topic as it is at that moment, so an instance that took over a partition knows every
//! key the former owner made. Only when the key is still unknown does it make one: it appends
//! the wrapped key, waits until that record is durable and folded, and then uses whatever the
//! fold holds. When another writer's record came first, that is the winner's key: the loser
//! appends the winner's key again, so that compaction, which keeps only the newest record of a
//! key, keeps the winner. Nothing is sealed before its key's record is durable.
//!
//! The follower runs on a thread of its own: the store's reads of a key not folded yet wait
//! for it ([`EmbeddedStore::share_keys`]), and a wait on the async threads must not keep the
//! fold from running.

use std::sync::Arc;
use std::time::Duration;

use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::partition::partition_for_key;
use switchboard_events::personal::DataKey;
use switchboard_log::{AppendOptions, EventLog, Follow, NewRecord, StartAt, TopicSpec};
use switchboard_store::ReadModels;
use switchboard_store::embedded::EmbeddedStore;
use switchboard_store::key_record::{self, HeldKey, KeyRecord};
use switchboard_store::keywrap::{KeyWrap, key_context};
use tokio::sync::watch;

use super::cache::StateCache;
use super::keys::{BoxFuture, DataKeys, StoreKeys};
use crate::error::CommandError;

/// How the keys topic is named and shaped.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub topic: String,
    pub partitions: u32,
    /// How long a writer waits for the fold to reach the topic's end before it answers
    /// `unavailable` (retriable).
    pub catch_up: Duration,
    /// How long a read of a key not folded yet waits for it.
    pub read_wait: Duration,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            topic: "switchboard.keys".to_owned(),
            partitions: 1,
            catch_up: Duration::from_secs(10),
            read_wait: Duration::from_secs(2),
        }
    }
}

impl DirectoryConfig {
    /// The keys topic: compacted, so each customer's newest record (their key, or the mark of
    /// their erasure) is kept and the older ones are removed. Records stay uncompacted for an
    /// hour (time for a loser of a creation race to restate the winner), segments roll hourly
    /// and a segment with anything to remove is compacted within a day: a wrapped key stays on
    /// the brokers for at most about a day after its customer is erased.
    pub fn topic_spec(&self) -> TopicSpec {
        TopicSpec::new(&self.topic, self.partitions)
            .with("cleanup.policy", "compact")
            .with("min.compaction.lag.ms", "3600000")
            .with("max.compaction.lag.ms", "86400000")
            .with("segment.ms", "3600000")
            .with("min.cleanable.dirty.ratio", "0.01")
    }
}

/// The shared key directory of one process.
#[derive(Debug)]
pub struct KeyDirectory {
    log: Arc<dyn EventLog>,
    store: Arc<EmbeddedStore>,
    kek: Arc<dyn KeyWrap>,
    config: DirectoryConfig,
    /// Per partition, the next offset not folded yet.
    folded: Vec<watch::Receiver<u64>>,
    /// Snapshots and parked conversations of the writer, in the same store.
    state: StoreKeys,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeyDirectory {
    /// Creates (or checks) the keys topic and starts folding it into `store`. `models` is the
    /// same store as the services see it (with its metrics), for the writer's own state.
    pub async fn start(
        log: Arc<dyn EventLog>,
        store: Arc<EmbeddedStore>,
        models: Arc<dyn ReadModels>,
        kek: Arc<dyn KeyWrap>,
        config: DirectoryConfig,
    ) -> Result<Self, CommandError> {
        let log_error = |e: switchboard_log::LogError| CommandError::Unavailable(e.to_string());
        log.create_topic(&config.topic_spec())
            .await
            .map_err(log_error)?;
        store.share_keys(config.read_wait);
        let (stop, stopped) = watch::channel(false);
        let mut folded = Vec::new();
        let mut followers = Vec::new();
        for partition in 0..config.partitions {
            let from = store
                .key_offset(&config.topic, partition)
                .map_err(|e| CommandError::Internal(format!("the key store: {e}")))?;
            let range = log
                .offsets(&config.topic, partition)
                .await
                .map_err(log_error)?;
            // A store ahead of the topic folded another topic of that name: start over.
            let start = match from {
                Some(next) if next <= range.end => next,
                _ => range.start,
            };
            let (sender, receiver) = watch::channel(start);
            folded.push(receiver);
            followers.push((partition, start, sender));
        }
        let (fold_log, fold_store, topic) = (log.clone(), store.clone(), config.topic.clone());
        let thread = std::thread::Builder::new()
            .name("key-directory".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let Ok(runtime) = runtime else {
                    tracing::error!("the key directory could not start its runtime");
                    return;
                };
                runtime.block_on(async move {
                    let mut running = tokio::task::JoinSet::new();
                    for (partition, start, sender) in followers {
                        let follower = Follower {
                            log: fold_log.clone(),
                            store: fold_store.clone(),
                            topic: topic.clone(),
                            partition,
                            folded: sender,
                            stopped: stopped.clone(),
                        };
                        running.spawn(follower.run(start));
                    }
                    while running.join_next().await.is_some() {}
                });
            })
            .map_err(|e| CommandError::Internal(format!("starting the key directory: {e}")))?;
        Ok(Self {
            log,
            store,
            kek,
            config,
            folded,
            state: StoreKeys(models),
            stop,
            thread: Some(thread),
        })
    }

    fn held(&self, tenant: &TenantId, customer: &CustomerId) -> Result<HeldKey, CommandError> {
        self.store
            .held_key(tenant, customer)
            .map_err(|e| CommandError::Unavailable(format!("the key store failed: {e}")))
    }

    /// Waits until `partition` is folded up to (not including) `offset`.
    async fn folded_to(&self, partition: u32, offset: u64) -> Result<(), CommandError> {
        let mut folded = self.folded[partition as usize].clone();
        let reached = tokio::time::timeout(
            self.config.catch_up,
            folded.wait_for(|next| *next >= offset),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(CommandError::Unavailable(
                "the key directory stopped".to_owned(),
            )),
            Err(_) => Err(CommandError::Unavailable(format!(
                "the key directory did not reach offset {offset} of {}/{partition} within {:?}",
                self.config.topic, self.config.catch_up
            ))),
        }
    }

    /// Waits until `partition` is folded to the end it has now.
    async fn caught_up(&self, partition: u32) -> Result<(), CommandError> {
        let end = self
            .log
            .offsets(&self.config.topic, partition)
            .await
            .map_err(|e| CommandError::Unavailable(format!("the keys topic: {e}")))?
            .end;
        self.folded_to(partition, end).await
    }

    /// Appends a record of the customer's and waits until it is folded.
    async fn append(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        record: &KeyRecord,
    ) -> Result<(), CommandError> {
        let key = key_record::record_key(tenant, customer);
        let partition = partition_for_key(&key, self.config.partitions);
        let positions = self
            .log
            .append(
                &self.config.topic,
                vec![NewRecord::new(key, record.encode())],
                &AppendOptions::default(),
            )
            .await
            .map_err(|e| CommandError::Unavailable(format!("the keys topic: {e}")))?;
        let offset = positions.first().map_or(0, |p| p.offset);
        self.folded_to(partition, offset + 1).await
    }

    fn wrap(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        key: &DataKey,
    ) -> Result<KeyRecord, CommandError> {
        self.kek
            .wrap(key, &key_context(tenant, customer))
            .map(KeyRecord::Wrapped)
            .map_err(|e| CommandError::Internal(format!("wrapping a data key: {e}")))
    }

    async fn key_of(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, CommandError> {
        let partition = partition_for_key(
            &key_record::record_key(tenant, customer),
            self.config.partitions,
        );
        if matches!(self.held(tenant, customer)?, HeldKey::Unknown) {
            // Another process may have made it: know everything the topic holds now.
            self.caught_up(partition).await?;
        }
        match self.held(tenant, customer)? {
            HeldKey::Key(key) => return Ok(Some(key)),
            HeldKey::Erased => return Ok(None),
            HeldKey::Unknown => {}
        }
        let made = DataKey::generate().map_err(|e| CommandError::Internal(e.to_string()))?;
        self.append(tenant, customer, &self.wrap(tenant, customer, &made)?)
            .await?;
        match self.held(tenant, customer)? {
            HeldKey::Key(key) if key == made => Ok(Some(key)),
            HeldKey::Key(winner) => {
                // Compaction keeps a key's newest record: make it the winner's again.
                self.append(tenant, customer, &self.wrap(tenant, customer, &winner)?)
                    .await?;
                if self.held(tenant, customer)? == HeldKey::Erased {
                    // Erased meanwhile: the newest record must say so.
                    self.append(tenant, customer, &KeyRecord::Erased).await?;
                    return Ok(None);
                }
                Ok(Some(winner))
            }
            HeldKey::Erased => Ok(None),
            HeldKey::Unknown => Err(CommandError::Internal(format!(
                "the key record of customer {customer} was folded, and no key is held"
            ))),
        }
    }
}

impl Drop for KeyDirectory {
    /// Stops the follower and waits for its thread, which lets go of the store.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Folds one partition of the keys topic into the store.
struct Follower {
    log: Arc<dyn EventLog>,
    store: Arc<EmbeddedStore>,
    topic: String,
    partition: u32,
    /// The next offset not folded yet.
    folded: watch::Sender<u64>,
    stopped: watch::Receiver<bool>,
}

impl Follower {
    /// Folds from `start` until stopped.
    async fn run(mut self, start: u64) {
        let mut follow = loop {
            let started = Follow::start(
                self.log.clone(),
                &self.topic,
                self.partition,
                StartAt::Offset(start),
            );
            match started.await {
                Ok(follow) => break follow,
                Err(error) => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, %error, "the key directory cannot reach its topic; retrying");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        loop {
            let record = tokio::select! {
                record = follow.next() => record,
                _ = self.stopped.wait_for(|stop| *stop) => return,
            };
            let decoded = key_record::record_owner(&record.key)
                .and_then(|owner| KeyRecord::decode(&record.value).map(|value| (owner, value)));
            match decoded {
                Ok((owner, value)) => {
                    if !self.fold(record.offset, (&owner.0, &owner.1), &value).await {
                        return;
                    }
                }
                // Every process skips the same record: they still agree.
                Err(error) => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, offset = record.offset, %error, "a key record that is not one: skipped");
                }
            }
            self.folded.send_replace(record.offset + 1);
        }
    }

    /// Folds one record, retrying until it is folded; `false` when stopped first.
    async fn fold(
        &mut self,
        offset: u64,
        owner: (&TenantId, &CustomerId),
        record: &KeyRecord,
    ) -> bool {
        let mut backoff = Duration::from_millis(10);
        loop {
            let folded =
                self.store
                    .fold_key_record(&self.topic, self.partition, offset, owner, record);
            match folded {
                Ok(()) => return true,
                Err(error) => {
                    // A key no configured KEK opens, a full disk: the operator must act, and
                    // nothing after it may be folded before it.
                    tracing::error!(topic = %self.topic, partition = self.partition, offset, %error, "folding a key record failed (every process of a deployment needs the same store.kek); retrying");
                    if self.pause(backoff).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Sleeps `pause`; `true` when stopped meanwhile.
    async fn pause(&mut self, pause: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(pause) => false,
            _ = self.stopped.wait_for(|stop| *stop) => true,
        }
    }
}

impl DataKeys for KeyDirectory {
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<DataKey>, CommandError>> {
        Box::pin(self.key_of(tenant, customer))
    }

    fn destroy<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            if self.held(tenant, customer)? == HeldKey::Erased {
                return Ok(());
            }
            self.append(tenant, customer, &KeyRecord::Erased).await
        })
    }

    fn state_cache(&self) -> Option<&dyn StateCache> {
        Some(&self.state)
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
