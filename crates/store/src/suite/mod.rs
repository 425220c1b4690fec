//! One store scenario suite, written once over the port and run against every backend
//! (`embedded::tests` always, `scylla::tests` when a node is given).
//!
//! Each scenario takes a fresh, empty store and states given rows → expected reads.

mod bookkeeping;
mod views;
mod writer_cache;

use switchboard_events::agent::AgentStatus;
use switchboard_events::chain::{Verdict, Verifier};
use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::envelope::ActorKind;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, Label, MessageId, TenantId};
use switchboard_events::personal::{KeyProvider, Revealed, Sealed};
use switchboard_events::{ChainHash, Seq, Timestamp, Topic, fixtures};

use crate::agent::AgentRecord;
use crate::archive::{ArchiveEntry, ResolvedRef};
use crate::checkpoint::{CheckpointKey, LogPartition};
use crate::conversation::{ConversationList, ConversationStatus, ConversationSummary, ListQuery};
use crate::report::{Day, ReportCounters, ReportKey, ReportPartial, ReportScope};
use crate::timeline::{
    Audience, EventKind, TimelineCursor, TimelineEntry, TimelineQuery, TimelineRow,
};
use crate::{Batch, ReadModels, StoreError};

pub use bookkeeping::*;
pub use views::*;
pub use writer_cache::*;

pub async fn apply(store: &dyn ReadModels, batch: &Batch) {
    store.apply(batch).await.expect("batch applies");
}

pub async fn page(
    store: &dyn ReadModels,
    t: &TenantId,
    c: &ConversationId,
    cursor: TimelineCursor,
    limit: u32,
    audience: Audience,
) -> (Vec<u64>, Option<TimelineCursor>) {
    let page = store
        .timeline(t, c, TimelineQuery::new(cursor, limit, audience))
        .await
        .expect("page reads");
    (page.entries.iter().map(|e| e.seq.0).collect(), page.next)
}

pub async fn list(
    store: &dyn ReadModels,
    t: &TenantId,
    query: ListQuery,
) -> (Vec<String>, Option<crate::conversation::ListCursor>) {
    let page = store.conversations(t, &query).await.expect("list reads");
    let ids = page
        .items
        .iter()
        .map(|s| s.conversation.to_string())
        .collect();
    (ids, page.next)
}

pub const T0: i64 = fixtures::EPOCH_MICROS;

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

pub fn conv(name: &str) -> ConversationId {
    ConversationId::new(name).unwrap()
}

pub fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

/// A message row at `seq`, one second apart; every seq divisible by `note_every` is a private note.
pub fn message(
    tenant: &TenantId,
    conversation: &ConversationId,
    seq: u64,
    note_every: u64,
) -> TimelineRow {
    TimelineRow {
        tenant: tenant.clone(),
        conversation: conversation.clone(),
        entry: TimelineEntry {
            seq: Seq(seq),
            occurred_at: Timestamp(T0 + seq as i64 * 1_000_000),
            kind: EventKind(1),
            actor: if seq.is_multiple_of(2) {
                ActorKind::Agent
            } else {
                ActorKind::Customer
            },
            private_note: seq.is_multiple_of(note_every),
            message_id: Some(MessageId::new(format!("msg-{seq}")).unwrap()),
            frame: format!("frame of {conversation} at {seq}").into_bytes(),
        },
    }
}

/// A summary in `status`, last active at `T0 + at` seconds, folded through `seq`.
pub fn summary(
    tenant: &TenantId,
    conversation: &str,
    status: ConversationStatus,
    at: i64,
    seq: u64,
) -> ConversationSummary {
    let at = Timestamp(T0 + at * 1_000_000);
    ConversationSummary {
        tenant: tenant.clone(),
        conversation: conv(conversation),
        customer: CustomerId::new(format!("cust-of-{conversation}")).unwrap(),
        channel: Channel::Web,
        status,
        priority: Priority::Normal,
        vip: false,
        team: None,
        agent: (status == ConversationStatus::Assigned).then(|| agent("agent-1")),
        required_skills: vec![Label::new("billing").unwrap()],
        tags: Vec::new(),
        opened_at: Timestamp(T0),
        last_activity_at: at,
        queued_at: (status == ConversationStatus::Queued).then_some(at),
        first_response_at: None,
        resolved_at: (status == ConversationStatus::Resolved).then_some(at),
        snoozed_until: None,
        rating: None,
        messages: seq,
        customer_read_seq: Seq(0),
        agent_read_seq: Seq(0),
        erased: false,
        last_seq: Seq(seq),
        last_hash: ChainHash([seq as u8; 32]),
    }
}

pub fn agent_record(tenant: &TenantId, name: &str, max: u32, seq: u64) -> AgentRecord {
    AgentRecord {
        tenant: tenant.clone(),
        agent: agent(name),
        status: AgentStatus::Online,
        max_conversations: max,
        skills: vec![Label::new("billing").unwrap()],
        updated_at: Timestamp(T0 + seq as i64),
        last_seq: Seq(seq),
    }
}

pub fn partition(n: u32) -> LogPartition {
    LogPartition::new(Topic::Conversations, n)
}

