//! Picks the embedded engine: redb against fjall on the store's real access pattern.
//!
//! A projected batch is 1,000 timeline rows of ~400 bytes (10 events in each of 100
//! conversations), 100 summary rows and one checkpoint, committed atomically. A page is 50
//! timeline rows read backwards from a random seq of a 2,000-event conversation.
//! `cargo bench -p switchboard-store --bench engine_choice`

use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const EVENTS_PER_BATCH: u64 = 1_000;
const CONVERSATIONS_PER_BATCH: u64 = 100;
const ROW: [u8; 400] = [0xab; 400];
const SUMMARY: [u8; 200] = [0xcd; 200];

fn timeline_key(conversation: u64, seq: u64) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(b"acme\0cv-");
    key[8..16].copy_from_slice(&conversation.to_be_bytes());
    key[16..24].copy_from_slice(&seq.to_be_bytes());
    key
}

/// A batch: rows for conversations `base..base + 100`, each getting 10 seqs after `after`.
fn batch(base: u64, after: u64) -> impl Iterator<Item = ([u8; 32], u64)> {
    (0..EVENTS_PER_BATCH).map(move |i| {
        let conversation = base + i % CONVERSATIONS_PER_BATCH;
        let seq = after + i / CONVERSATIONS_PER_BATCH + 1;
        (timeline_key(conversation, seq), conversation)
    })
}

trait Engine {
    fn write_batch(&self, base: u64, after: u64);
    fn read_page(&self, conversation: u64, before: u64) -> usize;
}

mod redb_engine {
    use redb::{Database, Durability, TableDefinition};

    use super::*;

    const TIMELINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("timeline");
    const SUMMARIES: TableDefinition<u64, &[u8]> = TableDefinition::new("summaries");
    const CHECKPOINTS: TableDefinition<u32, u64> = TableDefinition::new("checkpoints");

    pub struct Redb(pub Database, pub Durability);

    impl Engine for Redb {
        fn write_batch(&self, base: u64, after: u64) {
            let mut tx = self.0.begin_write().unwrap();
            tx.set_durability(self.1);
            {
                let mut timeline = tx.open_table(TIMELINE).unwrap();
                let mut summaries = tx.open_table(SUMMARIES).unwrap();
                for (key, conversation) in batch(base, after) {
                    timeline.insert(&key[..], &ROW[..]).unwrap();
                    summaries.insert(conversation, &SUMMARY[..]).unwrap();
                }
                tx.open_table(CHECKPOINTS)
                    .unwrap()
                    .insert(0, base + after)
                    .unwrap();
            }
            tx.commit().unwrap();
        }

        fn read_page(&self, conversation: u64, before: u64) -> usize {
            let tx = self.0.begin_read().unwrap();
            let table = tx.open_table(TIMELINE).unwrap();
            let range: Range<&[u8]> =
                &timeline_key(conversation, 0)[..]..&timeline_key(conversation, before)[..];
            let mut bytes = 0;
            for row in table.range(range).unwrap().rev().take(50) {
                let (_, value) = row.unwrap();
                bytes += value.value().len();
            }
            bytes
        }
    }
}

mod fjall_engine {
    use fjall::{Keyspace, PartitionHandle, PersistMode};

    use super::*;

    pub struct Fjall {
        pub keyspace: Keyspace,
        pub timeline: PartitionHandle,
        pub summaries: PartitionHandle,
        pub checkpoints: PartitionHandle,
        pub durability: Option<PersistMode>,
    }

    impl Engine for Fjall {
        fn write_batch(&self, base: u64, after: u64) {
            let mut batch_ = self.keyspace.batch().durability(self.durability);
            for (key, conversation) in batch(base, after) {
                batch_.insert(&self.timeline, &key[..], &ROW[..]);
                batch_.insert(&self.summaries, conversation.to_be_bytes(), &SUMMARY[..]);
            }
            batch_.insert(&self.checkpoints, [0u8; 4], (base + after).to_be_bytes());
            batch_.commit().unwrap();
        }

        fn read_page(&self, conversation: u64, before: u64) -> usize {
            let range = timeline_key(conversation, 0)..timeline_key(conversation, before);
            let mut bytes = 0;
            for row in self.timeline.range(range).rev().take(50) {
                let (_, value) = row.unwrap();
                bytes += value.len();
            }
            bytes
        }
    }
}

fn engines(dir: &std::path::Path) -> Vec<(String, Box<dyn Engine>)> {
    let mut engines: Vec<(String, Box<dyn Engine>)> = Vec::new();
    for (name, durability) in [
        ("redb/immediate", redb::Durability::Immediate),
        ("redb/eventual", redb::Durability::Eventual),
    ] {
        let db = redb::Database::create(dir.join(name.replace('/', "-"))).unwrap();
        engines.push((name.to_owned(), Box::new(redb_engine::Redb(db, durability))));
    }
    for (name, durability) in [
        ("fjall/sync", Some(fjall::PersistMode::SyncAll)),
        ("fjall/buffered", None),
    ] {
        let keyspace = fjall::Config::new(dir.join(name.replace('/', "-")))
            .open()
            .unwrap();
        let open = |p: &str| keyspace.open_partition(p, Default::default()).unwrap();
        let engine = fjall_engine::Fjall {
            timeline: open("timeline"),
            summaries: open("summaries"),
            checkpoints: open("checkpoints"),
            keyspace: keyspace.clone(),
            durability,
        };
        engines.push((name.to_owned(), Box::new(engine)));
    }
    engines
}

const LONG: u64 = 1 << 40;

/// Seeds 100 conversations of 2,000 events each, from `LONG` on, for the page reads.
fn seed_long_conversations(engine: &dyn Engine) {
    for n in 0..200 {
        engine.write_batch(LONG, n * 10);
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engines = engines(dir.path());
    let mut group = c.benchmark_group("engine/batch_of_1000");
    group.throughput(Throughput::Elements(EVENTS_PER_BATCH));
    group.measurement_time(Duration::from_secs(4));
    for (name, engine) in &engines {
        let mut n = 0;
        group.bench_function(name.as_str(), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    n
                },
                |n| engine.write_batch(n * CONVERSATIONS_PER_BATCH, 0),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("engine/page_of_50");
    for (name, engine) in &engines {
        seed_long_conversations(engine.as_ref());
        group.bench_function(name.as_str(), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                let before = 51 + (i * 7919) % 1_950;
                black_box(engine.read_page(LONG + i % 100, before))
            })
        });
        // p99 over 20,000 pages: criterion reports means and medians only.
        let mut latencies: Vec<Duration> = (0..20_000u64)
            .map(|i| {
                let start = Instant::now();
                let before = 51 + (i * 7919) % 1_950;
                black_box(engine.read_page(LONG + i % 100, before));
                start.elapsed()
            })
            .collect();
        latencies.sort();
        eprintln!(
            "{name}: page_of_50 p50 {:?} p99 {:?} max {:?}",
            latencies[latencies.len() / 2],
            latencies[latencies.len() * 99 / 100],
            latencies[latencies.len() - 1]
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
