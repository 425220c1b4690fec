//! The ScyllaDB schema and every statement the backend runs, in one place.
//!
//! One table per access pattern, each partition bounded: timelines are partitioned by
//! (tenant, conversation, bucket of 512 seqs), lists by (tenant, list), reports by
//! (tenant, scope). `{ks}` stands for the keyspace. Every statement runs prepared, at
//! LOCAL_QUORUM, paged, and all but the data-key statements are idempotent.
//!
//! Every write of a projected row carries a write timestamp derived from the row's version
//! ([`version_ts`]), set per execution at the protocol level (what `USING TIMESTAMP` says in
//! CQL): a timeline row's seq, a summary's or agent record's `last_seq`, a report partial's
//! `through_offset`, a checkpoint's offset. Last-write-wins then means newest-version-wins: a
//! replayed or reordered write never overwrites a newer one, with no read-before-write and no
//! lightweight transaction. Archiving deletes at the timestamp just above the archived
//! `last_seq` ([`through_ts`]), so it removes what it archived and nothing written later. An
//! erasure writes at [`ERASED_TS`], above every other write, forever. Only creating a data key
//! is a lightweight transaction: once per customer, never on the projection path.
//!
//! The row mappings (columns to and from domain values) live here too, beside the tables.
//!
//! Lists are ordered most recent first by clustering on the complement of the activity time
//! (`activity_desc`) in ascending order, so a cursor is one tuple comparison.

use switchboard_events::agent::AgentStatus;
use switchboard_events::id::{AgentId, Label, MessageId, TenantId};
use switchboard_events::{Seq, Timestamp};

use crate::StoreError;
use crate::agent::AgentRecord;
use crate::codec;
use crate::conversation::ConversationList;
use crate::report::ReportCounters;
use crate::timeline::{EventKind, TimelineEntry};

/// Seqs per timeline partition.
pub const BUCKET_SEQS: u64 = 512;

/// The timeline bucket (partition) of a seq: seqs 1..=512 are bucket 0.
pub fn bucket(seq: u64) -> i64 {
    (seq.saturating_sub(1) / BUCKET_SEQS) as i64
}

/// The first and last seq of a bucket.
pub fn bucket_seqs(bucket: i64) -> (u64, u64) {
    let first = bucket as u64 * BUCKET_SEQS + 1;
    (first, first + BUCKET_SEQS - 1)
}

/// The write timestamp of version `v` of a row: even, so that an archive deletion can sit
/// strictly between two versions.
pub fn version_ts(v: u64) -> i64 {
    i64::try_from(v.saturating_mul(2)).unwrap_or(ERASED_TS - 2)
}

/// The timestamp of a deletion that removes versions up to `v` and none after.
pub fn through_ts(v: u64) -> i64 {
    version_ts(v).saturating_add(1)
}

/// The write timestamp of an erasure: above any version and any wall-clock time.
pub const ERASED_TS: i64 = i64::MAX / 2;

/// The clustering value that orders activity times most recent first.
pub fn activity_desc(at: i64) -> i64 {
    !at
}

// Row mapping: the columns of each table to and from domain values.

/// The columns of a timeline row after its key: seq, occurred_at, kind, actor, private_note,
/// message_id, frame.
pub(crate) type TimelineColumns = (i64, i64, i8, i8, bool, Option<String>, Vec<u8>);

pub(crate) fn entry_columns(entry: &TimelineEntry) -> TimelineColumns {
    (
        entry.seq.0 as i64,
        entry.occurred_at.as_micros(),
        entry.kind.0 as i8,
        codec::actor_code(entry.actor) as i8,
        entry.private_note,
        entry.message_id.as_ref().map(|id| id.to_string()),
        entry.frame.clone(),
    )
}

