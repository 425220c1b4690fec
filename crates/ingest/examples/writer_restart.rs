//! Restart-to-ready of the writer against the size of the log, and its memory over a long run.
//!
//! `cargo run --release -p switchboard-ingest --example writer_restart -- <dir> <messages> [conversations] [--direct]`
//!
//! Fills an embedded log in `<dir>/log` (with the embedded store in `<dir>/store` as the
//! writer's cache) until it holds `<messages>` messages over `[conversations]` conversations
//! (default 100,000; data keys in memory), printing the process's RSS as it goes; then stops the writer and times
//! `Writer::start` twice: with the snapshots (the store as cache) and without (every partition
//! folded from its start). Run it again with a larger count to grow the same log.
//!
//! `--direct` fills an empty log without the writer, fast enough for ten million records:
//! each conversation's events (opened, then messages) are stamped and chained here and
//! appended in large batches without fsync, as the writer would have written them. No
//! snapshot exists then, so the first start folds the whole log (and snapshots it as it
//! goes and when it stops); the second start is the restart from snapshots.

#![allow(clippy::print_stdout)] // a load generator's report is its output

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchboard_events::conversation::{
    Channel, ConversationOpened, ConversationPayload, MessagePosted, Priority,
};
use switchboard_events::envelope::{Actor, ActorKind};
use switchboard_events::id::{
    ClientMsgId, ConversationId, CorrelationId, CustomerId, MessageId, PrincipalId, TenantId,
};
use switchboard_events::personal::{DataKey, Sealed};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{ChainHash, Seq, Timestamp, Topic};
use switchboard_ingest::api::CommandHandler;
use switchboard_ingest::command::{OpenConversation, PostMessage};
use switchboard_ingest::conversation::stamp::{Cause, stamp_after};
use switchboard_ingest::writer::cache::StateCache;
use switchboard_ingest::writer::keys::{BoxFuture, DataKeys, InMemoryKeys, StoreKeys};
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_ingest::{CommandError, ConversationCommand};
use switchboard_log::embedded::{Durability, EmbeddedConfig, EmbeddedLog};
use switchboard_log::{AppendOptions, EventLog, NewRecord, TopicSpec};
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

/// The 200-byte body of every message of the direct fill.
const BODY: &str = "Hello, my order #48151623 has not arrived yet and the tracking page says it left the warehouse nine days ago. Could you check where it is and whether it can still arrive this week? Thanks a lot, Sam.";

/// Records appended per call by the direct fill.
const BATCH: usize = 20_000;

/// Appends `messages` records to an empty log without the writer: per conversation its
/// opening and then its messages, stamped and chained by the writer's own `stamp`, with the
/// conversations interleaved (one round of every open conversation after another).
async fn fill_direct(
    dir: &std::path::Path,
    messages: u64,
    conversations: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = EmbeddedConfig::new(dir.join("log"));
    config.durability = Durability::Never;
    let log = EmbeddedLog::open(config)?;
    let topic = Topic::Conversations.name();
    let partitions = WriterConfig::default().conversation_partitions;
    log.create_topic(&TopicSpec::new(topic, partitions)).await?;
    let tenant = TenantId::new("loadtest")?;
    let key = DataKey::from_bytes([7; 32]);
    // (seq, hash) of every conversation's last event.
    let mut heads = vec![(Seq(0), ChainHash::GENESIS); conversations as usize];
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..messages {
        let i = n % conversations;
        let conversation = ConversationId::new(format!("conv-{i}"))?;
        let customer = CustomerId::new(format!("cust-{i}"))?;
        let payload: ConversationPayload = if heads[i as usize].0 == Seq(0) {
            ConversationOpened {
                customer_id: customer.clone(),
                channel: Channel::Web,
                priority: Priority::Normal,
                team_id: None,
                required_skills: vec![],
                vip: false,
                attributes: Default::default(),
                customer_name: None,
                customer_email: None,
            }
            .into()
        } else {
            MessagePosted {
                message_id: MessageId::new(format!("msg-{n}"))?,
                client_msg_id: ClientMsgId::new(format!("m-{n}"))?,
                body: Sealed::seal(&key, &tenant, &customer, BODY)?,
                attachments: vec![],
                private_note: false,
            }
            .into()
        };
        let now = Timestamp::now();
        let cause = Cause {
            actor: Actor::new(ActorKind::Customer, customer.as_str())?,
            correlation_id: CorrelationId(uuid::Uuid::now_v7()),
            causation_id: None,
            now,
        };
        let mut stamped = stamp_after(
            heads[i as usize],
            &tenant,
            &conversation,
            &cause,
            vec![payload],
        )?;
        let (event, frame) = stamped.pop().ok_or("stamp made no event")?;
        heads[i as usize] = (event.envelope.seq, event.envelope.hash);
        batch.push(
            NewRecord::new(conversation.as_str(), frame).with_timestamp_ms(now.as_micros() / 1000),
        );
        if batch.len() == BATCH || n + 1 == messages {
            let records = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            log.append(topic, records, &AppendOptions::default())
                .await?;
        }
        if (n + 1) % 1_000_000 == 0 {
            println!(
                "{:>10} records  {:>6.1}s",
                n + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    println!("filled directly to {messages} records at {rate:.0}/s");
    log.shutdown();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let direct = args.iter().any(|a| a == "--direct");
    args.retain(|a| a != "--direct");
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

    if direct {
        let log = open_log()?;
        let have = records(&log).await?;
        log.shutdown();
        drop(log);
        if have > 0 {
            return Err(format!("--direct fills an empty log; {dir:?} has {have} records").into());
        }
        fill_direct(&dir, messages, conversations).await?;
        let log = Arc::new(open_log()?);
        let started = Instant::now();
        let writer = Writer::start(log.clone(), cached(), WriterConfig::default()).await?;
        println!(
            "first start, no snapshot: the whole log folded in {} ms (rss {} MiB)",
            started.elapsed().as_millis(),
            rss_mib()
        );
        drop(writer);
        // The shards write their last snapshot as they stop.
        tokio::time::sleep(Duration::from_secs(3)).await;
        log.shutdown();
    }

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
