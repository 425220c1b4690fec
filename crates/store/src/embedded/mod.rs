//! The embedded backend: every read model in one fjall keyspace under one directory.
//!
//! fjall (an LSM tree) was chosen over redb by measurement: it commits a projected batch of
//! 1,000 events about 1.7 times faster, and both read a page of 50 well inside the latency
//! budget (DESIGN.md has the figures). A batch and its checkpoints are one fjall write batch,
//! which is atomic across partitions: after a crash either both are there or neither is.
//!
//! One writer at a time: writes read the rows they replace (to move list entries and keep the
//! newest version), so they hold a lock, and run on tokio's blocking pool. Reads take no lock
//! and run inline: a page is tens of microseconds from the block cache.

mod keys;
mod read;
mod schema;
#[cfg(test)]
mod tests;
mod write;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::personal::{DataKey, KeyProvider, PersonalDataError};

use crate::agent::AgentState;
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::conversation::{ConversationSummary, ListPage, ListQuery, QueueEntry};
use crate::keywrap::{KeyWrap, LocalKek};
use crate::report::{DailyReport, Day, ReportKey, ReportPartial, ReportScope};
use crate::timeline::{TimelinePage, TimelineQuery};
use crate::writer_cache::{ParkedConversation, WriterSnapshot};
use crate::{Batch, ReadModels, StoreError};

use schema::tables;

/// How the embedded store is opened.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Memory fjall may use: its block cache, its unflushed writes across tables and per
    /// table (`store.embedded` in the binary's configuration).
    pub memory: EmbeddedMemory,
    /// Sync each projected batch to disk before `apply` returns. Off (the default), a batch
    /// is handed to the operating system, so it survives a crash of the process; a power
    /// loss may drop the last batches, but never half of one: their checkpoint goes with
    /// them and the projector replays them from the log, which is the durable record. Data
    /// keys and the archive manifest are always synced.
    pub sync_batches: bool,
    /// The key-encryption key the customers' data keys are wrapped under. The default is
    /// [`LocalKek::ephemeral`], which lives only as long as the process: the binary always
    /// sets the configured one.
    pub kek: Arc<dyn KeyWrap>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            memory: EmbeddedMemory::default(),
            sync_batches: false,
            kek: LocalKek::ephemeral(),
        }
    }
}

/// The memory of the embedded store, in bytes. What fjall holds beyond these grows with the
/// data on disk (a bloom filter and the top of a block index per table file), not with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedMemory {
    /// The block cache. Default: 32 MiB.
    pub cache_bytes: u64,
    /// Unflushed writes across every table (memtables and the journal's share): past it,
    /// the largest memtable is flushed. Default: 32 MiB.
    pub write_buffer_bytes: u64,
    /// One table's memtable: past it, the memtable is flushed to a table file. Default:
    /// 8 MiB, so that a projection still flushes in runs of thousands of events.
    pub memtable_bytes: u32,
}

impl EmbeddedMemory {
    /// Refuses sizes fjall cannot work with.
    pub fn check(&self) -> Result<(), StoreError> {
        let refuse = |reason: String| Err(StoreError::InvalidRequest { reason });
        if self.write_buffer_bytes < 1024 * 1024 {
            return refuse(format!(
                "store.embedded.write_buffer_bytes must be at least 1 MiB (1048576), not {}",
                self.write_buffer_bytes
            ));
        }
        if self.memtable_bytes < 64 * 1024
            || u64::from(self.memtable_bytes) > self.write_buffer_bytes
        {
            return refuse(format!(
                "store.embedded.memtable_bytes must be between 64 KiB (65536) and write_buffer_bytes ({}), not {}",
                self.write_buffer_bytes, self.memtable_bytes
            ));
        }
        Ok(())
    }
}

