//! Load generator for the event log. Prints one line per measurement.
//!
//! ```text
//! logbench fsync   [--dir D] [--seconds S]
//! logbench append  [--dir D] [--seconds S] [--appenders 1,16,256] [--partitions 1] [--durability always|never]
//! logbench latency [--dir D] [--seconds S] [--rate 10000] [--durability always|never]
//! logbench kafka   --bootstrap HOST:PORT [--records 200000] [--appenders 256]
//! ```
//! Records are 200-byte values. `--dir` must be on the disk under test.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use switchboard_log::embedded::{Durability, EmbeddedConfig, EmbeddedLog};
use switchboard_log::kafka::{KafkaConfig, KafkaLog};
use switchboard_log::{AppendOptions, EventLog, NewRecord, StartAt, TopicSpec};

const VALUE_BYTES: usize = 200;

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let mut flags = HashMap::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        flags.insert(flag.trim_start_matches("--").to_owned(), value);
    }
    let flag = |name: &str, default: &str| {
        flags
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let dir = PathBuf::from(flag("dir", "target/logbench-data"));
    let seconds = Duration::from_secs_f64(flag("seconds", "5").parse().expect("--seconds"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match command.as_str() {
        "fsync" => fsync(&dir, seconds),
        "append" => {
            let partitions = flag("partitions", "1").parse().expect("--partitions");
            let durability = durability(&flag("durability", "always"));
            for appenders in flag("appenders", "1,16,256").split(',') {
                let appenders = appenders.parse().expect("--appenders");
                runtime.block_on(append(&dir, seconds, appenders, partitions, durability));
            }
        }
        "latency" => {
            let durability = durability(&flag("durability", "always"));
            let rate = flag("rate", "10000").parse().expect("--rate");
            runtime.block_on(latency(&dir, seconds, rate, durability));
        }
        "kafka" => runtime.block_on(kafka(
            &flags
                .get("bootstrap")
                .cloned()
                .expect("--bootstrap HOST:PORT"),
            flag("records", "200000").parse().expect("--records"),
            flag("appenders", "256").parse().expect("--appenders"),
        )),
        _ => {
            eprintln!("usage: logbench fsync|append|latency|kafka [--flag value]...");
            std::process::exit(2);
        }
    }
}

fn durability(name: &str) -> Durability {
    match name {
        "always" => Durability::Always,
        "never" => Durability::Never,
        other => panic!("--durability always|never, not {other}"),
    }
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("bench directory");
    path
}

/// The disk's own rate: append 200 bytes and fdatasync, one at a time.
fn fsync(dir: &Path, seconds: Duration) {
    let path = fresh(dir, "fsync").join("file");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open");
    let record = [7u8; VALUE_BYTES];
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < seconds {
        file.write_all(&record).expect("write");
        file.sync_data().expect("fdatasync");
        count += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fsync: {:.0} write+fdatasync/s of {VALUE_BYTES} bytes ({count} in {secs:.1}s)",
        count as f64 / secs
    );
}

async fn append(
    dir: &Path,
    seconds: Duration,
    appenders: usize,
    partitions: u32,
    durability: Durability,
) {
    let mut config = EmbeddedConfig::new(fresh(dir, "append"));
    config.durability = durability;
    let log = EmbeddedLog::open(config).expect("open log");
    log.create_topic(&TopicSpec::new("bench", partitions))
        .await
        .expect("topic");
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + seconds;
    let tasks: Vec<_> = (0..appenders)
        .map(|i| {
            let log = log.clone();
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let key = format!("conversation-{i}");
                while Instant::now() < deadline {
                    let record = NewRecord::new(key.as_str(), vec![1u8; VALUE_BYTES]);
                    log.append("bench", vec![record], &AppendOptions::default())
                        .await
                        .expect("append");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("appender");
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = log.stats();
    let appends = done.load(Ordering::Relaxed);
    println!(
        "append: {appenders} appenders, {partitions} partition(s), fsync={durability:?}: {:.0} appends/s, {} ({} fsyncs/s)",
        appends as f64 / secs,
        per_fsync(stats.records, stats.fsyncs),
        (stats.fsyncs as f64 / secs) as u64,
    );
}

fn per_fsync(records: u64, fsyncs: u64) -> String {
    if fsyncs == 0 {
        "no fsyncs".to_owned()
    } else {
        format!("{:.1} appends/fsync", records as f64 / fsyncs as f64)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Appends at a fixed rate while one tailer follows the partition; a record
/// carries its append time, so the tailer measures append -> delivery, and
/// the acknowledgement times give ack -> delivery (what tailing adds).
async fn latency(dir: &Path, seconds: Duration, rate: u64, durability: Durability) {
    let mut config = EmbeddedConfig::new(fresh(dir, "latency"));
    config.durability = durability;
    let log = EmbeddedLog::open(config).expect("open log");
    log.create_topic(&TopicSpec::new("bench", 1))
        .await
        .expect("topic");
    let epoch = Instant::now();
    let total = (rate as f64 * seconds.as_secs_f64()) as usize;
    let mut tail = log.tail("bench", 0, StartAt::Latest).await.expect("tail");
    let tailer = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(total);
        while seen.len() < total {
            let record = tail.next().await.expect("tail");
            let sent = u64::from_le_bytes(record.value[..8].try_into().expect("8 bytes"));
            seen.push((record.offset, Duration::from_nanos(sent), epoch.elapsed()));
        }
        seen
    });
    let acks = Arc::new(std::sync::Mutex::new(HashMap::with_capacity(total)));
    let per_tick = (rate / 1000).max(1) as usize;
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    let mut sent = 0usize;
    let mut pending = Vec::new();
    while sent < total {
        interval.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let log = log.clone();
            let acks = Arc::clone(&acks);
            let mut value = vec![0u8; VALUE_BYTES];
            pending.push(tokio::spawn(async move {
                let at = epoch.elapsed();
                value[..8].copy_from_slice(&(at.as_nanos() as u64).to_le_bytes());
                let record = NewRecord::new(format!("conversation-{sent}"), value);
                let positions = log
                    .append("bench", vec![record], &AppendOptions::default())
                    .await
                    .expect("append");
                acks.lock()
                    .expect("acks")
                    .insert(positions[0].offset, (at, epoch.elapsed()));
            }));
            sent += 1;
        }
    }
    for task in pending {
        task.await.expect("appender");
    }
    let seen = tailer.await.expect("tailer");
    let acks = std::mem::take(&mut *acks.lock().expect("acks"));
    let mut delivery: Vec<Duration> = seen.iter().map(|(_, sent, got)| *got - *sent).collect();
    let mut after_ack: Vec<Duration> = seen
        .iter()
        .map(|(offset, _, got)| got.saturating_sub(acks[offset].1))
        .collect();
    let mut ack: Vec<Duration> = acks.values().map(|(at, acked)| *acked - *at).collect();
    for v in [&mut delivery, &mut after_ack, &mut ack] {
        v.sort();
    }
    let stats = log.stats();
    println!(
        "latency: {rate} appends/s for {:.0}s, fsync={durability:?}: append->tailer p50 {:?} p99 {:?}; append->ack p50 {:?} p99 {:?}; ack->tailer p50 {:?} p99 {:?}; {}",
        seconds.as_secs_f64(),
        percentile(&delivery, 0.50),
        percentile(&delivery, 0.99),
        percentile(&ack, 0.50),
        percentile(&ack, 0.99),
        percentile(&after_ack, 0.50),
        percentile(&after_ack, 0.99),
        per_fsync(stats.records, stats.fsyncs),
    );
}

/// Our adapter against a plain librdkafka producer with the same settings,
/// the same concurrency and the same records, alternating three times (the
/// first round also warms up the broker).
async fn kafka(bootstrap: &str, records: usize, appenders: usize) {
    let config = KafkaConfig::new(bootstrap);
    let log = KafkaLog::connect(config.clone()).expect("kafka clients");
    log.create_topic(&TopicSpec::new("bench", 4))
        .await
        .expect("topic");
    let plain: FutureProducer = config.producer().create().expect("plain producer");
    let per_task = records / appenders;
    for round in 1..=3 {
        let start = Instant::now();
        let tasks: Vec<_> = (0..appenders)
            .map(|i| {
                let plain = plain.clone();
                tokio::spawn(async move {
                    let key = format!("conversation-{i}");
                    let value = vec![1u8; VALUE_BYTES];
                    for _ in 0..per_task {
                        let record = FutureRecord::to("bench").key(&key).payload(&value);
                        let delivery = plain
                            .send_result(record)
                            .map_err(|(e, _)| e)
                            .expect("enqueue");
                        delivery
                            .await
                            .expect("delivery")
                            .map_err(|(e, _)| e)
                            .expect("produce");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("plain appender");
        }
        let plain_rate = (per_task * appenders) as f64 / start.elapsed().as_secs_f64();

        let start = Instant::now();
        let tasks: Vec<_> = (0..appenders)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    let key = format!("conversation-{i}");
                    for _ in 0..per_task {
                        let record = NewRecord::new(key.as_str(), vec![1u8; VALUE_BYTES]);
                        log.append("bench", vec![record], &AppendOptions::default())
                            .await
                            .expect("append");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("adapter appender");
        }
        let adapter_rate = (per_task * appenders) as f64 / start.elapsed().as_secs_f64();
        println!(
            "kafka round {round}: {appenders} appenders x {per_task} records: plain librdkafka {plain_rate:.0}/s, adapter {adapter_rate:.0}/s, overhead {:.1}%",
            (1.0 - adapter_rate / plain_rate) * 100.0
        );
    }
}