pub(crate) fn entry_from_columns(row: TimelineColumns) -> Result<TimelineEntry, StoreError> {
    let (seq, occurred_at, kind, actor, private_note, message_id, frame) = row;
    let corrupt = |reason: String| StoreError::corrupt("timeline", format!("seq {seq}: {reason}"));
    let seq = u64::try_from(seq).map_err(|_| corrupt("negative seq".into()))?;
    Ok(TimelineEntry {
        seq: Seq(seq),
        occurred_at: Timestamp(occurred_at),
        kind: EventKind(kind as u8),
        actor: codec::actor_from_code(actor as u8)
            .ok_or_else(|| corrupt(format!("unknown actor kind {actor}")))?,
        private_note,
        message_id: message_id
            .map(MessageId::new)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?,
        frame,
    })
}

/// A list's partition name: `recent`, `status:<status>`, `inbox:<agent>`, `customer:<id>`.
pub(crate) fn list_name(list: &ConversationList) -> String {
    match list {
        ConversationList::Recent => "recent".to_owned(),
        ConversationList::Status(status) => format!("status:{}", status.as_str()),
        ConversationList::Inbox(agent) => format!("inbox:{agent}"),
        ConversationList::Customer(customer) => format!("customer:{customer}"),
    }
}

pub(crate) fn status_name(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Online => "online",
        AgentStatus::Away => "away",
        AgentStatus::Offline => "offline",
    }
}

/// The columns of an agent row after the tenant.
pub(crate) type AgentColumns = (String, String, i32, Option<Vec<String>>, i64, i64);

pub(crate) fn agent_from_columns(
    tenant: &TenantId,
    row: AgentColumns,
) -> Result<AgentRecord, StoreError> {
    let (agent, status, max, skills, updated_at, last_seq) = row;
    let corrupt = |reason: String| StoreError::corrupt("agents", format!("{agent}: {reason}"));
    let status = [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline]
        .into_iter()
        .find(|s| status_name(*s) == status)
        .ok_or_else(|| corrupt(format!("unknown status {status}")))?;
    let skills = skills
        .unwrap_or_default()
        .into_iter()
        .map(Label::new)
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(AgentRecord {
        tenant: tenant.clone(),
        agent: AgentId::new(agent.as_str()).map_err(|e| corrupt(e.to_string()))?,
        status,
        max_conversations: u32::try_from(max).map_err(|_| corrupt(format!("capacity {max}")))?,
        skills,
        updated_at: Timestamp(updated_at),
        last_seq: Seq(u64::try_from(last_seq).map_err(|_| corrupt("negative seq".into()))?),
    })
}

pub(crate) fn counters_list(counters: &ReportCounters) -> Vec<i64> {
    counters.to_array().iter().map(|&n| n as i64).collect()
}

pub(crate) fn counters_from_list(list: Option<Vec<i64>>) -> Result<ReportCounters, StoreError> {
    let list = list.unwrap_or_default();
    let mut values = [0u64; ReportCounters::FIELDS];
    if list.len() > values.len() {
        return Err(StoreError::corrupt(
            "report_partials",
            format!("{} counters, this build knows {}", list.len(), values.len()),
        ));
    }
    // A shorter list is a row written before counters were added: the new ones are zero.
    for (slot, n) in values.iter_mut().zip(list) {
        *slot = n as u64;
    }
    Ok(ReportCounters::from_array(values))
}

/// The keyspace for tests and single-node setups; production creates it with
/// NetworkTopologyStrategy in ops/.
pub const CREATE_KEYSPACE: &str = "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
    {'class': 'SimpleStrategy', 'replication_factor': 1}";

/// [`CREATE_KEYSPACE`] with another replication factor.
pub fn create_keyspace(replication_factor: u32) -> String {
    CREATE_KEYSPACE.replace(
        "'replication_factor': 1",
        &format!("'replication_factor': {replication_factor}"),
    )
}