pub fn checkpoint_key(n: u32) -> CheckpointKey {
    CheckpointKey {
        consumer: "projector".to_owned(),
        source: partition(n),
    }
}

pub fn partial(t: &TenantId, day: Day, part: u32, opened: u64, through: u64) -> ReportPartial {
    ReportPartial {
        key: ReportKey {
            tenant: t.clone(),
            day,
            scope: ReportScope::Tenant,
        },
        source: partition(part),
        counters: ReportCounters {
            conversations_opened: opened,
            ratings: 1,
            rating_sum: opened,
            ..Default::default()
        },
        through_offset: through,
    }
}

const TENANTS: [&str; 2] = ["acme", "globex"];
const CONVERSATIONS: [&str; 3] = ["c1", "c2", "c3"];
const AGENTS: [&str; 2] = ["agent-1", "agent-2"];

/// Every row a projector may write is a function of its key and version, as a deterministic
/// fold's are: the same (conversation, seq) always has the same summary.
fn summary_at(t: usize, c: usize, seq: u64) -> ConversationSummary {
    let status = ConversationStatus::ALL[seq as usize % 5];
    summary(
        &tenant(TENANTS[t]),
        CONVERSATIONS[c],
        status,
        seq as i64 * 3,
        seq,
    )
}

fn partial_at(t: usize, day: i32, part: u32, through: u64) -> ReportPartial {
    let day = Day(Day::of(Timestamp(T0)).0 + day);
    partial(&tenant(TENANTS[t]), day, part, through % 7, through)
}

/// A batch of the sample universe with a checkpoint of partition 0 at `offset`.
pub fn sample_batch(offset: u64) -> Batch {
    let mut batch = Batch::new();
    for seq in 1..=5 {
        batch.timeline(message(&tenant("acme"), &conv("c1"), seq, 3));
    }
    batch
        .conversation(summary_at(0, 0, 5))
        .agent(agent_record(&tenant("acme"), "agent-1", 3, 1))
        .report(partial_at(0, 0, 0, offset))
        .checkpoint(checkpoint_key(0), offset);
    batch
}

/// Random batches over a small universe of tenants, conversations, agents and partitions.
pub fn batches() -> impl proptest::strategy::Strategy<Value = Vec<Batch>> {
    use proptest::collection::vec;
    use proptest::prelude::*;
    let batch = (
        vec((0..2usize, 0..3usize, 1..30u64), 0..12),
        vec((0..2usize, 0..3usize, 1..30u64), 0..5),
        vec((0..2usize, 0..2usize, 1..10u64), 0..3),
        vec((0..2usize, 0..3i32, 0..2u32, 0..100u64), 0..4),
        vec((0..2u32, 0..1_000u64), 0..3),
    )
        .prop_map(|(rows, summaries, agents, reports, checkpoints)| {
            let mut batch = Batch::new();
            for (t, c, seq) in rows {
                batch.timeline(message(
                    &tenant(TENANTS[t]),
                    &conv(CONVERSATIONS[c]),
                    seq,
                    4,
                ));
            }
            for (t, c, seq) in summaries {
                batch.conversation(summary_at(t, c, seq));
            }
            for (t, a, seq) in agents {
                batch.agent(agent_record(
                    &tenant(TENANTS[t]),
                    AGENTS[a],
                    seq as u32,
                    seq,
                ));
            }
            for (t, day, part, through) in reports {
                batch.report(partial_at(t, day, part, through));
            }
            for (part, offset) in checkpoints {
                batch.checkpoint(checkpoint_key(part), offset);
            }
            batch
        });
    vec(batch, 1..4)
}

/// A name of universe `tag`: the plain name for tag 0, suffixed otherwise, so that many
/// universes (one per property-test case) can share one store.
fn in_tag(name: &str, tag: u32) -> String {
    match tag {
        0 => name.to_owned(),
        tag => format!("{name}-{tag}"),
    }
}

/// The batches with their tenants and consumers moved into universe `tag`.
pub fn in_universe(batches: &[Batch], tag: u32) -> Vec<Batch> {
    let t = |id: &TenantId| tenant(&in_tag(id.as_str(), tag));
    let mut batches = batches.to_vec();
    for b in &mut batches {
        b.timeline.iter_mut().for_each(|r| r.tenant = t(&r.tenant));
        b.conversations
            .iter_mut()
            .for_each(|s| s.tenant = t(&s.tenant));
        b.agents.iter_mut().for_each(|a| a.tenant = t(&a.tenant));
        b.reports
            .iter_mut()
            .for_each(|p| p.key.tenant = t(&p.key.tenant));
        for c in &mut b.checkpoints {
            c.key.consumer = in_tag(&c.key.consumer, tag);
        }
    }
    batches
}

