//! Writes of the ScyllaDB backend: every row of a batch concurrently, each at its version's
//! timestamp, then the checkpoints.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use scylla::serialize::row::SerializeRow;
use scylla::value::{CqlValue, Row};
use switchboard_events::Timestamp;
use switchboard_events::id::{CustomerId, TenantId};
use switchboard_events::personal::DataKey;

use super::read;
use super::schema::{self, ERASED_TS, cql, through_ts, version_ts};
use super::schema::{counters_list, entry_columns, list_name, status_name};
use super::{Inner, driver_error};
use crate::archive::ArchiveEntry;
use crate::codec;
use crate::conversation::{ConversationSummary, Placement};
use crate::keywrap::{self, key_context};
use crate::writer_cache::{ParkedConversation, WriterSnapshot};
use crate::{Batch, StoreError};

type Write<'a> = BoxFuture<'a, Result<(), StoreError>>;

async fn write(
    inner: &Inner,
    statement: &'static str,
    timestamp: i64,
    values: impl SerializeRow,
) -> Result<(), StoreError> {
    inner
        .session
        .execute_unpaged(&inner.at(statement, timestamp), values)
        .await
        .map_err(driver_error("write to scylla"))?;
    Ok(())
}

/// Runs writes with bounded concurrency; the first error wins.
async fn run_all(inner: &Inner, writes: Vec<Write<'_>>) -> Result<(), StoreError> {
    let mut results = futures_util::stream::iter(writes).buffer_unordered(inner.concurrency);
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}

/// Inserts (or deletes) one list, queue or resolved-by-day entry of a summary.
fn placement<'a>(
    inner: &'a Inner,
    summary: &'a ConversationSummary,
    bytes: &'a [u8],
    placement: Placement,
    delete: Option<i64>,
) -> Write<'a> {
    let (t, c) = (summary.tenant.as_str(), summary.conversation.as_str());
    let ts = delete.unwrap_or_else(|| version_ts(summary.last_seq.0));
    match (placement, delete.is_some()) {
        (Placement::List(list, at), false) => {
            let values = (
                t,
                list_name(&list),
                schema::activity_desc(at.as_micros()),
                c,
                bytes,
            );
            Box::pin(write(inner, cql::UPSERT_LIST, ts, values))
        }
        (Placement::List(list, at), true) => {
            let values = (
                t,
                list_name(&list),
                schema::activity_desc(at.as_micros()),
                c,
            );
            Box::pin(write(inner, cql::DELETE_LIST, ts, values))
        }
        (Placement::Queue(since), false) => {
            let values = (t, since.as_micros(), c, bytes);
            Box::pin(write(inner, cql::UPSERT_QUEUE, ts, values))
        }
        (Placement::Queue(since), true) => Box::pin(write(
            inner,
            cql::DELETE_QUEUE,
            ts,
            (t, since.as_micros(), c),
        )),
        (Placement::ResolvedOn(day), false) => {
            Box::pin(write(inner, cql::UPSERT_RESOLVED, ts, (day.0, t, c)))
        }
        (Placement::ResolvedOn(day), true) => {
            Box::pin(write(inner, cql::DELETE_RESOLVED, ts, (day.0, t, c)))
        }
    }
}

