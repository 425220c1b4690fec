//! The read-model store's metrics (names and labels as `docs/telemetry.md` specifies them):
//! every call timed by [`Metered`], the port wrapped around either backend, and the bytes
//! the cold archive writes.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::metrics::{Counter, Exposition, Family, Gauge, Histogram};
use switchboard_events::personal::{DataKey, KeyProvider, PersonalDataError};

use crate::ReadModels;
use crate::agent::AgentState;
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::batch::Batch;
use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::conversation::{ConversationSummary, ListPage, ListQuery, QueueEntry};
use crate::error::StoreError;
use crate::report::{DailyReport, Day, ReportKey, ReportPartial, ReportScope};
use crate::timeline::{TimelinePage, TimelineQuery};
use crate::writer_cache::{ParkedConversation, WriterSnapshot};

static DURATION: Family<Histogram> = Family::new(&["backend", "operation"], Histogram::seconds);
static FAILED: Family<Counter> = Family::new(&["backend", "operation"], Counter::new);
static ARCHIVE_BYTES: Counter = Counter::new();
static WRITE_BUFFER: Gauge = Gauge::new();
static BLOCK_CACHE: Gauge = Gauge::new();
static JOURNALS: Gauge = Gauge::new();
static TABLE_FILES: Gauge = Gauge::new();

/// The store's metrics in Prometheus' text format.
pub fn render(out: &mut String) {
    let mut page = Exposition::new(out);
    page.family(
        "switchboard_store_operation_duration_seconds",
        "A read-model store call, successful or not.",
        &DURATION,
    );
    page.family(
        "switchboard_store_failed_operations_total",
        "Read-model store calls that returned an error.",
        &FAILED,
    );
    page.one(
        "switchboard_archive_written_bytes_total",
        "Bytes of the archive files written to the object store.",
        &ARCHIVE_BYTES,
    );
    page.one(
        "switchboard_store_write_buffer_bytes",
        "Writes of the embedded store held in memory and not yet flushed to table files.",
        &WRITE_BUFFER,
    );
    page.one(
        "switchboard_store_block_cache_capacity_bytes",
        "The block cache of the embedded store: the most it holds.",
        &BLOCK_CACHE,
    );
    page.one(
        "switchboard_store_journal_files",
        "Journal files of the embedded store not yet fully flushed.",
        &JOURNALS,
    );
    page.one(
        "switchboard_store_table_files",
        "Table files of the embedded store, over every table.",
        &TABLE_FILES,
    );
}

/// What the embedded store holds in memory, after a batch.
pub(crate) fn embedded_memory(write_buffer: u64, cache: u64, journals: usize, files: usize) {
    WRITE_BUFFER.set(i64::try_from(write_buffer).unwrap_or(i64::MAX));
    BLOCK_CACHE.set(i64::try_from(cache).unwrap_or(i64::MAX));
    JOURNALS.set(journals as i64);
    TABLE_FILES.set(files as i64);
}

/// An archive file of `bytes` was written.
pub(crate) fn archive_written(bytes: usize) {
    ARCHIVE_BYTES.add(bytes as u64);
}

/// The port with every call measured: wrap either backend in it once, at start-up.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn ReadModels>,
    backend: &'static str,
}

impl Metered {
    /// `backend` is `embedded` or `scylla`.
    pub fn new(inner: Arc<dyn ReadModels>, backend: &'static str) -> Self {
        Self { inner, backend }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let labels = [self.backend, operation];
        DURATION.get(&labels).observe_duration(started.elapsed());
        if result.is_err() {
            FAILED.get(&labels).inc();
        }
        result
    }
}

impl KeyProvider for Metered {
    fn data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, PersonalDataError> {
        self.inner.data_key(tenant, customer)
    }
}

#[async_trait]
impl ReadModels for Metered {
    async fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        self.timed("write_batch", self.inner.apply(batch)).await
    }

    async fn checkpoint(&self, key: &CheckpointKey) -> Result<Option<u64>, StoreError> {
        self.timed("read_checkpoint", self.inner.checkpoint(key))
            .await
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: TimelineQuery,
    ) -> Result<TimelinePage, StoreError> {
        let call = self.inner.timeline(tenant, conversation, query);
        self.timed("read_timeline", call).await
    }

    async fn conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationSummary>, StoreError> {
        let call = self.inner.conversation(tenant, conversation);
        self.timed("read_summary", call).await
    }

    async fn conversations(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError> {
        let call = self.inner.conversations(tenant, query);
        self.timed("read_list", call).await
    }

    async fn queue(&self, tenant: &TenantId) -> Result<Vec<QueueEntry>, StoreError> {
        self.timed("read_list", self.inner.queue(tenant)).await
    }

    async fn agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<AgentState>, StoreError> {
        self.timed("read_agent", self.inner.agent(tenant, agent))
            .await
    }

    async fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentState>, StoreError> {
        self.timed("read_agent", self.inner.agents(tenant)).await
    }

    async fn report(
        &self,
        tenant: &TenantId,
        scope: &ReportScope,
        from: Day,
        to: Day,
    ) -> Result<Vec<DailyReport>, StoreError> {
        let call = self.inner.report(tenant, scope, from, to);
        self.timed("read_report", call).await
    }

    async fn report_partial(
        &self,
        key: &ReportKey,
        source: LogPartition,
    ) -> Result<Option<ReportPartial>, StoreError> {
        let call = self.inner.report_partial(key, source);
        self.timed("read_report", call).await
    }

    async fn create_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<DataKey, StoreError> {
        let call = self.inner.create_data_key(tenant, customer);
        self.timed("write_key", call).await
    }

    async fn destroy_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<(), StoreError> {
        let call = self.inner.destroy_data_key(tenant, customer);
        self.timed("write_key", call).await
    }

    async fn resolved_on(
        &self,
        day: Day,
        after: Option<&ResolvedRef>,
        limit: u32,
    ) -> Result<Vec<ResolvedRef>, StoreError> {
        let call = self.inner.resolved_on(day, after, limit);
        self.timed("read_list", call).await
    }

    async fn archive(&self, entry: &ArchiveEntry) -> Result<(), StoreError> {
        self.timed("archive", self.inner.archive(entry)).await
    }

    async fn archived(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ArchiveEntry>, StoreError> {
        let call = self.inner.archived(tenant, conversation);
        self.timed("read_archive", call).await
    }

    async fn archive_manifest(
        &self,
        tenant: &TenantId,
        day: Day,
    ) -> Result<Vec<ArchiveEntry>, StoreError> {
        let call = self.inner.archive_manifest(tenant, day);
        self.timed("read_archive", call).await
    }

    async fn writer_snapshot(
        &self,
        source: LogPartition,
    ) -> Result<Option<WriterSnapshot>, StoreError> {
        self.timed("read_writer_state", self.inner.writer_snapshot(source))
            .await
    }

    async fn put_writer_snapshot(&self, snapshot: &WriterSnapshot) -> Result<(), StoreError> {
        let call = self.inner.put_writer_snapshot(snapshot);
        self.timed("write_writer_state", call).await
    }

    async fn parked_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ParkedConversation>, StoreError> {
        let call = self.inner.parked_conversation(tenant, conversation);
        self.timed("read_writer_state", call).await
    }

    async fn park_conversation(&self, parked: &ParkedConversation) -> Result<(), StoreError> {
        let call = self.inner.park_conversation(parked);
        self.timed("write_writer_state", call).await
    }
}
