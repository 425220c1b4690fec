//! The port: one trait over the read models' access patterns.

use async_trait::async_trait;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::personal::{DataKey, KeyProvider};

use crate::agent::AgentState;
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::batch::Batch;
use crate::checkpoint::CheckpointKey;
use crate::checkpoint::LogPartition;
use crate::conversation::{ConversationSummary, ListPage, ListQuery, QueueEntry};
use crate::error::StoreError;
use crate::report::{DailyReport, Day, ReportKey, ReportPartial, ReportScope};
use crate::timeline::{TimelinePage, TimelineQuery};
use crate::writer_cache::{ParkedConversation, WriterSnapshot};

/// The read models of switchboard, written by the projector and read by the query and edge
/// services, every call scoped to one tenant.
///
/// Services hold it as `Arc<dyn ReadModels>`, hence `async_trait`: one boxed future per call,
/// nothing next to a network round trip or a page decode, and the same choice as the log port.
/// The trait extends [`KeyProvider`], so the store hands out the data keys that open sealed
/// personal data (`&*store as &dyn KeyProvider`).
#[async_trait]
pub trait ReadModels: KeyProvider + Send + Sync + std::fmt::Debug {
    /// Applies a projected batch and its checkpoints. The embedded backend commits it
    /// atomically; the ScyllaDB backend writes every row before any checkpoint, so a crash
    /// leaves rows ahead of the checkpoint, and replaying them changes nothing.
    async fn apply(&self, batch: &Batch) -> Result<(), StoreError>;

    /// Where a consumer resumes a log partition: `None` when it never checkpointed.
    async fn checkpoint(&self, key: &CheckpointKey) -> Result<Option<u64>, StoreError>;

    /// A page of a conversation's timeline.
    async fn timeline(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: TimelineQuery,
    ) -> Result<TimelinePage, StoreError>;

    async fn conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ConversationSummary>, StoreError>;

    /// A page of a conversation list.
    async fn conversations(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<ListPage, StoreError>;

    /// The tenant's queue, longest waiting first.
    async fn queue(&self, tenant: &TenantId) -> Result<Vec<QueueEntry>, StoreError>;

    async fn agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> Result<Option<AgentState>, StoreError>;

    /// Every agent of the tenant with a record, by id.
    async fn agents(&self, tenant: &TenantId) -> Result<Vec<AgentState>, StoreError>;

    /// Daily figures of a scope from `from` to `to` inclusive, summed over log partitions;
    /// days without activity are absent.
    async fn report(
        &self,
        tenant: &TenantId,
        scope: &ReportScope,
        from: Day,
        to: Day,
    ) -> Result<Vec<DailyReport>, StoreError>;

    /// The partial one log partition holds for a report: where a projector resumes counting.
    async fn report_partial(
        &self,
        key: &ReportKey,
        source: LogPartition,
    ) -> Result<Option<ReportPartial>, StoreError>;

    /// The customer's data key, created on first use. An erased customer's key is never
    /// created again: [`StoreError::KeyErased`].
    async fn create_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<DataKey, StoreError>;

    /// Destroys the customer's key for good (crypto-shredding). Idempotent.
    async fn destroy_data_key(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<(), StoreError>;

    /// Conversations resolved on `day`, after `after`, at most `limit`: what the archiver walks.
    async fn resolved_on(
        &self,
        day: Day,
        after: Option<&ResolvedRef>,
        limit: u32,
    ) -> Result<Vec<ResolvedRef>, StoreError>;

    /// Records an archived conversation in the manifest and removes its events through
    /// `entry.last_seq`, and its summary and list entries unless a later event moved it on,
    /// from the hot store. Idempotent.
    async fn archive(&self, entry: &ArchiveEntry) -> Result<(), StoreError>;

    /// The manifest entry of a conversation, when it was archived.
    async fn archived(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ArchiveEntry>, StoreError>;

    /// Every manifest entry of a tenant's day, by conversation.
    async fn archive_manifest(
        &self,
        tenant: &TenantId,
        day: Day,
    ) -> Result<Vec<ArchiveEntry>, StoreError>;

    /// The writer's latest snapshot of a log partition (see [`WriterSnapshot`]).
    async fn writer_snapshot(
        &self,
        source: LogPartition,
    ) -> Result<Option<WriterSnapshot>, StoreError>;

    /// Stores a snapshot unless one further on is stored already. Idempotent.
    async fn put_writer_snapshot(&self, snapshot: &WriterSnapshot) -> Result<(), StoreError>;

    /// A conversation a writer evicted from memory, scoped to its tenant.
    async fn parked_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Option<ParkedConversation>, StoreError>;

    /// Stores an evicted conversation unless one with a higher `last_seq` is stored already.
    async fn park_conversation(&self, parked: &ParkedConversation) -> Result<(), StoreError>;
}