/// Everything the store holds for sample universe `tag`, as read through the port, one line
/// per row: two stores with equal digests answer every read of the universe alike.
pub async fn digest(store: &dyn ReadModels, tag: u32) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let day0 = Day::of(Timestamp(T0));
    let tenants = TENANTS.map(|name| tenant(&in_tag(name, tag)));
    for t in tenants.clone() {
        for c in CONVERSATIONS.map(conv) {
            let query = TimelineQuery::new(TimelineCursor::Oldest, 500, Audience::Staff);
            for entry in store.timeline(&t, &c, query).await.unwrap().entries {
                writeln!(out, "timeline {t}/{c} {entry:?}").unwrap();
            }
            let summary = store.conversation(&t, &c).await.unwrap();
            writeln!(out, "summary {t}/{c} {summary:?}").unwrap();
            let customer = CustomerId::new(format!("cust-of-{c}")).unwrap();
            let page = store
                .conversations(
                    &t,
                    &ListQuery::first(ConversationList::Customer(customer), 500),
                )
                .await
                .unwrap();
            writeln!(out, "customer list {t}/{c} {:?}", ids(&page.items)).unwrap();
        }
        let mut lists = vec![ConversationList::Recent];
        lists.extend(ConversationStatus::ALL.map(ConversationList::Status));
        lists.extend(AGENTS.map(|a| ConversationList::Inbox(agent(a))));
        for list in lists {
            let page = store
                .conversations(&t, &ListQuery::first(list.clone(), 500))
                .await
                .unwrap();
            writeln!(out, "list {t} {list:?} {:?}", ids(&page.items)).unwrap();
        }
        writeln!(out, "queue {t} {:?}", store.queue(&t).await.unwrap()).unwrap();
        writeln!(out, "agents {t} {:?}", store.agents(&t).await.unwrap()).unwrap();
        let report = store
            .report(&t, &ReportScope::Tenant, day0, Day(day0.0 + 3))
            .await
            .unwrap();
        writeln!(out, "report {t} {report:?}").unwrap();
        for day in 0..3 {
            for part in 0..2 {
                let key = ReportKey {
                    tenant: t.clone(),
                    day: Day(day0.0 + day),
                    scope: ReportScope::Tenant,
                };
                let partial = store.report_partial(&key, partition(part)).await.unwrap();
                writeln!(out, "partial {t} {day} {part} {partial:?}").unwrap();
            }
        }
    }
    for part in 0..2 {
        let mut key = checkpoint_key(part);
        key.consumer = in_tag(&key.consumer, tag);
        if let Some(offset) = store.checkpoint(&key).await.unwrap() {
            writeln!(out, "checkpoint {}/{part} = {offset}", key.consumer).unwrap();
        }
    }
    for day in 0..4 {
        let resolved = store
            .resolved_on(Day(day0.0 + day), None, 500)
            .await
            .unwrap();
        let ours: Vec<_> = resolved
            .iter()
            .filter(|r| tenants.contains(&r.tenant))
            .collect();
        writeln!(out, "resolved {day} {ours:?}").unwrap();
    }
    out
}

fn ids(items: &[ConversationSummary]) -> Vec<String> {
    items
        .iter()
        .map(|s| format!("{}@{}", s.conversation, s.last_seq))
        .collect()
}

/// Applies `batches` (of universe `tag`) once to `once`; to `again`, each twice, then all
/// again newest first. Both must answer every read alike.
pub async fn replaying_changes_nothing(
    once: &dyn ReadModels,
    again: &dyn ReadModels,
    batches: &[Batch],
    tag: u32,
) -> Result<(), String> {
    for batch in batches {
        apply(once, batch).await;
        apply(again, batch).await;
        apply(again, batch).await;
    }
    for batch in batches.iter().rev() {
        apply(again, batch).await;
    }
    let (a, b) = (digest(once, tag).await, digest(again, tag).await);
    (a == b)
        .then_some(())
        .ok_or(format!("once:\n{a}\nagain:\n{b}"))
}

/// Applies `batches` to `clean`; to `crashed`, with a crash while writing batch `crash_at`:
/// some of its rows written (the first `cut` of each kind, as a backend that writes rows one
/// by one may leave them), no checkpoint; then a replay from the last checkpoint.
pub async fn a_crash_before_the_checkpoint_replays_cleanly(
    clean: &dyn ReadModels,
    crashed: &dyn ReadModels,
    batches: &[Batch],
    crash_at: usize,
    cut: usize,
    tag: u32,
) -> Result<(), String> {
    fn first<T: Clone>(rows: &[T], cut: usize) -> Vec<T> {
        rows[..cut.min(rows.len())].to_vec()
    }
    for (i, batch) in batches.iter().enumerate() {
        apply(clean, batch).await;
        if i == crash_at {
            let written = Batch {
                timeline: first(&batch.timeline, cut),
                conversations: first(&batch.conversations, cut),
                agents: first(&batch.agents, cut),
                reports: first(&batch.reports, cut),
                checkpoints: Vec::new(),
            };
            apply(crashed, &written).await;
            // The restarted projector resumes from the last checkpoint: this batch again.
        }
        apply(crashed, batch).await;
    }
    let (a, b) = (digest(clean, tag).await, digest(crashed, tag).await);
    (a == b)
        .then_some(())
        .ok_or(format!("clean:\n{a}\ncrashed:\n{b}"))
}
