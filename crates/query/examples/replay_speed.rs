//! Replay speed to a file: a tenant's every event replayed from the hot store, written as
//! NDJSON and as an Avro object container file, in events per second end to end (store reads,
//! decoding, encoding, the file write).
//!
//! ```sh
//! cargo run --release -p switchboard-query --example replay_speed -- [conversations] [events each]
//! ```

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use switchboard_events::Timestamp;
use switchboard_events::principal::Role;
use switchboard_query::export::{Encoder, Format};
use switchboard_query::{CacheConfig, Purpose, QueryService, Scope};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let conversations = args.first().copied().unwrap_or(2_000);
    let length = args.get(1).copied().unwrap_or(100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let populated = Instant::now();
        let store = support::populate(&dir.path().join("store"), conversations, length).await;
        eprintln!(
            "populated {conversations} conversations of {length} events in {:.1}s",
            populated.elapsed().as_secs_f64()
        );
        let service = Arc::new(QueryService::new(store, support::verifier(), &CacheConfig::default()));
        let auditor = service.authenticate(Some(format!("Bearer {}", support::token(Role::Auditor)).as_bytes())).unwrap();
        for format in [Format::Ndjson, Format::Avro] {
            let path = dir.path().join("replay.out");
            let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
            let started = Instant::now();
            let scope = Scope::Tenant {
                from: Timestamp(i64::MIN + 1),
                to: Timestamp(i64::MAX),
            };
            let mut replay = service.replay(&auditor, scope, Purpose::Export).await.unwrap();
            let mut encoder = Encoder::new(format).unwrap();
            let mut events = 0u64;
            while let Some(chunk) = replay.recv().await {
                let chunk = chunk.unwrap();
                for frame in &chunk.frames {
                    encoder.push(&chunk.conversation, frame).unwrap();
                }
                events += chunk.frames.len() as u64;
                file.write_all(&encoder.take().unwrap()).unwrap();
            }
            file.write_all(&encoder.take().unwrap()).unwrap();
            file.flush().unwrap();
            let elapsed = started.elapsed();
            let bytes = std::fs::metadata(&path).unwrap().len();
            eprintln!(
                "replay to a file as {format:?}: {events} events in {:.2}s = {:.0} events/s, {:.1} MB",
                elapsed.as_secs_f64(),
                events as f64 / elapsed.as_secs_f64(),
                bytes as f64 / 1e6
            );
        }
    });
}