/// Writes every winning row of the batch, then, once all are acknowledged, the checkpoints.
/// A crash in between leaves rows ahead of the checkpoint; replaying them changes nothing.
pub(super) async fn apply(inner: &Inner, batch: &Batch) -> Result<(), StoreError> {
    let winners = batch.winners();
    // The stored summaries, to move their list entries.
    type Stored = Option<(Option<ConversationSummary>, Option<i64>)>;
    let mut reads: Vec<BoxFuture<'_, Result<Stored, StoreError>>> = Vec::new();
    for &summary in &winners.conversations {
        let (t, c) = (summary.tenant.as_str(), summary.conversation.as_str());
        reads.push(Box::pin(read::summary_row(inner, t, c)));
    }
    let stored: Vec<_> = futures_util::stream::iter(reads)
        .buffered(inner.concurrency)
        .collect()
        .await;
    let encoded: Vec<Vec<u8>> = winners
        .conversations
        .iter()
        .map(|s| codec::encode(*s))
        .collect();

    let mut writes: Vec<Write<'_>> = Vec::with_capacity(batch.timeline.len() + 8);
    let mut heads = HashMap::<(&str, &str), u64>::new();
    for row in &winners.timeline {
        let (t, c, seq) = (
            row.tenant.as_str(),
            row.conversation.as_str(),
            row.entry.seq.0,
        );
        let head = heads.entry((t, c)).or_insert(seq);
        *head = (*head).max(seq);
        let (seq_col, at, kind, actor, private, message, frame) = entry_columns(&row.entry);
        let values = (
            t,
            c,
            schema::bucket(seq),
            seq_col,
            at,
            kind,
            actor,
            private,
            message,
            frame,
        );
        writes.push(Box::pin(write(
            inner,
            cql::UPSERT_TIMELINE,
            version_ts(seq),
            values,
        )));
    }
    for ((t, c), seq) in heads {
        writes.push(Box::pin(write(
            inner,
            cql::UPSERT_HEAD,
            version_ts(seq),
            (t, c, seq as i64),
        )));
    }
    for ((summary, stored), bytes) in winners.conversations.iter().zip(stored).zip(&encoded) {
        let stored = stored?.and_then(|(summary, _)| summary);
        if stored
            .as_ref()
            .is_some_and(|s| s.last_seq > summary.last_seq)
        {
            continue;
        }
        let ts = version_ts(summary.last_seq.0);
        let new: HashSet<Placement> = summary.lists().into_iter().collect();
        let old: HashSet<Placement> = stored.iter().flat_map(ConversationSummary::lists).collect();
        for gone in old.difference(&new) {
            writes.push(placement(inner, summary, bytes, gone.clone(), Some(ts)));
        }
        for added in new {
            writes.push(placement(inner, summary, bytes, added, None));
        }
        let (t, c) = (summary.tenant.as_str(), summary.conversation.as_str());
        let values = (
            t,
            c,
            summary.status.as_str(),
            summary.last_seq.0 as i64,
            bytes.as_slice(),
        );
        writes.push(Box::pin(write(inner, cql::UPSERT_SUMMARY, ts, values)));
    }
    for record in &winners.agents {
        let values = (
            record.tenant.as_str(),
            record.agent.as_str(),
            status_name(record.status),
            record.max_conversations as i32,
            record.skills.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            record.updated_at.as_micros(),
            record.last_seq.0 as i64,
        );
        let ts = version_ts(record.last_seq.0);
        writes.push(Box::pin(write(inner, cql::UPSERT_AGENT, ts, values)));
    }
    for partial in &winners.reports {
        let values = (
            partial.key.tenant.as_str(),
            partial.key.scope.key(),
            partial.key.day.0,
            partial.source.topic.name(),
            partial.source.partition as i32,
            counters_list(&partial.counters),
            partial.through_offset as i64,
        );
        let ts = version_ts(partial.through_offset);
        writes.push(Box::pin(write(inner, cql::UPSERT_PARTIAL, ts, values)));
    }
    run_all(inner, writes).await?;

    let checkpoints = winners.checkpoints.iter().map(|checkpoint| {
        let key = &checkpoint.key;
        let values = (
            key.consumer.as_str(),
            key.source.topic.name(),
            key.source.partition as i32,
            checkpoint.next_offset as i64,
        );
        let ts = version_ts(checkpoint.next_offset);
        Box::pin(write(inner, cql::UPSERT_CHECKPOINT, ts, values)) as Write<'_>
    });
    run_all(inner, checkpoints.collect()).await
}

/// Records the entry first, then deletes, at the timestamp just above the archived seq,
/// everything it archived. Later events, at higher timestamps, are untouched.
pub(super) async fn archive(inner: &Inner, entry: &ArchiveEntry) -> Result<(), StoreError> {
    let (t, c) = (entry.tenant.as_str(), entry.conversation.as_str());
    let bytes = codec::encode(entry);
    let recorded = version_ts(entry.last_seq.0);
    run_all(
        inner,
        vec![
            Box::pin(write(inner, cql::UPSERT_MANIFEST, recorded, (t, c, &bytes))),
            Box::pin(write(
                inner,
                cql::UPSERT_MANIFEST_DAY,
                recorded,
                (t, entry.day.0, c, &bytes),
            )),
        ],
    )
    .await?;

    let through = through_ts(entry.last_seq.0);
    let stored = read::summary_row(inner, t, c).await?.and_then(|(s, _)| s);
    let encoded = stored.as_ref().map(codec::encode).unwrap_or_default();
    let mut deletes: Vec<Write<'_>> = (0..=schema::bucket(entry.last_seq.0))
        .map(|bucket| {
            Box::pin(write(
                inner,
                cql::DELETE_TIMELINE_BUCKET,
                through,
                (t, c, bucket),
            )) as Write<'_>
        })
        .collect();
    if let Some(summary) = &stored {
        for gone in summary.lists() {
            deletes.push(placement(inner, summary, &encoded, gone, Some(through)));
        }
    }
    deletes.push(Box::pin(write(inner, cql::DELETE_SUMMARY, through, (t, c))));
    run_all(inner, deletes).await
}