pub const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS {ks}.timeline (tenant text, conversation text, bucket bigint, \
     seq bigint, occurred_at bigint, kind tinyint, actor tinyint, private_note boolean, \
     message_id text, frame blob, PRIMARY KEY ((tenant, conversation, bucket), seq)) \
     WITH CLUSTERING ORDER BY (seq ASC)",
    "CREATE TABLE IF NOT EXISTS {ks}.conversations (tenant text, conversation text, \
     status text, last_seq bigint, summary blob, head_seq bigint, \
     PRIMARY KEY ((tenant, conversation)))",
    "CREATE TABLE IF NOT EXISTS {ks}.conversation_lists (tenant text, list text, \
     activity_desc bigint, conversation text, summary blob, \
     PRIMARY KEY ((tenant, list), activity_desc, conversation))",
    "CREATE TABLE IF NOT EXISTS {ks}.queue (tenant text, queued_at bigint, conversation text, \
     summary blob, PRIMARY KEY ((tenant), queued_at, conversation))",
    "CREATE TABLE IF NOT EXISTS {ks}.resolved_by_day (day int, tenant text, conversation text, \
     PRIMARY KEY ((day), tenant, conversation))",
    "CREATE TABLE IF NOT EXISTS {ks}.agents (tenant text, agent text, status text, \
     max_conversations int, skills list<text>, updated_at bigint, last_seq bigint, \
     PRIMARY KEY ((tenant), agent))",
    "CREATE TABLE IF NOT EXISTS {ks}.report_partials (tenant text, scope text, day int, \
     topic text, log_partition int, counters list<bigint>, through_offset bigint, \
     PRIMARY KEY ((tenant, scope), day, topic, log_partition))",
    "CREATE TABLE IF NOT EXISTS {ks}.checkpoints (consumer text, topic text, \
     log_partition int, next_offset bigint, PRIMARY KEY ((consumer, topic, log_partition)))",
    "CREATE TABLE IF NOT EXISTS {ks}.data_keys (tenant text, customer text, data_key blob, \
     erased_at bigint, PRIMARY KEY ((tenant, customer)))",
    "CREATE TABLE IF NOT EXISTS {ks}.archive_manifest (tenant text, conversation text, \
     entry blob, PRIMARY KEY ((tenant, conversation)))",
    "CREATE TABLE IF NOT EXISTS {ks}.archive_manifest_by_day (tenant text, day int, \
     conversation text, entry blob, PRIMARY KEY ((tenant, day), conversation))",
    "CREATE TABLE IF NOT EXISTS {ks}.writer_snapshots (topic text, log_partition int, \
     next_offset bigint, body blob, PRIMARY KEY ((topic, log_partition)))",
    "CREATE TABLE IF NOT EXISTS {ks}.parked_conversations (tenant text, conversation text, \
     last_seq bigint, body blob, PRIMARY KEY ((tenant, conversation)))",
];

/// The statements the backend prepares.
pub mod cql {
    pub const UPSERT_TIMELINE: &str = "INSERT INTO {ks}.timeline (tenant, conversation, bucket, \
        seq, occurred_at, kind, actor, private_note, message_id, frame) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    pub const TIMELINE_FORWARD: &str = "SELECT seq, occurred_at, kind, actor, private_note, \
        message_id, frame FROM {ks}.timeline WHERE tenant = ? AND conversation = ? \
        AND bucket = ? AND seq >= ? AND seq <= ? ORDER BY seq ASC";
    pub const TIMELINE_BACKWARD: &str = "SELECT seq, occurred_at, kind, actor, private_note, \
        message_id, frame FROM {ks}.timeline WHERE tenant = ? AND conversation = ? \
        AND bucket = ? AND seq >= ? AND seq <= ? ORDER BY seq DESC";
    pub const DELETE_TIMELINE_BUCKET: &str = "DELETE FROM {ks}.timeline \
        WHERE tenant = ? AND conversation = ? AND bucket = ?";

    /// The timeline's head is a cell of its own beside the summary: newest seq wins.
    pub const UPSERT_HEAD: &str =
        "INSERT INTO {ks}.conversations (tenant, conversation, head_seq) VALUES (?, ?, ?)";
    pub const UPSERT_SUMMARY: &str = "INSERT INTO {ks}.conversations (tenant, conversation, \
        status, last_seq, summary) VALUES (?, ?, ?, ?, ?)";
    pub const SELECT_SUMMARY: &str = "SELECT summary, head_seq FROM {ks}.conversations \
        WHERE tenant = ? AND conversation = ?";
    pub const DELETE_SUMMARY: &str =
        "DELETE FROM {ks}.conversations WHERE tenant = ? AND conversation = ?";

