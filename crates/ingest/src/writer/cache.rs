//! Where the writer keeps its cache (see `state.md`): partition snapshots and parked
//! conversations, as bytes in [`snapshot`](super::snapshot)'s format. The store in production;
//! memory in tests and tools.

use std::collections::HashMap;
use std::sync::Mutex;

use switchboard_events::Topic;
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_store::checkpoint::LogPartition;
use switchboard_store::writer_cache::{ParkedConversation, WriterSnapshot};

use crate::error::CommandError;
use crate::writer::keys::{BoxFuture, StoreKeys};

/// The writer's cache. A cache only: the writer checks what it reads against the log.
pub trait StateCache: Send + Sync + std::fmt::Debug {
    /// The latest snapshot of a partition of the conversation topic.
    fn snapshot(&self, partition: u32) -> BoxFuture<'_, Result<Option<Vec<u8>>, CommandError>>;

    /// Keeps a snapshot unless one further on is kept already.
    fn put_snapshot(
        &self,
        partition: u32,
        next_offset: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), CommandError>>;

    fn parked<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, CommandError>>;

    /// Keeps an evicted conversation unless one with a higher seq is kept already.
    fn park<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
        last_seq: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), CommandError>>;
}

/// An entry of the cache in memory: its order (offset or seq) and its body.
type Entry = (u64, Vec<u8>);

/// The cache in memory: for tests and tools, and it bounds nothing.
#[derive(Debug, Default)]
pub struct MemoryCache {
    snapshots: Mutex<HashMap<u32, Entry>>,
    parked: Mutex<HashMap<(TenantId, ConversationId), Entry>>,
}

fn keep_newest<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Entry>>,
    key: K,
    order: u64,
    body: Vec<u8>,
) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.get(&key).is_none_or(|(stored, _)| *stored <= order) {
        map.insert(key, (order, body));
    }
}

impl StateCache for MemoryCache {
    fn snapshot(&self, partition: u32) -> BoxFuture<'_, Result<Option<Vec<u8>>, CommandError>> {
        let map = self.snapshots.lock().unwrap_or_else(|p| p.into_inner());
        let found = map.get(&partition).map(|(_, body)| body.clone());
        Box::pin(async move { Ok(found) })
    }

    fn put_snapshot(
        &self,
        partition: u32,
        next_offset: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), CommandError>> {
        keep_newest(&self.snapshots, partition, next_offset, body);
        Box::pin(async { Ok(()) })
    }

    fn parked<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, CommandError>> {
        let map = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.clone(), conversation.clone());
        let found = map.get(&key).map(|(_, body)| body.clone());
        Box::pin(async move { Ok(found) })
    }

    fn park<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
        last_seq: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        let key = (tenant.clone(), conversation.clone());
        keep_newest(&self.parked, key, last_seq, body);
        Box::pin(async { Ok(()) })
    }
}

fn store_failed(e: switchboard_store::StoreError) -> CommandError {
    CommandError::Unavailable(format!("the writer's cache failed: {e}"))
}

fn source(partition: u32) -> LogPartition {
    LogPartition::new(Topic::Conversations, partition)
}

impl StateCache for StoreKeys {
    fn snapshot(&self, partition: u32) -> BoxFuture<'_, Result<Option<Vec<u8>>, CommandError>> {
        Box::pin(async move {
            let found = self.0.writer_snapshot(source(partition)).await;
            Ok(found.map_err(store_failed)?.map(|s| s.body))
        })
    }

    fn put_snapshot(
        &self,
        partition: u32,
        next_offset: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), CommandError>> {
        Box::pin(async move {
            let snapshot = WriterSnapshot {
                source: source(partition),
                next_offset,
                body,
            };
            self.0
                .put_writer_snapshot(&snapshot)
                .await
                .map_err(store_failed)
        })
    }

    fn parked<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, CommandError>> {
        Box::pin(async move {
            let found = self.0.parked_conversation(tenant, conversation).await;
            Ok(found.map_err(store_failed)?.map(|p| p.body))
        })
    }

    fn park<'a>(
        &'a self,
        tenant: &'a TenantId,
        conversation: &'a ConversationId,
        last_seq: u64,
        body: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        Box::pin(async move {
            let parked = ParkedConversation {
                tenant: tenant.clone(),
                conversation: conversation.clone(),
                last_seq: switchboard_events::Seq(last_seq),
                body,
            };
            self.0
                .park_conversation(&parked)
                .await
                .map_err(store_failed)
        })
    }
}
