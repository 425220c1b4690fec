//! The embedded log against the shared suite, plus its own recovery rules.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::GroupEvent;
use crate::suite;

fn open(dir: &Path) -> EmbeddedLog {
    EmbeddedLog::open(EmbeddedConfig::new(dir)).expect("open embedded log")
}

fn segment_path(dir: &Path, topic: &str, partition: u32, base: u64) -> PathBuf {
    dir.join("topics")
        .join(topic)
        .join(partition.to_string())
        .join(segment::segment_name(base))
}

#[tokio::test]
async fn suite_ordering_per_key_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    suite::ordering_per_key_and_offsets(&open(dir.path())).await;
}

#[tokio::test]
async fn suite_headers_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    suite::headers_and_timestamps(&open(dir.path())).await;
}

#[tokio::test]
async fn suite_tailing() {
    let dir = tempfile::tempdir().unwrap();
    suite::tailing(&open(dir.path())).await;
}

#[tokio::test]
async fn suite_tail_while_appending() {
    let dir = tempfile::tempdir().unwrap();
    suite::tail_while_appending(&open(dir.path())).await;
}

#[tokio::test]
async fn suite_group_commit_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    suite::group_commit_and_resume(&open(dir.path())).await;
}

#[tokio::test]
async fn suite_rebalance_when_a_member_joins() {
    let dir = tempfile::tempdir().unwrap();
    suite::rebalance_when_a_member_joins(&open(dir.path())).await;
}

#[tokio::test]
async fn suite_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    suite::bad_input(&open(dir.path()), 1024 * 1024).await;
    let mut config = EmbeddedConfig::new(dir.path().join("small"));
    config.max_record_bytes = 100;
    suite::bad_input(&EmbeddedLog::open(config).unwrap(), 100).await;
}

#[tokio::test]
async fn suite_claims_fence_older_writers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    suite::claims_fence_older_writers(&log, &log.clone()).await;
}

async fn append_values(log: &EmbeddedLog, topic: &str, values: impl IntoIterator<Item = String>) {
    let batch = values.into_iter().map(|v| NewRecord::new("k", v)).collect();
    log.append(topic, batch, &AppendOptions::default())
        .await
        .unwrap();
}

async fn values(log: &EmbeddedLog, topic: &str) -> Vec<String> {
    let records = log.read(topic, 0, 0, 10_000).await.unwrap();
    records
        .into_iter()
        .map(|r| String::from_utf8(r.value).unwrap())
        .collect()
}

#[tokio::test]
async fn records_topics_and_group_offsets_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
        append_values(&log, "t", (0..5).map(|i| format!("v{i}"))).await;
        let mut member = log.join_group("g", "t", StartAt::Earliest).await.unwrap();
        member.commit(0, 3).await.unwrap();
    }
    let log = open(dir.path());
    assert_eq!(values(&log, "t").await, ["v0", "v1", "v2", "v3", "v4"]);
    let positions = log
        .append(
            "t",
            vec![NewRecord::new("k", "v5")],
            &AppendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(positions[0].offset, 5, "offsets continue after a reopen");
    let mut member = log.join_group("g", "t", StartAt::Earliest).await.unwrap();
    assert_eq!(member.next().await.unwrap(), GroupEvent::Assigned(vec![0]));
    let GroupEvent::Record(record) = member.next().await.unwrap() else {
        panic!("expected a record")
    };
    assert_eq!(
        record.offset, 3,
        "the group resumes at its committed offset"
    );
}

#[tokio::test]
async fn a_read_is_bounded_in_bytes_but_returns_at_least_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
    let big = vec![7u8; 1000 * 1000];
    for _ in 0..6 {
        let record = NewRecord::new("k", big.clone());
        log.append("t", vec![record], &AppendOptions::default())
            .await
            .unwrap();
    }
    let first = log.read("t", 0, 0, 100).await.unwrap();
    assert!((1..6).contains(&first.len()), "{} records", first.len());
    let rest = log.read("t", 0, first.len() as u64, 100).await.unwrap();
    assert_eq!(first.len() + rest.len(), 6);
    assert_eq!(rest.last().unwrap().offset, 5);
}