impl Default for EmbeddedMemory {
    fn default() -> Self {
        Self {
            cache_bytes: 32 * 1024 * 1024,
            write_buffer_bytes: 32 * 1024 * 1024,
            memtable_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The embedded read-model store. Cheap to clone: clones share the keyspace.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    keyspace: Keyspace,
    t: Tables,
    batch_durability: Option<PersistMode>,
    writer: Mutex<()>,
    kek: Arc<dyn KeyWrap>,
    /// Set when the keys are folded in from a shared keys topic: how long a read of a key
    /// not held yet waits for it ([`EmbeddedStore::fold_key_record`]).
    shared_keys: std::sync::OnceLock<std::time::Duration>,
    /// Counts folded key records, so a read waiting for a key wakes when one is folded.
    folds: Mutex<keys::Folds>,
    folded: std::sync::Condvar,
}

/// One fjall partition per table of [`schema::tables`].
struct Tables {
    timeline: PartitionHandle,
    conversations: PartitionHandle,
    lists: PartitionHandle,
    queue: PartitionHandle,
    resolved: PartitionHandle,
    agents: PartitionHandle,
    reports: PartitionHandle,
    checkpoints: PartitionHandle,
    data_keys: PartitionHandle,
    keks: PartitionHandle,
    manifest: PartitionHandle,
    manifest_by_day: PartitionHandle,
    writer_cache: PartitionHandle,
}

impl Tables {
    fn all(&self) -> [&PartitionHandle; 12] {
        [
            &self.timeline,
            &self.conversations,
            &self.lists,
            &self.queue,
            &self.resolved,
            &self.agents,
            &self.reports,
            &self.checkpoints,
            &self.data_keys,
            &self.keks,
            &self.manifest,
            &self.manifest_by_day,
        ]
    }
}

impl Inner {
    /// Sets the gauges of what fjall holds in memory (`crate::metrics`): cheap atomic reads,
    /// taken after each projected batch.
    fn measure(&self) {
        let files = self
            .t
            .all()
            .iter()
            .map(|t| t.segment_count())
            .sum::<usize>()
            + self.t.writer_cache.segment_count();
        crate::metrics::embedded_memory(
            self.keyspace.write_buffer_size(),
            self.keyspace.cache_capacity(),
            self.keyspace.journal_count(),
            files,
        );
    }
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) fn engine_error(operation: &'static str) -> impl Fn(fjall::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        reason: e.to_string(),
        retriable: false,
    }
}

impl EmbeddedStore {
    /// Opens the store in `dir`, creating it when empty. Refuses a KEK that is not the one
    /// the store's data keys were wrapped under ([`crate::keywrap`]).
    pub fn open(dir: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let memory = options.memory;
        memory.check()?;
        let keyspace = Config::new(dir.as_ref())
            .cache_size(memory.cache_bytes)
            .max_write_buffer_size(memory.write_buffer_bytes)
            .open()
            .map_err(engine_error("open the embedded store"))?;
        let open = |name: &str| {
            let options =
                PartitionCreateOptions::default().max_memtable_size(memory.memtable_bytes);
            keyspace
                .open_partition(name, options)
                .map_err(engine_error("open a table of the embedded store"))
        };
        let t = Tables {
            timeline: open(tables::TIMELINE)?,
            conversations: open(tables::CONVERSATIONS)?,
            lists: open(tables::LISTS)?,
            queue: open(tables::QUEUE)?,
            resolved: open(tables::RESOLVED)?,
            agents: open(tables::AGENTS)?,
            reports: open(tables::REPORTS)?,
            checkpoints: open(tables::CHECKPOINTS)?,
            data_keys: open(tables::DATA_KEYS)?,
            keks: open(tables::KEKS)?,
            manifest: open(tables::MANIFEST)?,
            manifest_by_day: open(tables::MANIFEST_BY_DAY)?,
            writer_cache: open(tables::WRITER_CACHE)?,
        };
        let inner = Arc::new(Inner {
            dir: dir.as_ref().to_owned(),
            keyspace,
            t,
            batch_durability: Some(if options.sync_batches {
                PersistMode::SyncAll
            } else {
                PersistMode::Buffer
            }),
            writer: Mutex::new(()),
            kek: options.kek,
            shared_keys: std::sync::OnceLock::new(),
            folds: Mutex::default(),
            folded: std::sync::Condvar::new(),
        });
        keys::open(&inner)?;
        Ok(Self { inner })
    }

    /// A SHA-256 over every row of the read models that are folded from the log (timelines,
    /// summaries, lists, queue, resolved index, agents, reports), in key order. Two stores
    /// that projected the same log have the same digest, however often or in whatever order
    /// batches were replayed: what a rebuild is checked against. Checkpoints, data keys and
    /// the manifest are not folds of the log and are left out.
    pub fn projection_digest(&self) -> Result<String, StoreError> {
        read::projection_digest(&self.inner)
    }

    /// From now on the customers' keys come from a shared keys topic ([`crate::key_record`])
    /// folded in with [`EmbeddedStore::fold_key_record`], never made here: `create_data_key`
    /// and `destroy_data_key` are refused, and reading a key not held yet waits up to `wait`
    /// for it to be folded (a key record is durable before any event sealed under it, but
    /// this process may read the event first).
    pub fn share_keys(&self, wait: std::time::Duration) {
        let _ = self.inner.shared_keys.set(wait);
    }

    /// What the store holds of the customer's key, without waiting.
    pub fn held_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<crate::key_record::HeldKey, StoreError> {
        keys::held_key(&self.inner, tenant, customer)
    }

    /// Folds the record at `offset` of the keys topic's `partition` into the data keys, with
    /// the rules every process applies alike: the first key of a customer wins, an erasure
    /// always applies, and nothing comes after an erasure. The next offset to fold is stored
    /// in the same synced commit. Blocking: call it off the async threads.
    pub fn fold_key_record(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        owner: (&TenantId, &CustomerId),
        record: &crate::key_record::KeyRecord,
    ) -> Result<(), StoreError> {
        let _writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        keys::fold(&self.inner, topic, partition, offset, owner, record)
    }

    /// The next offset of the keys topic's `partition` to fold, when some were folded.
    pub fn key_offset(&self, topic: &str, partition: u32) -> Result<Option<u64>, StoreError> {
        keys::key_offset(&self.inner, topic, partition)
    }

