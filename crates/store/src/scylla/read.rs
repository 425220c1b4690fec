//! Reads of the ScyllaDB backend, and the mapping between rows and domain values.

use scylla::deserialize::row::DeserializeRow;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::personal::DataKey;

use super::schema::{
    self, AgentColumns, TimelineColumns, agent_from_columns, counters_from_list, cql,
    entry_from_columns, list_name,
};
use super::{Inner, driver_error};
use crate::agent::AgentState;
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::codec;
use crate::conversation::{ConversationList, ConversationSummary, ListPage, ListQuery, QueueEntry};
use crate::keywrap::{WrappedKey, key_context};
use crate::report::{DailyReport, Day, ReportKey, ReportPartial, ReportScope};
use crate::timeline::{TimelinePage, TimelineQuery};
use crate::writer_cache::{ParkedConversation, WriterSnapshot};
use crate::{StoreError, report};

/// Runs a select page by page, handing each row to `take` until it says stop.
async fn select<R, V>(
    inner: &Inner,
    statement: &scylla::statement::prepared::PreparedStatement,
    values: V,
    mut take: impl FnMut(R) -> Result<bool, StoreError>,
) -> Result<(), StoreError>
where
    R: for<'frame> DeserializeRow<'frame, 'frame>,
    V: SerializeRow,
{
    let mut paging = PagingState::start();
    loop {
        let (result, next) = inner
            .session
            .execute_single_page(statement, &values, paging)
            .await
            .map_err(driver_error("read from scylla"))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::corrupt("result", e))?;
        for row in rows
            .rows::<R>()
            .map_err(|e| StoreError::corrupt("result", e))?
        {
            if !take(row.map_err(|e| StoreError::corrupt("row", e))?)? {
                return Ok(());
            }
        }
        match next {
            PagingStateResponse::HasMorePages { state } => paging = state,
            PagingStateResponse::NoMorePages => return Ok(()),
        }
    }
}