#[tokio::test]
async fn concurrent_appenders_share_fsyncs_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(&TopicSpec::new("t", 4)).await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let record = NewRecord::new(format!("key-{task}"), format!("{task}:{i}"));
                    log.append("t", vec![record], &AppendOptions::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut total = 0;
    for p in 0..4 {
        total += log.read("t", p, 0, 10_000).await.unwrap().len();
    }
    assert_eq!(total, 64 * 20);
    let stats = log.stats();
    assert_eq!((stats.appends, stats.records), (64 * 20, 64 * 20));
    assert!(
        stats.groups < stats.appends,
        "appends were grouped: {stats:?}"
    );
    assert!(
        stats.fsyncs <= stats.groups * 4,
        "at most one fsync per partition per group: {stats:?}"
    );
}

#[tokio::test]
async fn segments_roll_and_retention_deletes_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmbeddedConfig::new(dir.path());
    config.segment_bytes = 1024;
    let err = EmbeddedLog::open(config.clone()).unwrap_err();
    assert!(matches!(err, LogError::Invalid { .. }), "{err}");
    config.segment_bytes = 4096;
    let log = EmbeddedLog::open(config.clone()).unwrap();
    log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
    for i in 0..40 {
        append_values(&log, "t", [format!("{i:0>400}")]).await;
    }
    let partition = log.topic("t").unwrap().partitions[0].clone();
    let segments = partition.segments().len();
    assert!(segments >= 4, "4 KiB segments roll: {segments}");
    assert_eq!(values(&log, "t").await.len(), 40, "reads span segments");

    let mut tail = log.tail("t", 0, StartAt::Earliest).await.unwrap();
    let retention = Retention {
        max_age: None,
        max_bytes: Some(8192),
    };
    retention::apply_to(&retention, &partition);
    let range = log.offsets("t", 0).await.unwrap();
    assert!(range.start > 0 && range.end == 40, "{range:?}");
    assert!(partition.segments().len() < segments);
    let err = tail.next().await.unwrap_err();
    assert!(
        matches!(err, LogError::OffsetOutOfRange { offset: 0, .. }),
        "a tailer overtaken by retention: {err}"
    );
    let err = log.read("t", 0, 0, 1).await.unwrap_err();
    assert!(
        matches!(err, LogError::OffsetOutOfRange { offset: 0, .. }),
        "{err}"
    );
    let mut tail = log.tail("t", 0, StartAt::Earliest).await.unwrap();
    assert_eq!(tail.next().await.unwrap().offset, range.start);
    drop(log);

    let log = EmbeddedLog::open(config).unwrap();
    assert_eq!(
        log.offsets("t", 0).await.unwrap(),
        range,
        "retention survives a reopen"
    );
    let age = Retention {
        max_age: Some(Duration::ZERO),
        max_bytes: None,
    };
    retention::apply_to(&age, &log.topic("t").unwrap().partitions[0]);
    assert_eq!(
        log.topic("t").unwrap().partitions[0].segments().len(),
        1,
        "the active segment stays"
    );
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
        append_values(&log, "t", (0..3).map(|i| format!("v{i}"))).await;
    }
    let path = segment_path(dir.path(), "t", 0, 0);
    let intact = fs::metadata(&path).unwrap().len();
    // Half a frame: what a crash in the middle of a write leaves.
    let mut frame = Vec::new();
    segment::encode(&mut frame, 3, 0, &NewRecord::new("k", "never acknowledged"));
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(file);

    let log = open(dir.path());
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        intact,
        "the torn frame is cut off"
    );
    assert_eq!(values(&log, "t").await, ["v0", "v1", "v2"]);
    append_values(&log, "t", ["v3".to_owned()]).await;
    drop(log);
    assert_eq!(
        values(&open(dir.path()), "t").await,
        ["v0", "v1", "v2", "v3"]
    );
}

#[tokio::test]
async fn a_flipped_byte_mid_log_refuses_to_open_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut frame_starts = Vec::new();
    {
        let log = open(dir.path());
        log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
        append_values(&log, "t", (0..5).map(|i| format!("value-{i}"))).await;
        let segment = log.topic("t").unwrap().partitions[0].segments()[0].clone();
        frame_starts.extend(segment.lock().positions.iter().map(|&p| p as u64));
    }
    let path = segment_path(dir.path(), "t", 0, 0);
    let mut bytes = fs::read(&path).unwrap();
    let damaged = frame_starts[2];
    bytes[damaged as usize + 30] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let err = EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap_err();
    match &err {
        LogError::Corrupt { file, position, .. } => {
            assert_eq!((file, *position), (&path, damaged));
        }
        other => panic!("expected corruption, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains(&damaged.to_string()),
        "{message}"
    );
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "a refused open changes nothing"
    );

    let mut config = EmbeddedConfig::new(dir.path());
    config.recovery = Recovery::TruncateCorruption;
    let log = EmbeddedLog::open(config).unwrap();
    assert_eq!(
        values(&log, "t").await,
        ["value-0", "value-1"],
        "the operator's truncation"
    );
}