pub(super) async fn create_data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<DataKey, StoreError> {
    let key = DataKey::generate().map_err(|e| StoreError::Backend {
        operation: "generate a data key",
        reason: e.to_string(),
        retriable: true,
    })?;
    let wrapped = inner
        .kek
        .wrap(&key, &key_context(tenant, customer))?
        .encode();
    if insert_if_absent(inner, tenant.as_str(), customer.as_str(), &wrapped).await? {
        return Ok(key);
    }
    // Not applied: a key, or an erasure, was there first.
    match read::data_key_row(inner, tenant, customer, true).await? {
        Some(Some(existing)) => Ok(existing),
        Some(None) => Err(StoreError::KeyErased {
            tenant: tenant.to_string(),
            customer: customer.to_string(),
        }),
        None => Err(StoreError::Backend {
            operation: "create a data key",
            reason: "the key was neither created nor found".to_owned(),
            retriable: true,
        }),
    }
}

/// Inserts a row of `data_keys` unless one is there; whether it was inserted.
async fn insert_if_absent(
    inner: &Inner,
    tenant: &str,
    customer: &str,
    value: &[u8],
) -> Result<bool, StoreError> {
    let result = inner
        .session
        .execute_unpaged(
            inner.statement(cql::CREATE_DATA_KEY),
            (tenant, customer, value),
        )
        .await
        .map_err(driver_error("create a data key"))?;
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::corrupt("data_keys", e))?;
    let row: Row = rows
        .first_row()
        .map_err(|e| StoreError::corrupt("data_keys", e))?;
    Ok(matches!(
        row.columns.first(),
        Some(Some(CqlValue::Boolean(true)))
    ))
}

/// Records the check value of the current KEK, or refuses a KEK that does not open the one
/// recorded under its id. Check values live in `data_keys` under the empty tenant, which no
/// tenant id is.
pub(super) async fn check_kek(inner: &Inner) -> Result<(), StoreError> {
    let kek = &*inner.kek;
    let check = keywrap::make_check(kek)?.encode();
    if insert_if_absent(inner, "", kek.current_id(), &check).await? {
        return Ok(());
    }
    let stored = read::data_key_raw(inner, "", kek.current_id(), true)
        .await?
        .and_then(|(value, _)| value)
        .ok_or_else(|| StoreError::Backend {
            operation: "check the key-encryption key",
            reason: "the check value was neither written nor found".to_owned(),
            retriable: true,
        })?;
    keywrap::verify_check(kek, &stored)?;
    Ok(())
}

pub(super) async fn destroy_data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<(), StoreError> {
    let values = (
        tenant.as_str(),
        customer.as_str(),
        None::<Vec<u8>>,
        Timestamp::now().as_micros(),
    );
    write(inner, cql::ERASE_DATA_KEY, ERASED_TS, values).await
}

pub(super) async fn put_writer_snapshot(
    inner: &Inner,
    snapshot: &WriterSnapshot,
) -> Result<(), StoreError> {
    let values = (
        snapshot.source.topic.name(),
        snapshot.source.partition as i32,
        snapshot.next_offset as i64,
        snapshot.body.as_slice(),
    );
    let ts = version_ts(snapshot.next_offset);
    write(inner, cql::UPSERT_WRITER_SNAPSHOT, ts, values).await
}

pub(super) async fn park_conversation(
    inner: &Inner,
    parked: &ParkedConversation,
) -> Result<(), StoreError> {
    let values = (
        parked.tenant.as_str(),
        parked.conversation.as_str(),
        parked.last_seq.0 as i64,
        parked.body.as_slice(),
    );
    let ts = version_ts(parked.last_seq.0);
    write(inner, cql::UPSERT_PARKED, ts, values).await
}