    pub const UPSERT_LIST: &str = "INSERT INTO {ks}.conversation_lists (tenant, list, \
        activity_desc, conversation, summary) VALUES (?, ?, ?, ?, ?)";
    pub const DELETE_LIST: &str = "DELETE FROM {ks}.conversation_lists \
        WHERE tenant = ? AND list = ? AND activity_desc = ? AND conversation = ?";
    pub const LIST_FIRST: &str =
        "SELECT summary FROM {ks}.conversation_lists WHERE tenant = ? AND list = ?";
    pub const LIST_AFTER: &str = "SELECT summary FROM {ks}.conversation_lists \
        WHERE tenant = ? AND list = ? AND (activity_desc, conversation) > (?, ?)";
    pub const COUNT_LIST: &str =
        "SELECT COUNT(*) FROM {ks}.conversation_lists WHERE tenant = ? AND list = ?";

    pub const UPSERT_QUEUE: &str = "INSERT INTO {ks}.queue (tenant, queued_at, conversation, \
        summary) VALUES (?, ?, ?, ?)";
    pub const DELETE_QUEUE: &str =
        "DELETE FROM {ks}.queue WHERE tenant = ? AND queued_at = ? AND conversation = ?";
    pub const SELECT_QUEUE: &str = "SELECT summary FROM {ks}.queue WHERE tenant = ?";

    pub const UPSERT_RESOLVED: &str =
        "INSERT INTO {ks}.resolved_by_day (day, tenant, conversation) VALUES (?, ?, ?)";
    pub const DELETE_RESOLVED: &str = "DELETE FROM {ks}.resolved_by_day \
        WHERE day = ? AND tenant = ? AND conversation = ?";
    pub const RESOLVED_FIRST: &str =
        "SELECT tenant, conversation FROM {ks}.resolved_by_day WHERE day = ?";
    pub const RESOLVED_AFTER: &str = "SELECT tenant, conversation FROM {ks}.resolved_by_day \
        WHERE day = ? AND (tenant, conversation) > (?, ?)";

    pub const UPSERT_AGENT: &str = "INSERT INTO {ks}.agents (tenant, agent, status, \
        max_conversations, skills, updated_at, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?)";
    pub const SELECT_AGENT: &str = "SELECT agent, status, max_conversations, skills, \
        updated_at, last_seq FROM {ks}.agents WHERE tenant = ? AND agent = ?";
    pub const SELECT_AGENTS: &str = "SELECT agent, status, max_conversations, skills, \
        updated_at, last_seq FROM {ks}.agents WHERE tenant = ?";

    pub const UPSERT_PARTIAL: &str = "INSERT INTO {ks}.report_partials (tenant, scope, day, \
        topic, log_partition, counters, through_offset) VALUES (?, ?, ?, ?, ?, ?, ?)";
    pub const SELECT_PARTIALS: &str = "SELECT day, counters FROM {ks}.report_partials \
        WHERE tenant = ? AND scope = ? AND day >= ? AND day <= ?";
    pub const SELECT_PARTIAL: &str = "SELECT counters, through_offset FROM {ks}.report_partials \
        WHERE tenant = ? AND scope = ? AND day = ? AND topic = ? AND log_partition = ?";

    pub const UPSERT_CHECKPOINT: &str = "INSERT INTO {ks}.checkpoints (consumer, topic, \
        log_partition, next_offset) VALUES (?, ?, ?, ?)";
    pub const SELECT_CHECKPOINT: &str = "SELECT next_offset FROM {ks}.checkpoints \
        WHERE consumer = ? AND topic = ? AND log_partition = ?";

    /// A lightweight transaction: once per customer, never on the projection path.
    pub const CREATE_DATA_KEY: &str = "INSERT INTO {ks}.data_keys (tenant, customer, data_key) \
        VALUES (?, ?, ?) IF NOT EXISTS";
    /// Written at `ERASED_TS`: no earlier or later write of the key can win over it.
    pub const ERASE_DATA_KEY: &str = "INSERT INTO {ks}.data_keys (tenant, customer, data_key, \
        erased_at) VALUES (?, ?, ?, ?)";
    pub const SELECT_DATA_KEY: &str = "SELECT data_key, erased_at FROM {ks}.data_keys \
        WHERE tenant = ? AND customer = ?";