    /// Runs a write on the blocking pool, one writer at a time.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _writer = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&inner)
        })
        .await
        .map_err(|e| StoreError::Backend {
            operation: "run a write of the embedded store",
            reason: e.to_string(),
            retriable: false,
        })?
    }
}

impl KeyProvider for EmbeddedStore {
    fn data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, PersonalDataError> {
        let found = match self.inner.shared_keys.get() {
            None => read::data_key(&self.inner, tenant, customer),
            Some(wait) => keys::await_key(&self.inner, tenant, customer, *wait),
        };
        found.map_err(|e| PersonalDataError::Provider(e.to_string()))
    }
}

#[async_trait]
impl ReadModels for EmbeddedStore {
    async fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // The blocking pool needs an owned batch; cloning costs far less than the commit.
        let batch = batch.clone();
        self.write(move |inner| {
            write::apply(inner, &batch)?;
            inner.measure();
            Ok(())
        })
        .await
    }

    async fn checkpoint(&self, key: &CheckpointKey) -> Result<Option<u64>, StoreError> {
        read::checkpoint(&self.inner, key)
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: TimelineQuery,
    ) -> Result<TimelinePage, StoreError> {
        read::timeline(&self.inner, tenant, conversation, query)
    }

    async fn conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        read::summary(&self.inner, tenant.as_str(), conversation.as_str())
    }

    async fn conversations(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        read::list(&self.inner, tenant, query)
    }

    async fn queue(&self, tenant: &TenantId) -> Result<Vec<QueueEntry>, StoreError> {
        read::queue(&self.inner, tenant)
    }

    async fn agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<AgentState>, StoreError> {
        read::agent(&self.inner, tenant, agent)
    }

    async fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentState>, StoreError> {
        read::agents(&self.inner, tenant)
    }

    async fn report(
        &self,
        tenant: &TenantId,
        scope: &ReportScope,
        from: Day,
        to: Day,
    ) -> Result<Vec<DailyReport>, StoreError> {
        read::report(&self.inner, tenant, scope, from, to)
    }

    async fn report_partial(
        &self,
        key: &ReportKey,
        source: LogPartition,
    ) -> Result<Option<ReportPartial>, StoreError> {
        read::report_partial(&self.inner, key, source)
    }

    async fn create_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<DataKey, StoreError> {
        keys::refuse_when_shared(&self.inner)?;
        let (tenant, customer) = (tenant.clone(), customer.clone());
        self.write(move |inner| keys::create_data_key(inner, &tenant, &customer))
            .await
    }

    async fn destroy_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<(), StoreError> {
        keys::refuse_when_shared(&self.inner)?;
        let (tenant, customer) = (tenant.clone(), customer.clone());
        self.write(move |inner| keys::destroy_data_key(inner, &tenant, &customer))
            .await
    }

    async fn resolved_on(
        &self,
        day: Day,
        after: Option<&ResolvedRef>,
        limit: u32,
    ) -> Result<Vec<ResolvedRef>, StoreError> {
        read::resolved_on(&self.inner, day, after, limit)
    }

    async fn archive(&self, entry: &ArchiveEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.write(move |inner| write::archive(inner, &entry)).await
    }

    async fn archived(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ArchiveEntry>, StoreError> {
        read::archived(&self.inner, tenant, conversation)
    }

    async fn archive_manifest(
        &self,
        tenant: &TenantId,
        day: Day,
    ) -> Result<Vec<ArchiveEntry>, StoreError> {
        read::archive_manifest(&self.inner, tenant, day)
    }

    async fn writer_snapshot(
        &self,
        source: LogPartition,
    ) -> Result<Option<WriterSnapshot>, StoreError> {
        let stored = write::cached(&self.inner, &schema::writer_snapshot(source))?;
        Ok(stored.map(|(next_offset, body)| WriterSnapshot {
            source,
            next_offset,
            body,
        }))
    }

    async fn put_writer_snapshot(&self, snapshot: &WriterSnapshot) -> Result<(), StoreError> {
        let key = schema::writer_snapshot(snapshot.source);
        let (order, body) = (snapshot.next_offset, snapshot.body.clone());
        self.write(move |inner| write::cache(inner, key, order, &body))
            .await
    }

    async fn parked_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ParkedConversation>, StoreError> {
        let key = schema::parked_conversation(tenant.as_str(), conversation.as_str());
        let stored = write::cached(&self.inner, &key)?;
        Ok(stored.map(|(last_seq, body)| ParkedConversation {
            tenant: tenant.clone(),
            conversation: conversation.clone(),
            last_seq: switchboard_events::Seq(last_seq),
            body,
        }))
    }

    async fn park_conversation(&self, parked: &ParkedConversation) -> Result<(), StoreError> {
        let key = schema::parked_conversation(parked.tenant.as_str(), parked.conversation.as_str());
        let (order, body) = (parked.last_seq.0, parked.body.clone());
        self.write(move |inner| write::cache(inner, key, order, &body))
            .await
    }
}
