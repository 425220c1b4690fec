//! The embedded layout: one ordered table per access pattern, keys built so that every read
//! is one range scan or point lookup.
//!
//! Ids never contain a NUL byte (the id charset is ASCII letters, digits and `-_.:`), so NUL
//! separates the parts of a key and a prefix ending in NUL names exactly one tenant, list or
//! conversation. Numbers are big-endian, signed ones with the sign bit flipped, so that byte
//! order is numeric order; descending orders store the bitwise complement.

use switchboard_events::{Seq, Timestamp};

use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::conversation::ConversationList;
use crate::report::{Day, ReportKey, ReportScope};

/// Every table, by name; values are described beside each.
pub mod tables {
    /// (tenant, conversation, seq) → timeline entry (`codec::encode_entry`).
    pub const TIMELINE: &str = "timeline";
    /// (tenant, conversation) → summary.
    pub const CONVERSATIONS: &str = "conversations";
    /// (tenant, list, activity descending, conversation) → empty; the summary is looked up.
    pub const LISTS: &str = "lists";
    /// (tenant, queued_at, conversation) → empty.
    pub const QUEUE: &str = "queue";
    /// (day, tenant, conversation) → empty.
    pub const RESOLVED: &str = "resolved";
    /// (tenant, agent) → agent record.
    pub const AGENTS: &str = "agents";
    /// (tenant, scope, day, topic, partition) → counters and through-offset.
    pub const REPORTS: &str = "reports";
    /// (consumer, topic, partition) → next offset; ("", "keys", topic, partition) → the next
    /// offset of the keys topic to fold into `data_keys`.
    pub const CHECKPOINTS: &str = "checkpoints";
    /// (tenant, customer) → data key state.
    pub const DATA_KEYS: &str = "data_keys";
    /// KEK id → a check value wrapped under that KEK (`keywrap`).
    pub const KEKS: &str = "keks";
    /// (tenant, conversation) → archive entry.
    pub const MANIFEST: &str = "manifest";
    /// (tenant, day, conversation) → empty.
    pub const MANIFEST_BY_DAY: &str = "manifest_by_day";
    /// ("partition", topic, partition) or ("conversation", tenant, conversation) → the
    /// writer's cache entry: version byte, its order (offset or seq, 8 bytes), its body.
    pub const WRITER_CACHE: &str = "writer_cache";
}

const SEP: u8 = 0;

fn key(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        out.extend_from_slice(part);
        out.push(SEP);
    }
    out
}

fn i64_ordered(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

fn i64_descending(n: i64) -> [u8; 8] {
    (!((n as u64) ^ (1 << 63))).to_be_bytes()
}

fn day_ordered(day: Day) -> [u8; 4] {
    ((day.0 as u32) ^ (1 << 31)).to_be_bytes()
}

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

pub fn conversation(tenant: &str, conversation: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), conversation.as_bytes()])
}

/// The timeline key of `seq`: the conversation's key, then the seq.
pub fn timeline(conversation_key: &[u8], seq: Seq) -> Vec<u8> {
    let mut out = Vec::with_capacity(conversation_key.len() + 8);
    out.extend_from_slice(conversation_key);
    out.extend_from_slice(&seq.0.to_be_bytes());
    out
}

/// The seq of a timeline key.
pub fn timeline_seq(key: &[u8]) -> Option<Seq> {
    let tail = key.len().checked_sub(8).map(|at| &key[at..])?;
    Some(Seq(u64::from_be_bytes(tail.try_into().ok()?)))
}

/// The prefix of one list of one tenant.
pub fn list_prefix(tenant: &str, list: &ConversationList) -> Vec<u8> {
    match list {
        ConversationList::Recent => key(&[tenant.as_bytes(), b"recent"]),
        ConversationList::Status(status) => {
            key(&[tenant.as_bytes(), b"status", status.as_str().as_bytes()])
        }
        ConversationList::Inbox(agent) => {
            key(&[tenant.as_bytes(), b"inbox", agent.as_str().as_bytes()])
        }
        ConversationList::Customer(customer) => {
            key(&[tenant.as_bytes(), b"customer", customer.as_str().as_bytes()])
        }
    }
}

