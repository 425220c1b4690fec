//! Projector throughput: fills an embedded log with conversations (every kind of event, the
//! sample conversation re-keyed), then folds the whole log into an empty embedded store with the
//! projector's engine, and reports events/s.
//!
//! `cargo run --release -p switchboard-projector --example project_load -- [conversations] [partitions]`

use std::sync::Arc;
use std::time::Instant;

use switchboard_events::id::ConversationId;
use switchboard_events::{ChainHash, Topic, fixtures};
use switchboard_log::embedded::{Durability, EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, NewRecord, TopicSpec};
use switchboard_projector::rebuild;
use switchboard_store::ReadModels;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let conversations = args.first().copied().unwrap_or(20_000);
    let partitions = args.get(1).copied().unwrap_or(4) as u32;
    let dir = tempfile::tempdir()?;
    let mut config = EmbeddedConfig::new(dir.path().join("log"));
    config.durability = Durability::Never;
    let log = EmbeddedLog::open(config)?;
    log.create_topic(&TopicSpec::new(Topic::Conversations.name(), partitions))
        .await?;
    log.create_topic(&TopicSpec::new(Topic::Agents.name(), 1))
        .await?;

    let sample = fixtures::conversation_history();
    let mut events = 0u64;
    for chunk in (0..conversations).collect::<Vec<_>>().chunks(500) {
        let mut batch = Vec::new();
        for &n in chunk {
            let id = ConversationId::new(format!("conv-{n}"))?;
            let mut prev = ChainHash::GENESIS;
            for (event, _) in &sample {
                let mut event = event.clone();
                event.envelope.conversation_id = id.clone();
                let frame = event.encode_chained(prev)?;
                prev = event.envelope.hash;
                batch.push(NewRecord::new(id.as_str(), frame));
            }
        }
        events += batch.len() as u64;
        log.append(Topic::Conversations.name(), batch, &Default::default())
            .await?;
    }

    let store: Arc<dyn ReadModels> = Arc::new(EmbeddedStore::open(
        dir.path().join("store"),
        EmbeddedOptions::default(),
    )?);
    let started = Instant::now();
    let report = rebuild(&log, store, "bench", 4096).await?;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(report.records, events);
    eprintln!(
        "conversations={conversations} partitions={partitions} events={events} seconds={elapsed:.2} rate={:.0} events/s",
        events as f64 / elapsed
    );
    log.shutdown();
    Ok(())
}
