//! Test helper for `tests/crash.rs`: appends to an embedded log forever and
//! prints each acknowledged record, until it is killed.
//!
//! Usage: `switchboard-log-crash-writer <data dir> <run id>`. Each of 8
//! writers appends to its own key `k<w>` values `<run>:<w>:<i>` in batches of
//! 1–3 records, and after each acknowledgement prints, per record,
//! `ack <key> <value> <partition> <offset>`.

use std::io::Write;

use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{AppendOptions, EventLog, NewRecord, TopicSpec};

const TOPIC: &str = "crash";

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(run)) = (args.next(), args.next()) else {
        eprintln!("usage: switchboard-log-crash-writer <data dir> <run id>");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let log = EmbeddedLog::open(EmbeddedConfig::new(dir)).expect("open log");
        log.create_topic(&TopicSpec::new(TOPIC, 4))
            .await
            .expect("create topic");
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let log = log.clone();
                let run = run.clone();
                tokio::spawn(async move { write_forever(&log, &run, w).await })
            })
            .collect();
        for writer in writers {
            writer.await.expect("writer task");
        }
    });
}

async fn write_forever(log: &EmbeddedLog, run: &str, writer: usize) {
    let key = format!("k{writer}");
    let mut i = 0usize;
    loop {
        let size = 1 + (i % 3);
        let values: Vec<String> = (i..i + size)
            .map(|n| format!("{run}:{writer}:{n}"))
            .collect();
        let batch = values
            .iter()
            .map(|v| NewRecord::new(key.as_str(), v.as_str()).with_header("writer", key.as_str()))
            .collect();
        let positions = log
            .append(TOPIC, batch, &AppendOptions::default())
            .await
            .expect("append");
        let mut out = std::io::stdout().lock();
        for (value, position) in values.iter().zip(positions) {
            writeln!(
                out,
                "ack {key} {value} {} {}",
                position.partition, position.offset
            )
            .expect("stdout");
        }
        out.flush().expect("stdout");
        i += size;
    }
}
