//! Reads of the embedded store: each one range scan or a few point lookups.

use std::ops::Bound;

use switchboard_events::Timestamp;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::personal::DataKey;

use super::keys::decode_data_key;
use super::schema::tables;
use super::write::PartialValue;
use super::{Inner, engine_error, schema};
use crate::agent::{AgentRecord, AgentState};
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::codec;
use crate::conversation::{
    ConversationList, ConversationSummary, ListPage, ListQuery, Placement, QueueEntry,
};
use crate::report::{DailyReport, Day, ReportKey, ReportPartial, ReportScope, sum_by_day};
use crate::timeline::{TimelinePage, TimelineQuery};
use crate::{StoreError, report};

pub(super) fn timeline(
    inner: &Inner,
    tenant: &TenantId,
    conversation: &ConversationId,
    query: TimelineQuery,
) -> Result<TimelinePage, StoreError> {
    let limit = query.validate()?;
    let Some((from, to)) = query.cursor.bounds() else {
        return Ok(TimelinePage::default());
    };
    let prefix = schema::conversation(tenant.as_str(), conversation.as_str());
    let range = schema::timeline(&prefix, switchboard_events::Seq(from))
        ..=schema::timeline(&prefix, switchboard_events::Seq(to));
    let rows = inner.t.timeline.range(range);
    let rows: Box<dyn Iterator<Item = _>> = if query.cursor.is_forward() {
        Box::new(rows)
    } else {
        Box::new(rows.rev())
    };
    let mut entries = Vec::with_capacity(limit + 1);
    for row in rows {
        let (key, value) = row.map_err(engine_error("read a timeline"))?;
        let seq = schema::timeline_seq(&key)
            .ok_or_else(|| StoreError::corrupt("timeline", "key without a seq"))?;
        let entry = codec::decode_entry(seq, &value)?;
        if query.audience.sees(&entry) {
            entries.push(entry);
            if entries.len() > limit {
                break;
            }
        }
    }
    Ok(TimelinePage::from_scan(
        entries,
        limit,
        query.cursor.is_forward(),
    ))
}

pub(super) fn summary(
    inner: &Inner,
    tenant: &str,
    conversation: &str,
) -> Result<Option<ConversationSummary>, StoreError> {
    let key = schema::conversation(tenant, conversation);
    let value = inner
        .t
        .conversations
        .get(key)
        .map_err(engine_error("read a conversation"))?;
    value
        .map(|v| codec::decode("conversations", &v))
        .transpose()
}

/// The keys and conversation ids of entries under `prefix` from `start`, at most `limit`.
fn scan_entries(
    table: &fjall::PartitionHandle,
    prefix: &[u8],
    start: Bound<Vec<u8>>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
    let range = (start, Bound::Excluded(schema::prefix_end(prefix)));
    let mut entries = Vec::new();
    for row in table.range::<Vec<u8>, _>(range).take(limit) {
        let (key, _) = row.map_err(engine_error("scan a list"))?;
        let id = schema::entry_conversation(prefix.len(), &key)
            .ok_or_else(|| StoreError::corrupt("lists", "entry without a conversation id"))?
            .to_owned();
        entries.push((key.to_vec(), id));
    }
    Ok(entries)
}

pub(super) fn list(
    inner: &Inner,
    tenant: &TenantId,
    query: &ListQuery,
) -> Result<ListPage, StoreError> {
    let limit = query.validate()?;
    let prefix = schema::list_prefix(tenant.as_str(), &query.list);
    let start = match &query.after {
        Some(after) => Bound::Excluded(schema::list_entry(
            &prefix,
            after.last_activity_at,
            after.conversation.as_str(),
        )),
        None => Bound::Included(prefix.clone()),
    };
    let mut start = start;
    let mut items = Vec::with_capacity(limit + 1);
    loop {
        let wanted = limit + 1 - items.len();
        let entries = scan_entries(&inner.t.lists, &prefix, start.clone(), wanted)?;
        let exhausted = entries.len() < wanted;
        for (key, id) in entries {
            // Reads take no lock: an entry whose summary moved on since is skipped.
            let at = schema::list_entry_time(prefix.len(), &key)
                .ok_or_else(|| StoreError::corrupt("lists", "entry without a time"))?;
            if let Some(summary) = summary(inner, tenant.as_str(), &id)?
                && listed_in(&summary, &query.list, at)
            {
                items.push(summary);
            }
            start = Bound::Excluded(key);
        }
        if exhausted || items.len() > limit {
            return Ok(ListPage::from_scan(items, limit));
        }
    }
}