    pub const UPSERT_MANIFEST: &str = "INSERT INTO {ks}.archive_manifest (tenant, conversation, \
        entry) VALUES (?, ?, ?)";
    pub const UPSERT_MANIFEST_DAY: &str = "INSERT INTO {ks}.archive_manifest_by_day (tenant, \
        day, conversation, entry) VALUES (?, ?, ?, ?)";
    pub const SELECT_MANIFEST: &str = "SELECT entry FROM {ks}.archive_manifest \
        WHERE tenant = ? AND conversation = ?";
    pub const SELECT_MANIFEST_DAY: &str = "SELECT entry FROM {ks}.archive_manifest_by_day \
        WHERE tenant = ? AND day = ?";

    /// Written at the snapshot's `next_offset`: the one further on wins.
    pub const UPSERT_WRITER_SNAPSHOT: &str = "INSERT INTO {ks}.writer_snapshots (topic, \
        log_partition, next_offset, body) VALUES (?, ?, ?, ?)";
    pub const SELECT_WRITER_SNAPSHOT: &str = "SELECT next_offset, body FROM \
        {ks}.writer_snapshots WHERE topic = ? AND log_partition = ?";
    /// Written at the conversation's `last_seq`: the later state wins.
    pub const UPSERT_PARKED: &str = "INSERT INTO {ks}.parked_conversations (tenant, \
        conversation, last_seq, body) VALUES (?, ?, ?, ?)";
    pub const SELECT_PARKED: &str = "SELECT last_seq, body FROM {ks}.parked_conversations \
        WHERE tenant = ? AND conversation = ?";
}

/// Every DML statement, for preparing and for the parse test.
pub const STATEMENTS: &[&str] = &[
    cql::UPSERT_TIMELINE,
    cql::TIMELINE_FORWARD,
    cql::TIMELINE_BACKWARD,
    cql::DELETE_TIMELINE_BUCKET,
    cql::UPSERT_HEAD,
    cql::UPSERT_SUMMARY,
    cql::SELECT_SUMMARY,
    cql::DELETE_SUMMARY,
    cql::UPSERT_LIST,
    cql::DELETE_LIST,
    cql::LIST_FIRST,
    cql::LIST_AFTER,
    cql::COUNT_LIST,
    cql::UPSERT_QUEUE,
    cql::DELETE_QUEUE,
    cql::SELECT_QUEUE,
    cql::UPSERT_RESOLVED,
    cql::DELETE_RESOLVED,
    cql::RESOLVED_FIRST,
    cql::RESOLVED_AFTER,
    cql::UPSERT_AGENT,
    cql::SELECT_AGENT,
    cql::SELECT_AGENTS,
    cql::UPSERT_PARTIAL,
    cql::SELECT_PARTIALS,
    cql::SELECT_PARTIAL,
    cql::UPSERT_CHECKPOINT,
    cql::SELECT_CHECKPOINT,
    cql::CREATE_DATA_KEY,
    cql::ERASE_DATA_KEY,
    cql::SELECT_DATA_KEY,
    cql::UPSERT_MANIFEST,
    cql::UPSERT_MANIFEST_DAY,
    cql::SELECT_MANIFEST,
    cql::SELECT_MANIFEST_DAY,
    cql::UPSERT_WRITER_SNAPSHOT,
    cql::SELECT_WRITER_SNAPSHOT,
    cql::UPSERT_PARKED,
    cql::SELECT_PARKED,
];

/// Whether a statement is a lightweight transaction (not idempotent, serial consistency).
pub fn is_lwt(statement: &str) -> bool {
    statement.contains(" IF NOT EXISTS") && !statement.starts_with("CREATE")
}

/// A statement with the keyspace filled in.
pub fn in_keyspace(statement: &str, keyspace: &str) -> String {
    statement.replace("{ks}", keyspace)
}
