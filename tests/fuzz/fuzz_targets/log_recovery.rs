//! Any bytes as the segment file of a one-partition topic of the embedded log: opening must
//! recover or refuse with an error, never panic, hang or allocate without bound, and what it
//! serves after opening must read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_log::EventLog;
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let partition = dir.path().join("topics").join("t").join("0");
    std::fs::create_dir_all(&partition).expect("the partition directory");
    std::fs::write(dir.path().join("topics/t/topic.meta"), "partitions=1\n").expect("meta");
    std::fs::write(partition.join("00000000000000000000.log"), data).expect("the segment");
    let Ok(log) = EmbeddedLog::open(EmbeddedConfig::new(dir.path().to_owned())) else {
        return;
    };
    let runtime = tokio_runtime();
    runtime.block_on(async {
        let mut from = 0;
        loop {
            match log.read("t", 0, from, 64).await {
                Ok(records) if !records.is_empty() => from += records.len() as u64,
                _ => break,
            }
        }
    });
    log.shutdown();
});

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}
