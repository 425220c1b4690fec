//! Crash safety of the embedded log: a child process appends and reports
//! acknowledgements; we `kill -9` it at random moments, reopen the log and
//! check that every acknowledged record is there, in order, exactly once,
//! and that everything served passes its checksum. Every fifth kill also
//! leaves a torn frame behind, which recovery must cut off.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, LogError, Record};

const KILLS: u64 = 60;
const TOPIC: &str = "crash";

/// A small deterministic generator, so a failing run can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    key: String,
    value: String,
    partition: u32,
    offset: u64,
}

fn parse(line: &str) -> Ack {
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 5, "malformed ack line {line:?}");
    Ack {
        key: fields[1].to_owned(),
        value: fields[2].to_owned(),
        partition: fields[3].parse().expect("partition"),
        offset: fields[4].parse().expect("offset"),
    }
}

/// Runs the writer until it has acknowledged `acks` records (plus a random
/// pause), kills it with SIGKILL and returns every acknowledgement it printed.
fn run_and_kill(dir: &Path, run: u64, acks: u64, pause: Duration) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-log-crash-writer"))
        .arg(dir)
        .arg(run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the crash writer");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut seen = Vec::new();
    while (seen.len() as u64) < acks {
        match lines.next() {
            Some(line) => seen.push(parse(&line.expect("read ack"))),
            None => panic!("writer exited early: {:?}", child.wait()),
        }
    }
    std::thread::sleep(pause);
    child.kill().expect("kill -9 the writer");
    let status = child.wait().expect("reap the writer");
    assert!(
        !status.success(),
        "the writer was killed, not finished: {status:?}"
    );
    // Acks printed before the kill are acknowledged too.
    seen.extend(lines.map_while(|l| l.ok()).map(|l| parse(&l)));
    seen
}

fn read_all(log: &EmbeddedLog) -> BTreeMap<u32, Vec<Record>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut all = BTreeMap::new();
        for partition in 0..log.partitions(TOPIC).await.unwrap() {
            let range = log.offsets(TOPIC, partition).await.unwrap();
            let mut records: Vec<Record> = Vec::new();
            while (records.len() as u64) < range.end {
                let from = records.len() as u64;
                let more = log
                    .read(TOPIC, partition, from, usize::MAX)
                    .await
                    .unwrap_or_else(|e| panic!("partition {partition} must read cleanly: {e}"));
                assert!(!more.is_empty(), "partition {partition} reads on at {from}");
                records.extend(more);
            }
            assert_eq!(
                records.len() as u64,
                range.end,
                "every offset of partition {partition} reads"
            );
            all.insert(partition, records);
        }
        all
    })
}

fn verify(log: &EmbeddedLog, acked: &[Ack]) {
    let all = read_all(log);
    let mut where_is: HashMap<String, (u32, u64)> = HashMap::new();
    for (partition, records) in &all {
        let mut last_per_key: HashMap<(Vec<u8>, String), u64> = HashMap::new();
        for (i, record) in records.iter().enumerate() {
            assert_eq!(
                record.offset, i as u64,
                "dense offsets in partition {partition}"
            );
            let value = String::from_utf8(record.value.clone()).expect("utf-8 value");
            assert_eq!(
                record.header("writer"),
                Some(record.key.as_slice()),
                "headers intact"
            );
            let previous = where_is.insert(value.clone(), (*partition, record.offset));
            assert!(
                previous.is_none(),
                "{value} is in the log twice: {previous:?} and {partition}/{}",
                record.offset
            );
            // Within one run, a key's values count up in offset order.
            let mut parts = value.split(':');
            let run = parts.next().unwrap().to_owned();
            let n: u64 = parts.nth(1).unwrap().parse().unwrap();
            if let Some(last) = last_per_key.insert((record.key.clone(), run), n) {
                assert!(
                    n > last,
                    "{value} after {last}: out of order in partition {partition}"
                );
            }
        }
    }
    for ack in acked {
        let found = where_is.get(&ack.value);
        assert_eq!(
            found,
            Some(&(ack.partition, ack.offset)),
            "acknowledged {ack:?} is missing or moved"
        );
        let record = &all[&ack.partition][ack.offset as usize];
        assert_eq!(record.key, ack.key.as_bytes());
    }
}

/// Appends `len` bytes of a never-acknowledged frame (a plausible length
/// field, then garbage) to the active segment of a partition.
fn tear_tail(dir: &Path, partition: u32, len: usize) {
    let pdir = dir.join("topics").join(TOPIC).join(partition.to_string());
    let active = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .expect("a segment");
    let mut torn = 120u32.to_le_bytes().to_vec();
    torn.extend((0..len).map(|i| i as u8 ^ 0x5a));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(active)
        .unwrap();
    file.write_all(&torn[..len.min(torn.len())]).unwrap();
}

#[test]
fn acknowledged_records_survive_kill_minus_nine() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (CRASH_SEED={seed} replays it)");
    let mut rng = XorShift(seed);
    let mut acked = Vec::new();
    for run in 0..KILLS {
        let acks = 1 + rng.below(120);
        let pause = Duration::from_micros(rng.below(3000));
        acked.extend(run_and_kill(dir.path(), run, acks, pause));
        if run % 5 == 4 {
            // What a crash in the middle of a write leaves: part of a frame.
            tear_tail(dir.path(), rng.below(4) as u32, 1 + rng.below(40) as usize);
        }
        // Reopening runs recovery; the next writer reopens what it left.
        let log = EmbeddedLog::open(EmbeddedConfig::new(dir.path()))
            .unwrap_or_else(|e| panic!("reopen after kill {run}: {e}"));
        verify(&log, &acked);
    }
    assert!(acked.len() as u64 >= KILLS, "each run acknowledged records");
}

#[test]
fn a_second_process_cannot_open_a_data_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-log-crash-writer"))
        .arg(dir.path())
        .arg("0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the crash writer");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    lines
        .next()
        .expect("the writer acknowledges")
        .expect("read ack");
    let err = EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap_err();
    assert!(
        matches!(&err, LogError::Locked { dir: d } if d == dir.path()),
        "{err}"
    );
    child.kill().expect("kill -9 the writer");
    child.wait().expect("reap the writer");
    EmbeddedLog::open(EmbeddedConfig::new(dir.path())).expect("the lock dies with its process");
}