fn listed_in(summary: &ConversationSummary, list: &ConversationList, at: Timestamp) -> bool {
    summary.lists().contains(&Placement::List(list.clone(), at))
}

pub(super) fn queue(inner: &Inner, tenant: &TenantId) -> Result<Vec<QueueEntry>, StoreError> {
    let prefix = schema::queue_prefix(tenant.as_str());
    let start = Bound::Included(prefix.clone());
    let mut entries = Vec::new();
    for (key, id) in scan_entries(&inner.t.queue, &prefix, start, usize::MAX)? {
        let since = schema::queue_entry_time(prefix.len(), &key)
            .ok_or_else(|| StoreError::corrupt("queue", "entry without a time"))?;
        // As for lists: an entry whose summary left the queue since is skipped.
        if let Some(summary) = summary(inner, tenant.as_str(), &id)?
            && summary.lists().contains(&Placement::Queue(since))
        {
            entries.push(QueueEntry::from(&summary));
        }
    }
    Ok(entries)
}

pub(super) fn agent_record(inner: &Inner, key: &[u8]) -> Result<Option<AgentRecord>, StoreError> {
    let value = inner
        .t
        .agents
        .get(key)
        .map_err(engine_error("read an agent"))?;
    value.map(|v| codec::decode("agents", &v)).transpose()
}

fn load(inner: &Inner, tenant: &TenantId, agent: &AgentId) -> u32 {
    let prefix = schema::list_prefix(tenant.as_str(), &ConversationList::Inbox(agent.clone()));
    inner.t.lists.prefix(prefix).count() as u32
}