/// A list entry: most recent activity first, then by conversation id.
pub fn list_entry(prefix: &[u8], at: Timestamp, conversation: &str) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(&i64_descending(at.as_micros()));
    out.extend_from_slice(conversation.as_bytes());
    out
}

/// The activity time of a list entry.
pub fn list_entry_time(prefix_len: usize, key: &[u8]) -> Option<Timestamp> {
    let bytes: [u8; 8] = key.get(prefix_len..prefix_len + 8)?.try_into().ok()?;
    Some(Timestamp((!u64::from_be_bytes(bytes) ^ (1 << 63)) as i64))
}

/// The conversation id at the end of a list or queue entry.
pub fn entry_conversation(prefix_len: usize, key: &[u8]) -> Option<&str> {
    key.get(prefix_len + 8..)
        .and_then(|id| std::str::from_utf8(id).ok())
}

pub fn queue_prefix(tenant: &str) -> Vec<u8> {
    key(&[tenant.as_bytes()])
}

/// A queue entry: longest waiting first.
pub fn queue_entry(tenant: &str, since: Timestamp, conversation: &str) -> Vec<u8> {
    let mut out = queue_prefix(tenant);
    out.extend_from_slice(&i64_ordered(since.as_micros()));
    out.extend_from_slice(conversation.as_bytes());
    out
}

/// The time a queue entry joined the queue.
pub fn queue_entry_time(prefix_len: usize, key: &[u8]) -> Option<Timestamp> {
    let bytes: [u8; 8] = key.get(prefix_len..prefix_len + 8)?.try_into().ok()?;
    Some(Timestamp((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64))
}

pub fn resolved_prefix(day: Day) -> Vec<u8> {
    day_ordered(day).to_vec()
}

pub fn resolved_entry(day: Day, tenant: &str, conversation: &str) -> Vec<u8> {
    let mut out = resolved_prefix(day);
    out.extend_from_slice(&key(&[tenant.as_bytes(), conversation.as_bytes()]));
    out
}

/// The (tenant, conversation) of a resolved entry.
pub fn resolved_ids(key: &[u8]) -> Option<(&str, &str)> {
    let rest = std::str::from_utf8(key.get(4..)?).ok()?;
    let mut parts = rest.split('\0');
    Some((parts.next()?, parts.next()?))
}

pub fn agent(tenant: &str, agent: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), agent.as_bytes()])
}

pub fn agent_prefix(tenant: &str) -> Vec<u8> {
    key(&[tenant.as_bytes()])
}

/// The prefix of one scope's reports; days follow in order.
pub fn report_prefix(tenant: &str, scope: &ReportScope) -> Vec<u8> {
    key(&[tenant.as_bytes(), scope.key().as_bytes()])
}

pub fn report_day(tenant: &str, scope: &ReportScope, day: Day) -> Vec<u8> {
    let mut out = report_prefix(tenant, scope);
    out.extend_from_slice(&day_ordered(day));
    out
}

pub fn report(key: &ReportKey, source: LogPartition) -> Vec<u8> {
    let mut out = report_day(key.tenant.as_str(), &key.scope, key.day);
    out.extend_from_slice(&self::key(&[source.topic.name().as_bytes()]));
    out.extend_from_slice(&source.partition.to_be_bytes());
    out
}

/// The day of a report key that starts with `prefix`.
pub fn report_key_day(prefix_len: usize, key: &[u8]) -> Option<Day> {
    let bytes: [u8; 4] = key.get(prefix_len..prefix_len + 4)?.try_into().ok()?;
    Some(Day((u32::from_be_bytes(bytes) ^ (1 << 31)) as i32))
}

