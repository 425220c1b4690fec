//! Writes of the embedded store: one atomic fjall batch per call, built after reading the rows
//! it replaces.

use std::collections::HashSet;

use fjall::PersistMode;
use switchboard_events::Seq;

use super::{Inner, engine_error, read, schema};
use crate::archive::ArchiveEntry;
use crate::codec;
use crate::conversation::{ConversationSummary, Placement};
use crate::report::ReportCounters;
use crate::{Batch, StoreError};

/// The stored value of a report partial: the counters and the offset they run through.
pub(super) type PartialValue = (ReportCounters, u64);

/// Applies the winning write of every key of the batch, skipping those older than what is
/// stored, and the checkpoints, in one atomic commit.
pub(super) fn apply(inner: &Inner, batch: &Batch) -> Result<(), StoreError> {
    let t = &inner.t;
    let winners = batch.winners();
    let mut commit = inner.keyspace.batch().durability(inner.batch_durability);
    let mut value = Vec::with_capacity(1024);
    for row in winners.timeline {
        let conversation = schema::conversation(row.tenant.as_str(), row.conversation.as_str());
        value.clear();
        codec::encode_entry(&row.entry, &mut value);
        commit.insert(
            &t.timeline,
            schema::timeline(&conversation, row.entry.seq),
            value.as_slice(),
        );
    }
    for summary in winners.conversations {
        let stored = read::summary(
            inner,
            summary.tenant.as_str(),
            summary.conversation.as_str(),
        )?;
        if stored
            .as_ref()
            .is_some_and(|s| s.last_seq > summary.last_seq)
        {
            continue;
        }
        let old: HashSet<Placement> = stored.iter().flat_map(ConversationSummary::lists).collect();
        let new: HashSet<Placement> = summary.lists().into_iter().collect();
        for gone in old.difference(&new) {
            let (table, key) = placement(inner, summary, gone);
            commit.remove(table, key);
        }
        for added in new.difference(&old) {
            let (table, key) = placement(inner, summary, added);
            commit.insert(table, key, []);
        }
        let key = schema::conversation(summary.tenant.as_str(), summary.conversation.as_str());
        commit.insert(&t.conversations, key, codec::encode(summary));
    }
    for record in winners.agents {
        let key = schema::agent(record.tenant.as_str(), record.agent.as_str());
        let stored = read::agent_record(inner, &key)?;
        if stored.is_none_or(|s| s.last_seq <= record.last_seq) {
            commit.insert(&t.agents, key, codec::encode(record));
        }
    }
    for partial in winners.reports {
        let key = schema::report(&partial.key, partial.source);
        let stored = read::partial_value(inner, &key)?;
        if stored.is_none_or(|(_, through)| through <= partial.through_offset) {
            let value: PartialValue = (partial.counters, partial.through_offset);
            commit.insert(&t.reports, key, codec::encode(&value));
        }
    }
    for checkpoint in winners.checkpoints {
        let stored = read::checkpoint(inner, &checkpoint.key)?;
        if stored.is_none_or(|offset| offset <= checkpoint.next_offset) {
            let key = schema::checkpoint(&checkpoint.key);
            commit.insert(&t.checkpoints, key, checkpoint.next_offset.to_be_bytes());
        }
    }
    commit.commit().map_err(engine_error("apply a batch"))
}

/// The table and key of a summary's placement.
fn placement<'a>(
    inner: &'a Inner,
    summary: &ConversationSummary,
    placement: &Placement,
) -> (&'a fjall::PartitionHandle, Vec<u8>) {
    let (tenant, conversation) = (summary.tenant.as_str(), summary.conversation.as_str());
    match placement {
        Placement::List(list, at) => (
            &inner.t.lists,
            schema::list_entry(&schema::list_prefix(tenant, list), *at, conversation),
        ),
        Placement::Queue(since) => (
            &inner.t.queue,
            schema::queue_entry(tenant, *since, conversation),
        ),
        Placement::ResolvedOn(day) => (
            &inner.t.resolved,
            schema::resolved_entry(*day, tenant, conversation),
        ),
    }
}

/// Records the entry and removes what it archived, in one synced commit.
pub(super) fn archive(inner: &Inner, entry: &ArchiveEntry) -> Result<(), StoreError> {
    let t = &inner.t;
    let (tenant, conversation) = (entry.tenant.as_str(), entry.conversation.as_str());
    let mut commit = inner
        .keyspace
        .batch()
        .durability(Some(PersistMode::SyncAll));
    commit.insert(
        &t.manifest,
        schema::conversation(tenant, conversation),
        codec::encode(entry),
    );
    commit.insert(
        &t.manifest_by_day,
        schema::manifest_by_day(tenant, entry.day, conversation),
        [],
    );
    let prefix = schema::conversation(tenant, conversation);
    let through = schema::timeline(&prefix, entry.last_seq);
    for row in t
        .timeline
        .range(schema::timeline(&prefix, Seq(0))..=through)
    {
        let (key, _) = row.map_err(engine_error("scan an archived timeline"))?;
        commit.remove(&t.timeline, key);
    }
    if let Some(summary) = read::summary(inner, tenant, conversation)?
        && summary.last_seq <= entry.last_seq
    {
        for gone in summary.lists() {
            let (table, key) = placement(inner, &summary, &gone);
            commit.remove(table, key);
        }
        commit.remove(&t.conversations, prefix);
    }
    commit
        .commit()
        .map_err(engine_error("archive a conversation"))
}

/// A writer's cache entry and the version that orders it: `None` when there is none.
pub(super) fn cached(inner: &Inner, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let Some(value) = inner
        .t
        .writer_cache
        .get(key)
        .map_err(engine_error("read the writer's cache"))?
    else {
        return Ok(None);
    };
    match value.split_first() {
        Some((&codec::VERSION, rest)) if rest.len() >= 8 => {
            let (order, body) = rest.split_at(8);
            let order = u64::from_be_bytes(order.try_into().expect("8 bytes"));
            Ok(Some((order, body.to_vec())))
        }
        _ => Err(StoreError::corrupt("writer_cache", "unknown value layout")),
    }
}

/// Stores a writer's cache entry unless a newer one is there. Not synced: it is a cache, and
/// losing the last entries costs the writer a longer rebuild from the log.
pub(super) fn cache(
    inner: &Inner,
    key: Vec<u8>,
    order: u64,
    body: &[u8],
) -> Result<(), StoreError> {
    // An entry that does not decode is replaced: the writer ignores it anyway.
    if let Ok(Some((stored, _))) = cached(inner, &key)
        && stored > order
    {
        return Ok(());
    }
    let mut value = Vec::with_capacity(9 + body.len());
    value.push(codec::VERSION);
    value.extend_from_slice(&order.to_be_bytes());
    value.extend_from_slice(body);
    inner
        .t
        .writer_cache
        .insert(key, value)
        .map_err(engine_error("write the writer's cache"))
}
