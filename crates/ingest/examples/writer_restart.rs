//! Restart-to-ready of the writer against the size of the log, and its memory over a long run.
//!
//! `cargo run --release -p switchboard-ingest --example writer_restart -- <dir> <messages> [conversations]`
//!
//! Fills an embedded log in `<dir>/log` (with the embedded store in `<dir>/store` as the
//! writer's cache) until it holds `<messages>` messages over `[conversations]` conversations
//! (default 100,000; data keys in memory), printing the process's RSS as it goes; then stops the writer and times
//! `Writer::start` twice: with the snapshots (the store as cache) and without (every partition
//! folded from its start). Run it again with a larger count to grow the same log.

#![allow(clippy::print_stdout)] // a load generator's report is its output

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::id::{
    ClientMsgId, ConversationId, CorrelationId, CustomerId, PrincipalId, TenantId,
};
use switchboard_events::personal::DataKey;
use switchboard_events::principal::{Principal, Role};
use switchboard_ingest::api::CommandHandler;
use switchboard_ingest::command::{OpenConversation, PostMessage};
use switchboard_ingest::writer::cache::StateCache;
use switchboard_ingest::writer::keys::{BoxFuture, DataKeys, InMemoryKeys, StoreKeys};
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_ingest::{CommandError, ConversationCommand};
use switchboard_log::EventLog;
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};

const SENDERS: u64 = 256;

/// Data keys in memory (a synced store write per new customer would measure fsync), the
/// store as the writer's cache.
#[derive(Debug)]
struct LoadKeys {
    keys: InMemoryKeys,
    store: StoreKeys,
}

impl DataKeys for LoadKeys {
    fn key<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<Option<DataKey>, CommandError>> {
        self.keys.key(tenant, customer)
    }

    fn destroy<'a>(
        &'a self,
        tenant: &'a TenantId,
        customer: &'a CustomerId,
    ) -> BoxFuture<'a, Result<(), CommandError>> {
        self.keys.destroy(tenant, customer)
    }

    fn state_cache(&self) -> Option<&dyn StateCache> {
        self.store.state_cache()
    }
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn customer(i: u64) -> Principal {
    Principal::new(
        TenantId::new("loadtest").expect("valid id"),
        Role::Customer,
        PrincipalId::new(format!("cust-{i}")).expect("valid id"),
    )
}

fn open(i: u64) -> ConversationCommand {
    ConversationCommand::Open(OpenConversation {
        customer_id: CustomerId::new(format!("cust-{i}")).expect("valid id"),
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: Default::default(),
        customer_name: None,
        customer_email: None,
    })
}

async fn records(log: &dyn EventLog) -> Result<u64, Box<dyn std::error::Error>> {
    let topic = switchboard_events::Topic::Conversations.name();
    let mut n = 0;
    for p in 0..log.partitions(topic).await.unwrap_or(0) {
        let range = log.offsets(topic, p).await?;
        n += range.end - range.start;
    }
    Ok(n)
}

async fn send(writer: &Writer, i: u64, command: ConversationCommand) -> Result<(), CommandError> {
    let id = ConversationId::new(format!("conv-{i}")).expect("valid id");
    let correlation = CorrelationId(uuid::Uuid::now_v7());
    writer
        .conversation(customer(i), Some(id), command, correlation)
        .await
        .map(drop)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().ok_or("usage: <dir> <messages>")?);
    let messages: u64 = args.get(1).ok_or("usage: <dir> <messages>")?.parse()?;
    let conversations: u64 = args.get(2).map_or(Ok(100_000), |c| c.parse())?;
    let open_log = || EmbeddedLog::open(EmbeddedConfig::new(dir.join("log")));
    let store = Arc::new(EmbeddedStore::open(
        dir.join("store"),
        EmbeddedOptions::default(),
    )?);
    let cached = || {
        Arc::new(LoadKeys {
            keys: InMemoryKeys::default(),
            store: StoreKeys(store.clone()),
        })
    };

    let log = Arc::new(open_log()?);
    let have = records(log.as_ref()).await?;
    if have < messages {
        let writer = Arc::new(Writer::start(log.clone(), cached(), WriterConfig::default()).await?);
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(have));
        let mut tasks = Vec::new();
        for _ in 0..SENDERS {
            let (writer, next) = (writer.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= messages {
                        return Ok::<_, CommandError>(());
                    }
                    let i = n % conversations;
                    if n < conversations {
                        send(&writer, i, open(i)).await?;
                        continue;
                    }
                    let post = ConversationCommand::PostMessage(PostMessage {
                        client_msg_id: ClientMsgId::new(format!("m-{n}")).expect("valid id"),
                        body: format!("message {n} of the load"),
                        attachments: vec![],
                        private_note: false,
                    });
                    send(&writer, i, post).await?;
                    if n % 250_000 == 0 {
                        println!(
                            "{n:>10} records  {:>6.1}s  rss {} MiB",
                            started.elapsed().as_secs_f64(),
                            rss_mib()
                        );
                    }
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        let rate = (messages - have) as f64 / started.elapsed().as_secs_f64();
        println!(
            "filled to {messages} records at {rate:.0}/s; rss {} MiB",
            rss_mib()
        );
        drop(writer);
        // The shards write their last snapshot as they stop.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    log.shutdown();
    drop(log);

    let log = Arc::new(open_log()?);
    println!("log: {} records", records(log.as_ref()).await?);
    let started = Instant::now();
    let writer = Writer::start(log.clone(), cached(), WriterConfig::default()).await?;
    println!(
        "ready from snapshots in {} ms (rss {} MiB)",
        started.elapsed().as_millis(),
        rss_mib()
    );
    drop(writer);
    tokio::time::sleep(Duration::from_secs(1)).await;

    if std::env::var("FULL_FOLD").is_ok() {
        let started = Instant::now();
        let keys = Arc::new(InMemoryKeys::default());
        let writer = Writer::start(log.clone(), keys, WriterConfig::default()).await?;
        println!(
            "ready folding the whole log in {} ms (rss {} MiB)",
            started.elapsed().as_millis(),
            rss_mib()
        );
        drop(writer);
    }
    log.shutdown();
    Ok(())
}
