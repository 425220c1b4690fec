//! The embedded store through its port: a page of 50 timeline entries, and a projected batch.
//!
//! `cargo bench -p switchboard-store --bench store`
//!
//! Criterion reports means and medians; the p99 of a page read comes from a separate loop of
//! 20,000 timed reads, printed to stderr, as does sustained batch throughput over 300,000
//! events.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::envelope::ActorKind;
use switchboard_events::id::{ConversationId, CustomerId, MessageId, TenantId};
use switchboard_events::{ChainHash, Seq, Timestamp, Topic};
use switchboard_store::checkpoint::{CheckpointKey, LogPartition};
use switchboard_store::conversation::{ConversationStatus, ConversationSummary};
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use switchboard_store::report::{Day, ReportCounters, ReportKey, ReportPartial, ReportScope};
use switchboard_store::timeline::{
    Audience, EventKind, TimelineCursor, TimelineEntry, TimelineQuery, TimelineRow,
};
use switchboard_store::{Batch, ReadModels};
use tokio::runtime::Runtime;

const CONVERSATIONS_PER_BATCH: u64 = 100;
const EVENTS_PER_CONVERSATION: u64 = 10;
const EVENTS_PER_BATCH: u64 = CONVERSATIONS_PER_BATCH * EVENTS_PER_CONVERSATION;
/// About the size of a framed MessagePosted with a 200-byte body.
const FRAME_LEN: usize = 330;
const T0: i64 = 1_767_225_600_000_000;

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn conversation(n: u64) -> ConversationId {
    ConversationId::new(format!("conv-{n}")).unwrap()
}

fn row(n: u64, seq: u64) -> TimelineRow {
    TimelineRow {
        tenant: tenant(),
        conversation: conversation(n),
        entry: TimelineEntry {
            seq: Seq(seq),
            occurred_at: Timestamp(T0 + seq as i64 * 1_000_000),
            kind: EventKind(1),
            actor: ActorKind::Customer,
            private_note: false,
            message_id: Some(MessageId::new(format!("msg-{seq}")).unwrap()),
            frame: vec![0x5a; FRAME_LEN],
        },
    }
}

fn summary(n: u64, seq: u64) -> ConversationSummary {
    let at = Timestamp(T0 + seq as i64 * 1_000_000);
    ConversationSummary {
        tenant: tenant(),
        conversation: conversation(n),
        customer: CustomerId::new(format!("cust-{n}")).unwrap(),
        channel: Channel::Web,
        status: ConversationStatus::Assigned,
        priority: Priority::Normal,
        vip: false,
        team: None,
        agent: Some(switchboard_events::id::AgentId::new(format!("agent-{}", n % 20)).unwrap()),
        required_skills: Vec::new(),
        tags: Vec::new(),
        opened_at: Timestamp(T0),
        last_activity_at: at,
        queued_at: None,
        first_response_at: Some(Timestamp(T0 + 1)),
        resolved_at: None,
        snoozed_until: None,
        rating: None,
        messages: seq,
        customer_read_seq: Seq(seq),
        agent_read_seq: Seq(seq),
        erased: false,
        last_seq: Seq(seq),
        last_hash: ChainHash([7; 32]),
    }
}

/// What a projector writes for 1,000 events: 10 events in each of 100 conversations
/// (`first..first + 100`), after seq `after`, their summaries, a report partial and the
/// checkpoint.
fn batch(first: u64, after: u64, offset: u64) -> Batch {
    let mut batch = Batch::new();
    for n in first..first + CONVERSATIONS_PER_BATCH {
        for seq in after + 1..=after + EVENTS_PER_CONVERSATION {
            batch.timeline(row(n, seq));
        }
        batch.conversation(summary(n, after + EVENTS_PER_CONVERSATION));
    }
    let source = LogPartition::new(Topic::Conversations, 0);
    batch.report(ReportPartial {
        key: ReportKey {
            tenant: tenant(),
            day: Day::of(Timestamp(T0)),
            scope: ReportScope::Tenant,
        },
        source,
        counters: ReportCounters {
            messages_from_customers: offset,
            ..Default::default()
        },
        through_offset: offset,
    });
    batch.checkpoint(
        CheckpointKey {
            consumer: "projector".to_owned(),
            source,
        },
        offset + 1,
    );
    batch
}