pub(super) fn agent(
    inner: &Inner,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Option<AgentState>, StoreError> {
    let record = agent_record(inner, &schema::agent(tenant.as_str(), agent.as_str()))?;
    Ok(record.map(|record| AgentState {
        load: load(inner, tenant, agent),
        record,
    }))
}

pub(super) fn agents(inner: &Inner, tenant: &TenantId) -> Result<Vec<AgentState>, StoreError> {
    let mut agents = Vec::new();
    for row in inner.t.agents.prefix(schema::agent_prefix(tenant.as_str())) {
        let (_, value) = row.map_err(engine_error("scan agents"))?;
        let record: AgentRecord = codec::decode("agents", &value)?;
        agents.push(AgentState {
            load: load(inner, tenant, &record.agent),
            record,
        });
    }
    Ok(agents)
}

pub(super) fn partial_value(inner: &Inner, key: &[u8]) -> Result<Option<PartialValue>, StoreError> {
    let value = inner
        .t
        .reports
        .get(key)
        .map_err(engine_error("read a report"))?;
    value.map(|v| codec::decode("reports", &v)).transpose()
}

pub(super) fn report(
    inner: &Inner,
    tenant: &TenantId,
    scope: &ReportScope,
    from: Day,
    to: Day,
) -> Result<Vec<DailyReport>, StoreError> {
    let prefix = schema::report_prefix(tenant.as_str(), scope);
    let range = schema::report_day(tenant.as_str(), scope, from)
        ..schema::report_day(tenant.as_str(), scope, to.next());
    let mut partials = Vec::new();
    for row in inner.t.reports.range(range) {
        let (key, value) = row.map_err(engine_error("scan reports"))?;
        let day = schema::report_key_day(prefix.len(), &key)
            .ok_or_else(|| StoreError::corrupt("reports", "key without a day"))?;
        let (counters, _): PartialValue = codec::decode("reports", &value)?;
        partials.push((day, counters));
    }
    Ok(sum_by_day(partials))
}

pub(super) fn report_partial(
    inner: &Inner,
    key: &ReportKey,
    source: LogPartition,
) -> Result<Option<ReportPartial>, StoreError> {
    let stored = partial_value(inner, &schema::report(key, source))?;
    Ok(
        stored.map(|(counters, through_offset)| report::ReportPartial {
            key: key.clone(),
            source,
            counters,
            through_offset,
        }),
    )
}

pub(super) fn checkpoint(inner: &Inner, key: &CheckpointKey) -> Result<Option<u64>, StoreError> {
    let value = inner
        .t
        .checkpoints
        .get(schema::checkpoint(key))
        .map_err(engine_error("read a checkpoint"))?;
    value.map(|v| offset(&v)).transpose()
}

/// An offset of the checkpoints partition: 8 bytes, big-endian.
pub(super) fn offset(value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| StoreError::corrupt("checkpoints", "offset is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

pub(super) fn data_key(
    inner: &Inner,
    tenant: &TenantId,
    customer: &CustomerId,
) -> Result<Option<DataKey>, StoreError> {
    let key = schema::data_key(tenant.as_str(), customer.as_str());
    match inner
        .t
        .data_keys
        .get(key)
        .map_err(engine_error("read a data key"))?
    {
        Some(value) => decode_data_key(inner, tenant, customer, &value),
        None => Ok(None),
    }
}

pub(super) fn resolved_on(
    inner: &Inner,
    day: Day,
    after: Option<&ResolvedRef>,
    limit: u32,
) -> Result<Vec<ResolvedRef>, StoreError> {
    let prefix = schema::resolved_prefix(day);
    let start = match after {
        Some(r) => Bound::Excluded(schema::resolved_entry(
            day,
            r.tenant.as_str(),
            r.conversation.as_str(),
        )),
        None => Bound::Included(prefix.clone()),
    };
    let range = (start, Bound::Excluded(schema::prefix_end(&prefix)));
    let mut refs = Vec::new();
    for row in inner
        .t
        .resolved
        .range::<Vec<u8>, _>(range)
        .take(limit as usize)
    {
        let (key, _) = row.map_err(engine_error("scan resolved conversations"))?;
        let corrupt = || StoreError::corrupt("resolved", "key without ids");
        let (tenant, conversation) = schema::resolved_ids(&key).ok_or_else(corrupt)?;
        refs.push(ResolvedRef {
            tenant: TenantId::new(tenant).map_err(|_| corrupt())?,
            conversation: ConversationId::new(conversation).map_err(|_| corrupt())?,
        });
    }
    Ok(refs)
}

pub(super) fn archived(
    inner: &Inner,
    tenant: &TenantId,
    conversation: &ConversationId,
) -> Result<Option<ArchiveEntry>, StoreError> {
    let key = schema::conversation(tenant.as_str(), conversation.as_str());
    let value = inner
        .t
        .manifest
        .get(key)
        .map_err(engine_error("read the manifest"))?;
    value.map(|v| codec::decode("manifest", &v)).transpose()
}

pub(super) fn archive_manifest(
    inner: &Inner,
    tenant: &TenantId,
    day: Day,
) -> Result<Vec<ArchiveEntry>, StoreError> {
    let prefix = schema::manifest_day_prefix(tenant.as_str(), day);
    let mut entries = Vec::new();
    for row in inner.t.manifest_by_day.prefix(&prefix) {
        let (key, _) = row.map_err(engine_error("scan the manifest"))?;
        let conversation = std::str::from_utf8(&key[prefix.len()..])
            .map_err(|_| StoreError::corrupt("manifest_by_day", "conversation id not utf-8"))?;
        let key = schema::conversation(tenant.as_str(), conversation);
        if let Some(value) = inner
            .t
            .manifest
            .get(key)
            .map_err(engine_error("read the manifest"))?
        {
            entries.push(codec::decode("manifest", &value)?);
        }
    }
    Ok(entries)
}

pub(super) fn projection_digest(inner: &Inner) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    let t = &inner.t;
    let mut hasher = Sha256::new();
    let projected = [
        (tables::TIMELINE, &t.timeline),
        (tables::CONVERSATIONS, &t.conversations),
        (tables::LISTS, &t.lists),
        (tables::QUEUE, &t.queue),
        (tables::RESOLVED, &t.resolved),
        (tables::AGENTS, &t.agents),
        (tables::REPORTS, &t.reports),
    ];
    for (name, table) in projected {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        for row in table.iter() {
            let (key, value) = row.map_err(engine_error("digest the store"))?;
            for part in [&key[..], &value[..]] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
    }
    Ok(switchboard_events::hex::encode(&hasher.finalize()))
}