/// Every row of a select.
async fn select_all<R, V>(inner: &Inner, cql: &'static str, values: V) -> Result<Vec<R>, StoreError>
where
    R: for<'frame> DeserializeRow<'frame, 'frame>,
    V: SerializeRow,
{
    let mut rows = Vec::new();
    select(inner, inner.statement(cql), values, |row| {
        rows.push(row);
        Ok(true)
    })
    .await?;
    Ok(rows)
}

/// The first `limit` rows of a select, fetched in pages of that size.
async fn select_first<R, V>(
    inner: &Inner,
    cql: &'static str,
    values: V,
    limit: usize,
) -> Result<Vec<R>, StoreError>
where
    R: for<'frame> DeserializeRow<'frame, 'frame>,
    V: SerializeRow,
{
    let mut statement = inner.statement(cql).clone();
    statement.set_page_size(limit.clamp(1, 5_000) as i32);
    let mut rows = Vec::with_capacity(limit);
    select(inner, &statement, values, |row| {
        rows.push(row);
        Ok(rows.len() < limit)
    })
    .await?;
    Ok(rows)
}

/// The summary (if any) and the timeline head (if any) of a conversation.
pub(super) async fn summary_row(
    inner: &Inner,
    tenant: &str,
    conversation: &str,
) -> Result<Option<(Option<ConversationSummary>, Option<i64>)>, StoreError> {
    let rows: Vec<(Option<Vec<u8>>, Option<i64>)> =
        select_all(inner, cql::SELECT_SUMMARY, (tenant, conversation)).await?;
    let Some((summary, head)) = rows.into_iter().next() else {
        return Ok(None);
    };
    let summary = summary
        .map(|bytes| codec::decode("conversations", &bytes))
        .transpose()?;
    Ok(Some((summary, head)))
}

pub(super) async fn timeline(
    inner: &Inner,
    tenant: &TenantId,
    conversation: &ConversationId,
    query: TimelineQuery,
) -> Result<TimelinePage, StoreError> {
    let limit = query.validate()?;
    let (t, c) = (tenant.as_str(), conversation.as_str());
    let head = summary_row(inner, t, c).await?.and_then(|(_, head)| head);
    let (Some((from, to)), Some(head)) = (query.cursor.bounds(), head) else {
        return Ok(TimelinePage::default());
    };
    let to = to.min(head as u64);
    if from > to {
        return Ok(TimelinePage::default());
    }
    let forward = query.cursor.is_forward();
    let (cql, buckets): (_, Box<dyn Iterator<Item = i64> + Send>) = if forward {
        let range = schema::bucket(from)..=schema::bucket(to);
        (cql::TIMELINE_FORWARD, Box::new(range))
    } else {
        let range = schema::bucket(from)..=schema::bucket(to);
        (cql::TIMELINE_BACKWARD, Box::new(range.rev()))
    };
    let mut statement = inner.statement(cql).clone();
    statement.set_page_size((limit + 1) as i32);
    let mut entries = Vec::with_capacity(limit + 1);
    for bucket in buckets {
        let (first, last) = schema::bucket_seqs(bucket);
        let range = (first.max(from) as i64, last.min(to) as i64);
        select(
            inner,
            &statement,
            (t, c, bucket, range.0, range.1),
            |row: TimelineColumns| {
                let entry = entry_from_columns(row)?;
                if query.audience.sees(&entry) {
                    entries.push(entry);
                }
                Ok(entries.len() <= limit)
            },
        )
        .await?;
        if entries.len() > limit {
            break;
        }
    }
    Ok(TimelinePage::from_scan(entries, limit, forward))
}

pub(super) async fn list(
    inner: &Inner,
    tenant: &TenantId,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let limit = query.validate()?;
    let (t, list) = (tenant.as_str(), list_name(&query.list));
    let rows: Vec<(Vec<u8>,)> = match &query.after {
        None => select_first(inner, cql::LIST_FIRST, (t, &list), limit + 1).await?,
        Some(after) => {
            let desc = schema::activity_desc(after.last_activity_at.as_micros());
            let values = (t, &list, desc, after.conversation.as_str());
            select_first(inner, cql::LIST_AFTER, values, limit + 1).await?
        }
    };
    let items = rows
        .iter()
        .map(|(bytes,)| codec::decode("conversation_lists", bytes))
        .collect::<Result<Vec<ConversationSummary>, _>>()?;
    Ok(ListPage::from_scan(items, limit))
}

pub(super) async fn queue(inner: &Inner, tenant: &TenantId) -> Result<Vec<QueueEntry>, StoreError> {
    let rows: Vec<(Vec<u8>,)> = select_all(inner, cql::SELECT_QUEUE, (tenant.as_str(),)).await?;
    rows.iter()
        .map(|(bytes,)| {
            codec::decode::<ConversationSummary>("queue", bytes).map(|s| QueueEntry::from(&s))
        })
        .collect()
}

async fn load(inner: &Inner, tenant: &TenantId, agent: &AgentId) -> Result<u32, StoreError> {
    let list = list_name(&ConversationList::Inbox(agent.clone()));
    let rows: Vec<(i64,)> = select_all(inner, cql::COUNT_LIST, (tenant.as_str(), list)).await?;
    Ok(rows.first().map_or(0, |(n,)| *n as u32))
}

pub(super) async fn agent(
    inner: &Inner,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Option<AgentState>, StoreError> {
    let values = (tenant.as_str(), agent.as_str());
    let rows: Vec<AgentColumns> = select_all(inner, cql::SELECT_AGENT, values).await?;
    match rows.into_iter().next() {
        Some(row) => Ok(Some(AgentState {
            record: agent_from_columns(tenant, row)?,
            load: load(inner, tenant, agent).await?,
        })),
        None => Ok(None),
    }
}

pub(super) async fn agents(
    inner: &Inner,
    tenant: &TenantId,
) -> Result<Vec<AgentState>, StoreError> {
    let rows: Vec<AgentColumns> = select_all(inner, cql::SELECT_AGENTS, (tenant.as_str(),)).await?;
    let mut agents = Vec::with_capacity(rows.len());
    for row in rows {
        let record = agent_from_columns(tenant, row)?;
        let load = load(inner, tenant, &record.agent).await?;
        agents.push(AgentState { record, load });
    }
    Ok(agents)
}

pub(super) async fn report(
    inner: &Inner,
    tenant: &TenantId,
    scope: &ReportScope,
    from: Day,
    to: Day,
) -> Result<Vec<DailyReport>, StoreError> {
    let values = (tenant.as_str(), scope.key(), from.0, to.0);
    let rows: Vec<(i32, Option<Vec<i64>>)> =
        select_all(inner, cql::SELECT_PARTIALS, values).await?;
    let partials = rows
        .into_iter()
        .map(|(day, counters)| Ok((Day(day), counters_from_list(counters)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(report::sum_by_day(partials))
}

pub(super) async fn report_partial(
    inner: &Inner,
    key: &ReportKey,
    source: LogPartition,
) -> Result<Option<ReportPartial>, StoreError> {
    let values = (
        key.tenant.as_str(),
        key.scope.key(),
        key.day.0,
        source.topic.name(),
        source.partition as i32,
    );
    let rows: Vec<(Option<Vec<i64>>, i64)> = select_all(inner, cql::SELECT_PARTIAL, values).await?;
    match rows.into_iter().next() {
        Some((counters, through)) => Ok(Some(ReportPartial {
            key: key.clone(),
            source,
            counters: counters_from_list(counters)?,
            through_offset: through as u64,
        })),
        None => Ok(None),
    }
}

pub(super) async fn checkpoint(
    inner: &Inner,
    key: &CheckpointKey,
) -> Result<Option<u64>, StoreError> {
    let values = (
        key.consumer.as_str(),
        key.source.topic.name(),
        key.source.partition as i32,
    );
    let rows: Vec<(i64,)> = select_all(inner, cql::SELECT_CHECKPOINT, values).await?;
    Ok(rows.first().map(|(offset,)| *offset as u64))
}

/// The stored `(data_key, erased_at)` of a row of `data_keys`: `Ok(None)` when there is none.
pub(super) async fn data_key_raw(
    inner: &Inner,
    tenant: &str,
    customer: &str,
    serial: bool,
) -> Result<Option<(Option<Vec<u8>>, Option<i64>)>, StoreError> {
    let mut statement = inner.statement(cql::SELECT_DATA_KEY).clone();
    if serial {
        // Read what the creating lightweight transaction committed.
        statement.set_consistency(Consistency::LocalSerial);
    }
    let mut rows: Vec<(Option<Vec<u8>>, Option<i64>)> = Vec::new();
    select(inner, &statement, (tenant, customer), |row| {
        rows.push(row);
        Ok(true)
    })
    .await?;
    Ok(rows.into_iter().next())
}

/// The stored state of a customer's key: `Ok(None)` when there is no row. A live key is a
/// [`WrappedKey`](crate::keywrap::WrappedKey), or 32 bytes in clear if it was written
/// before keys were wrapped.
pub(super) async fn data_key_row(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
    serial: bool,
) -> Result<Option<Option<DataKey>>, StoreError> {
    let Some((key, erased_at)) =
        data_key_raw(inner, tenant.as_str(), customer.as_str(), serial).await?
    else {
        return Ok(None);
    };
    if erased_at.is_some() {
        return Ok(Some(None));
    }
    let key = key.unwrap_or_default();
    if let Ok(clear) = <[u8; 32]>::try_from(key.as_slice()) {
        return Ok(Some(Some(DataKey::from_bytes(clear))));
    }
    let wrapped = WrappedKey::decode(&key).map_err(|e| StoreError::corrupt("data_keys", e))?;
    let key = inner.kek.unwrap(&wrapped, &key_context(tenant, customer))?;
    Ok(Some(Some(key)))
}

pub(super) async fn data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<Option<DataKey>, StoreError> {
    Ok(data_key_row(inner, tenant, customer, false)
        .await?
        .flatten())
}

pub(super) async fn resolved_on(
    inner: &Inner,
    day: Day,
    after: Option<&ResolvedRef>,
    limit: u32,
) -> Result<Vec<ResolvedRef>, StoreError> {
    let limit = limit as usize;
    let rows: Vec<(String, String)> = match after {
        None => select_first(inner, cql::RESOLVED_FIRST, (day.0,), limit).await?,
        Some(r) => {
            let values = (day.0, r.tenant.as_str(), r.conversation.as_str());
            select_first(inner, cql::RESOLVED_AFTER, values, limit).await?
        }
    };
    rows.into_iter()
        .map(|(tenant, conversation)| {
            let corrupt =
                |e: switchboard_events::IdError| StoreError::corrupt("resolved_by_day", e);
            Ok(ResolvedRef {
                tenant: TenantId::new(tenant).map_err(corrupt)?,
                conversation: ConversationId::new(conversation).map_err(corrupt)?,
            })
        })
        .collect()
}

pub(super) async fn archived(
    inner: &Inner,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Option<ArchiveEntry>, StoreError> {
    let values = (tenant.as_str(), conversation.as_str());
    let rows: Vec<(Vec<u8>,)> = select_all(inner, cql::SELECT_MANIFEST, values).await?;
    rows.first()
        .map(|(bytes,)| codec::decode("archive_manifest", bytes))
        .transpose()
}

pub(super) async fn archive_manifest(
    inner: &Inner,
    tenant: &TenantId,
    day: Day,
) -> Result<Vec<ArchiveEntry>, StoreError> {
    let values = (tenant.as_str(), day.0);
    let rows: Vec<(Vec<u8>,)> = select_all(inner, cql::SELECT_MANIFEST_DAY, values).await?;
    rows.iter()
        .map(|(bytes,)| codec::decode("archive_manifest_by_day", bytes))
        .collect()
}

pub(super) async fn writer_snapshot(
    inner: &Inner,
    source: LogPartition,
) -> Result<Option<WriterSnapshot>, StoreError> {
    let values = (source.topic.name(), source.partition as i32);
    let rows: Vec<(i64, Vec<u8>)> = select_all(inner, cql::SELECT_WRITER_SNAPSHOT, values).await?;
    Ok(rows
        .into_iter()
        .next()
        .map(|(next_offset, body)| WriterSnapshot {
            source,
            next_offset: next_offset as u64,
            body,
        }))
}

pub(super) async fn parked_conversation(
    inner: &Inner,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Option<ParkedConversation>, StoreError> {
    let values = (tenant.as_str(), conversation.as_str());
    let rows: Vec<(i64, Vec<u8>)> = select_all(inner, cql::SELECT_PARKED, values).await?;
    Ok(rows
        .into_iter()
        .next()
        .map(|(last_seq, body)| ParkedConversation {
            tenant: tenant.clone(),
            conversation: conversation.clone(),
            last_seq: switchboard_events::Seq(last_seq as u64),
            body,
        }))
}