fn open(dir: &std::path::Path, sync_batches: bool) -> EmbeddedStore {
    let options = EmbeddedOptions {
        sync_batches,
        ..EmbeddedOptions::default()
    };
    EmbeddedStore::open(dir, options).unwrap()
}

/// CPU time of the whole process (every thread: the writer, fjall's flushes and
/// compactions), from /proc/self/stat, in seconds; `None` where there is no procfs.
/// Unlike wall time, it hardly depends on what else the shared machine runs.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, 100 per second on every mainstream configuration.
    Some(ticks as f64 / 100.0)
}

fn percentiles(name: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    eprintln!(
        "{name}: n={} p50={:?} p99={:?} p99.9={:?} max={:?}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(0.999),
        latencies[latencies.len() - 1]
    );
}

fn page_of_50(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false);
    // 100 conversations of 2,000 events each.
    for k in 0..200 {
        rt.block_on(store.apply(&batch(1_000_000, k * EVENTS_PER_CONVERSATION, k)))
            .unwrap();
    }
    let query = |i: u64| {
        let before = 51 + (i * 7919) % 1_950;
        let cursor = TimelineCursor::Before(Seq(before));
        (
            conversation(1_000_000 + i % 100),
            TimelineQuery::new(cursor, 50, Audience::Customer),
        )
    };
    let mut i = 0;
    c.bench_function("embedded/page_of_50", |b| {
        b.iter(|| {
            i += 1;
            let (conversation, query) = query(i);
            let page = rt.block_on(store.timeline(&tenant(), &conversation, query));
            black_box(page.unwrap().entries.len())
        })
    });
    let latencies = (0..20_000)
        .map(|i| {
            let (conversation, query) = query(i);
            let start = Instant::now();
            let page = rt.block_on(store.timeline(&tenant(), &conversation, query));
            let elapsed = start.elapsed();
            assert_eq!(page.unwrap().entries.len(), 50);
            elapsed
        })
        .collect();
    percentiles("embedded/page_of_50 (timed loop)", latencies);
}

fn batch_of_1000(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("embedded/batch_of_1000");
    group.throughput(Throughput::Elements(EVENTS_PER_BATCH));
    group.measurement_time(Duration::from_secs(8));
    for sync_batches in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), sync_batches);
        let name = if sync_batches { "synced" } else { "buffered" };
        let mut k = 0;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    k += 1;
                    // New conversations each time: every list entry is an insert.
                    batch(k * CONVERSATIONS_PER_BATCH, 0, k)
                },
                |batch| rt.block_on(store.apply(&batch)).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        // Sustained, on a fresh store so that no compaction debt of the runs above is paid
        // here: 300 batches appending to the same 100 conversations, so summaries replace
        // summaries and list entries move, as in a live projection.
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), sync_batches);
        let batches: Vec<_> = (0..300)
            .map(|k| batch(u64::MAX / 2, k * EVENTS_PER_CONVERSATION, 1_000_000 + k))
            .collect();
        let (start, cpu_start) = (Instant::now(), process_cpu_seconds());
        for batch in &batches {
            rt.block_on(store.apply(batch)).unwrap();
        }
        let elapsed = start.elapsed();
        let cpu = process_cpu_seconds()
            .zip(cpu_start)
            .map(|(end, start)| end - start);
        let events = batches.len() as f64 * EVENTS_PER_BATCH as f64;
        eprintln!(
            "embedded/batch_of_1000/{name} sustained: {} events in {elapsed:?} = {:.0} events/s, \
             {} CPU-µs per event (all threads)",
            events,
            events / elapsed.as_secs_f64(),
            cpu.map_or("?".to_owned(), |cpu| format!("{:.1}", cpu * 1e6 / events)),
        );
    }
    group.finish();
}

criterion_group!(benches, page_of_50, batch_of_1000);
criterion_main!(benches);