#[tokio::test]
async fn damage_while_serving_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
    append_values(&log, "t", (0..3).map(|i| format!("value-{i}"))).await;
    let path = segment_path(dir.path(), "t", 0, 0);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let err = log.read("t", 0, 0, 10).await.unwrap_err();
    assert!(
        matches!(&err, LogError::Corrupt { file, .. } if *file == path),
        "{err}"
    );
}

#[tokio::test]
async fn an_in_process_restart_reopens_while_old_handles_linger() {
    let dir = tempfile::tempdir().unwrap();
    let old = open(dir.path());
    old.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
    append_values(&old, "t", ["v0".to_owned()]).await;
    old.shutdown();
    let new = open(dir.path());
    append_values(&new, "t", ["v1".to_owned()]).await;
    assert_eq!(values(&new, "t").await, ["v0", "v1"]);
}

#[tokio::test]
async fn a_dropped_member_gives_its_partitions_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(&TopicSpec::new("t", 2)).await.unwrap();
    let mut first = log.join_group("g", "t", StartAt::Earliest).await.unwrap();
    assert_eq!(
        first.next().await.unwrap(),
        GroupEvent::Assigned(vec![0, 1])
    );
    let second = log.join_group("g", "t", StartAt::Earliest).await.unwrap();
    assert_eq!(first.next().await.unwrap(), GroupEvent::Revoked(vec![1]));
    drop(second);
    assert_eq!(first.next().await.unwrap(), GroupEvent::Assigned(vec![1]));
    assert_eq!(first.assignment(), [0, 1]);
}

#[tokio::test]
async fn appends_after_shutdown_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
    log.shutdown();
    let err = log
        .append(
            "t",
            vec![NewRecord::new("k", "v")],
            &AppendOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::Closed { .. }), "{err}");
}

#[tokio::test]
async fn interval_and_never_durability_still_append_in_order() {
    for durability in [
        Durability::Interval(Duration::from_millis(5)),
        Durability::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EmbeddedConfig::new(dir.path());
        config.durability = durability;
        let log = EmbeddedLog::open(config).unwrap();
        log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
        append_values(&log, "t", (0..3).map(|i| format!("v{i}"))).await;
        drop(log);
        assert_eq!(values(&open(dir.path()), "t").await, ["v0", "v1", "v2"]);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// A crash can cut the last segment anywhere; recovery keeps exactly
    /// the records whose frames are whole and the log goes on from there.
    #[test]
    fn a_cut_anywhere_keeps_exactly_the_whole_records_before_it(
        count in 1usize..24,
        cut in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let mut config = EmbeddedConfig::new(dir.path());
            config.durability = Durability::Never;
            let starts: Vec<u64> = {
                let log = EmbeddedLog::open(config.clone()).unwrap();
                log.create_topic(&TopicSpec::new("t", 1)).await.unwrap();
                append_values(&log, "t", (0..count).map(|i| format!("value-{i}"))).await;
                let segment = log.topic("t").unwrap().partitions[0].segments()[0].clone();
                segment.lock().positions.iter().map(|&p| p as u64).collect()
            };
            let path = segment_path(dir.path(), "t", 0, 0);
            let len = fs::metadata(&path).unwrap().len();
            let cut = cut.index(len as usize + 1) as u64;
            OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();

            let whole = (0..count)
                .filter(|&i| starts.get(i + 1).copied().unwrap_or(len) <= cut)
                .count();
            let log = EmbeddedLog::open(config).unwrap();
            let expected: Vec<String> = (0..whole).map(|i| format!("value-{i}")).collect();
            assert_eq!(values(&log, "t").await, expected, "cut at byte {cut} of {len}");
            let positions = log
                .append("t", vec![NewRecord::new("k", "after")], &AppendOptions::default())
                .await
                .unwrap();
            assert_eq!(positions[0].offset, whole as u64);
        });
    }
}