pub fn checkpoint(key: &CheckpointKey) -> Vec<u8> {
    let mut out = self::key(&[key.consumer.as_bytes(), key.source.topic.name().as_bytes()]);
    out.extend_from_slice(&key.source.partition.to_be_bytes());
    out
}

/// How far the keys topic's `partition` is folded into `data_keys`, in the checkpoints
/// table: an empty first part, which no consumer's name is, keeps it apart from theirs.
pub fn key_offset(topic: &str, partition: u32) -> Vec<u8> {
    let mut out = self::key(&[b"", b"keys", topic.as_bytes()]);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn data_key(tenant: &str, customer: &str) -> Vec<u8> {
    key(&[tenant.as_bytes(), customer.as_bytes()])
}

pub fn manifest_day_prefix(tenant: &str, day: Day) -> Vec<u8> {
    let mut out = key(&[tenant.as_bytes()]);
    out.extend_from_slice(&day_ordered(day));
    out
}

pub fn manifest_by_day(tenant: &str, day: Day, conversation: &str) -> Vec<u8> {
    let mut out = manifest_day_prefix(tenant, day);
    out.extend_from_slice(conversation.as_bytes());
    out
}

/// The writer's snapshot of a log partition.
pub fn writer_snapshot(source: LogPartition) -> Vec<u8> {
    let mut out = key(&[b"partition", source.topic.name().as_bytes()]);
    out.extend_from_slice(&source.partition.to_be_bytes());
    out
}

/// A conversation the writer parked.
pub fn parked_conversation(tenant: &str, conversation: &str) -> Vec<u8> {
    key(&[b"conversation", tenant.as_bytes(), conversation.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_by_value_and_times_descend_where_asked() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_767_225_600_000_000, i64::MAX];
        for pair in times.windows(2) {
            assert!(i64_ordered(pair[0]) < i64_ordered(pair[1]));
            assert!(i64_descending(pair[0]) > i64_descending(pair[1]));
        }
        assert!(day_ordered(Day(-1)) < day_ordered(Day(0)));
        assert!(day_ordered(Day(20_000)) < day_ordered(Day(20_001)));
    }

    #[test]
    fn a_prefix_names_one_tenant_not_its_namesakes() {
        let acme = conversation("acme", "c1");
        let acme2 = conversation("acme2", "c1");
        let prefix = queue_prefix("acme");
        assert!(acme.starts_with(&prefix) && !acme2.starts_with(&prefix));
        assert!(prefix_end(&prefix) > acme && prefix_end(&prefix) < acme2);
    }

    #[test]
    fn keys_give_their_parts_back() {
        let conv = conversation("acme", "c1");
        assert_eq!(timeline_seq(&timeline(&conv, Seq(42))), Some(Seq(42)));
        let list = list_prefix("acme", &ConversationList::Recent);
        let entry = list_entry(&list, Timestamp(7), "conv-9");
        assert_eq!(entry_conversation(list.len(), &entry), Some("conv-9"));
        let queue = queue_prefix("acme");
        for at in [i64::MIN, -1, 0, 7, i64::MAX] {
            let entry = list_entry(&list, Timestamp(at), "c");
            assert_eq!(list_entry_time(list.len(), &entry), Some(Timestamp(at)));
            let entry = queue_entry("acme", Timestamp(at), "c");
            assert_eq!(queue_entry_time(queue.len(), &entry), Some(Timestamp(at)));
        }
        assert_eq!(
            resolved_ids(&resolved_entry(Day(3), "acme", "c1")),
            Some(("acme", "c1"))
        );
        let prefix = report_prefix("acme", &ReportScope::Tenant);
        let key = report_day("acme", &ReportScope::Tenant, Day(-3));
        assert_eq!(report_key_day(prefix.len(), &key), Some(Day(-3)));
        assert_eq!(prefix_end(&[1, 255]), vec![2]);
    }
}
