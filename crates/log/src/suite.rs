//! One scenario suite, written once against the port and run by every
//! backend's tests (`embedded::tests`, `kafka::tests`).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use switchboard_events::partition::partition_for_key;

use crate::{
    AppendOptions, EventLog, GroupEvent, GroupMember, LogError, NewRecord, StartAt, TopicSpec,
};

/// A safety net against a hung backend, never a synchronization point.
const PATIENCE: Duration = Duration::from_secs(60);

pub(crate) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, f).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {PATIENCE:?}"),
    }
}

fn value(key: &str, i: usize) -> Vec<u8> {
    format!("{key}#{i}").into_bytes()
}

/// Keys land on their murmur2 partition, offsets count up from zero per
/// partition, and each key's records read back in append order.
pub(crate) async fn ordering_per_key_and_offsets(log: &dyn EventLog) {
    let topic = "suite.ordering";
    log.create_topic(&TopicSpec::new(topic, 4)).await.unwrap();
    log.create_topic(&TopicSpec::new(topic, 4))
        .await
        .expect("create_topic is idempotent");
    assert_eq!(log.partitions(topic).await.unwrap(), 4);
    let keys: Vec<String> = (0..8).map(|k| format!("conversation-{k}")).collect();
    let mut next_offset: HashMap<u32, u64> = HashMap::new();
    for round in 0..3 {
        let batch: Vec<NewRecord> = keys
            .iter()
            .flat_map(|k| (0..2).map(move |i| NewRecord::new(k.as_str(), value(k, round * 2 + i))))
            .collect();
        let positions = log
            .append(topic, batch.clone(), &AppendOptions::default())
            .await
            .unwrap();
        assert_eq!(positions.len(), batch.len());
        for (record, position) in batch.iter().zip(&positions) {
            assert_eq!(
                position.partition,
                partition_for_key(&record.key, 4),
                "murmur2 placement"
            );
            let expected = next_offset.entry(position.partition).or_insert(0);
            assert_eq!(
                position.offset, *expected,
                "offsets are dense and in batch order"
            );
            *expected += 1;
        }
    }
    let mut seen: HashMap<Vec<u8>, Vec<Vec<u8>>> = HashMap::new();
    for partition in 0..4 {
        let range = log.offsets(topic, partition).await.unwrap();
        assert_eq!(range.end, next_offset.get(&partition).copied().unwrap_or(0));
        let records = log.read(topic, partition, 0, 1000).await.unwrap();
        assert_eq!(records.len() as u64, range.end);
        for (i, record) in records.iter().enumerate() {
            assert_eq!((record.partition, record.offset), (partition, i as u64));
            seen.entry(record.key.clone())
                .or_default()
                .push(record.value.clone());
        }
        let tail = log.read(topic, partition, 2, 1).await.unwrap();
        assert!(
            range.end < 3 || tail.len() == 1 && tail[0].offset == 2,
            "read from an offset"
        );
        assert!(
            log.read(topic, partition, range.end, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    for key in &keys {
        let expected: Vec<Vec<u8>> = (0..6).map(|i| value(key, i)).collect();
        assert_eq!(seen[key.as_bytes()], expected, "records of {key} in order");
    }
}

/// Headers and timestamps come back as they went in.
pub(crate) async fn headers_and_timestamps(log: &dyn EventLog) {
    let topic = "suite.headers";
    log.create_topic(&TopicSpec::new(topic, 2)).await.unwrap();
    let record = NewRecord::new("conversation-h", "payload")
        .with_header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .with_header("empty", Vec::new())
        .with_timestamp_ms(1_700_000_000_123);
    let positions = log
        .append(topic, vec![record.clone()], &AppendOptions::default())
        .await
        .unwrap();
    let back = log
        .read(topic, positions[0].partition, positions[0].offset, 1)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].key, record.key);
    assert_eq!(back[0].value, record.value);
    assert_eq!(back[0].headers, record.headers);
    assert_eq!(back[0].timestamp_ms, 1_700_000_000_123);
}

/// A tailer gets old records first, then new ones as they are appended.
pub(crate) async fn tailing(log: &dyn EventLog) {
    let topic = "suite.tailing";
    log.create_topic(&TopicSpec::new(topic, 1)).await.unwrap();
    let append = |i: usize| NewRecord::new("conversation-t", value("t", i));
    log.append(topic, vec![append(0), append(1)], &AppendOptions::default())
        .await
        .unwrap();
    let mut from_start = log.tail(topic, 0, StartAt::Earliest).await.unwrap();
    let mut live = log.tail(topic, 0, StartAt::Latest).await.unwrap();
    for i in 0..2 {
        let record = within("tail of old records", from_start.next())
            .await
            .unwrap();
        assert_eq!(
            (record.offset, record.value.clone()),
            (i as u64, value("t", i))
        );
    }
    for i in 2..5 {
        log.append(topic, vec![append(i)], &AppendOptions::default())
            .await
            .unwrap();
        for tail in [&mut from_start, &mut live] {
            let record = within("live tail", tail.next()).await.unwrap();
            assert_eq!((record.offset, record.value), (i as u64, value("t", i)));
        }
    }
}

/// A tailer following a partition while four appenders write to it sees
/// every record once, at dense offsets, each key's records in order.
pub(crate) async fn tail_while_appending(log: &dyn EventLog) {
    let topic = "suite.concurrent";
    log.create_topic(&TopicSpec::new(topic, 1)).await.unwrap();
    const PER_WRITER: usize = 50;
    let mut tail = log.tail(topic, 0, StartAt::Earliest).await.unwrap();
    let writer = |w: usize| async move {
        let key = format!("conversation-{w}");
        for i in 0..PER_WRITER {
            let record = NewRecord::new(key.as_str(), value(&key, i));
            log.append(topic, vec![record], &AppendOptions::default())
                .await
                .unwrap();
        }
    };
    let follow = async {
        let mut records = Vec::new();
        while records.len() < 4 * PER_WRITER {
            records.push(within("concurrent tail", tail.next()).await.unwrap());
        }
        records
    };
    let ((), (), (), (), records) =
        tokio::join!(writer(0), writer(1), writer(2), writer(3), follow);
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..4 * PER_WRITER as u64).collect::<Vec<u64>>());
    for w in 0..4 {
        let key = format!("conversation-{w}");
        let values: Vec<Vec<u8>> = records
            .iter()
            .filter(|r| r.key == key.as_bytes())
            .map(|r| r.value.clone())
            .collect();
        assert_eq!(
            values,
            (0..PER_WRITER).map(|i| value(&key, i)).collect::<Vec<_>>()
        );
    }
}

/// Reads group events until `done` says so, returning the records seen.
async fn drive(
    member: &mut dyn GroupMember,
    assigned: &mut BTreeSet<u32>,
    mut done: impl FnMut(&BTreeSet<u32>, &[crate::Record]) -> bool,
) -> Vec<crate::Record> {
    let mut records = Vec::new();
    while !done(assigned, &records) {
        let ev = within("group event", member.next()).await.unwrap();
        match ev {
            GroupEvent::Assigned(p) => assigned.extend(p),
            GroupEvent::Revoked(p) => p.iter().for_each(|p| {
                assigned.remove(p);
            }),
            GroupEvent::Record(r) => records.push(r),
        }
    }
    records
}

/// A member commits part of what it read and leaves; the next member of
/// the group resumes right after the commit.
pub(crate) async fn group_commit_and_resume(log: &dyn EventLog) {
    let topic = "suite.resume";
    log.create_topic(&TopicSpec::new(topic, 1)).await.unwrap();
    let batch: Vec<NewRecord> = (0..10)
        .map(|i| NewRecord::new("conversation-r", value("r", i)))
        .collect();
    log.append(topic, batch, &AppendOptions::default())
        .await
        .unwrap();

    let mut member = log
        .join_group("suite-resume", topic, StartAt::Earliest)
        .await
        .unwrap();
    let mut assigned = BTreeSet::new();
    let records = drive(member.as_mut(), &mut assigned, |_, r| r.len() >= 6).await;
    assert_eq!(assigned, BTreeSet::from([0]));
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..6).collect::<Vec<u64>>());
    member.commit(0, 4).await.unwrap();
    member.leave().await.unwrap();

    let mut member = log
        .join_group("suite-resume", topic, StartAt::Earliest)
        .await
        .unwrap();
    let mut assigned = BTreeSet::new();
    let records = drive(member.as_mut(), &mut assigned, |_, r| r.len() >= 6).await;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (4..10).collect::<Vec<u64>>(),
        "resumes at the committed offset"
    );
    member.leave().await.unwrap();
}

/// A second member takes over part of the partitions; when it leaves, the
/// first member gets them back.
pub(crate) async fn rebalance_when_a_member_joins(log: &dyn EventLog) {
    let topic = "suite.rebalance";
    let all: BTreeSet<u32> = (0..4).collect();
    log.create_topic(&TopicSpec::new(topic, 4)).await.unwrap();
    let mut first = log
        .join_group("suite-rebalance", topic, StartAt::Earliest)
        .await
        .unwrap();
    let mut first_held = BTreeSet::new();
    drive(first.as_mut(), &mut first_held, |a, _| *a == all).await;

    let mut second = log
        .join_group("suite-rebalance", topic, StartAt::Earliest)
        .await
        .unwrap();
    let mut second_held = BTreeSet::new();
    within("rebalance after a join", async {
        loop {
            let split = !first_held.is_empty()
                && !second_held.is_empty()
                && first_held.is_disjoint(&second_held)
                && first_held
                    .union(&second_held)
                    .copied()
                    .collect::<BTreeSet<u32>>()
                    == all;
            if split {
                break;
            }
            let (event, held) = tokio::select! {
                e = first.next() => (e, &mut first_held),
                e = second.next() => (e, &mut second_held),
            };
            match event.unwrap() {
                GroupEvent::Assigned(p) => held.extend(p),
                GroupEvent::Revoked(p) => p.iter().for_each(|p| {
                    held.remove(p);
                }),
                GroupEvent::Record(_) => {}
            }
        }
    })
    .await;
    assert_eq!(
        first.assignment().into_iter().collect::<BTreeSet<u32>>(),
        first_held
    );

    second.leave().await.unwrap();
    drive(first.as_mut(), &mut first_held, |a, _| *a == all).await;
    first.leave().await.unwrap();
}

/// Bad input is refused with typed errors, before anything is written.
pub(crate) async fn bad_input(log: &dyn EventLog, max_record_bytes: usize) {
    let topic = "suite.bad-input";
    log.create_topic(&TopicSpec::new(topic, 1)).await.unwrap();
    let options = AppendOptions::default();
    let err = log.append(topic, Vec::new(), &options).await.unwrap_err();
    assert!(matches!(err, LogError::EmptyBatch), "{err}");

    let fits = NewRecord::new("k", vec![0u8; max_record_bytes - 1]);
    let too_big = NewRecord::new("k", vec![0u8; max_record_bytes]);
    let err = log
        .append(topic, vec![fits, too_big], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::RecordTooLarge { index: 1, size, max } if size == max_record_bytes + 1 && max == max_record_bytes),
        "{err}"
    );
    assert_eq!(
        log.offsets(topic, 0).await.unwrap().end,
        0,
        "nothing of a refused batch is written"
    );

    if max_record_bytes > 70_000 {
        let long_name = NewRecord::new("k", "v").with_header("n".repeat(70_000), "v");
        let err = log
            .append(topic, vec![long_name], &options)
            .await
            .unwrap_err();
        assert!(matches!(err, LogError::Invalid { .. }), "{err}");
    }

    let err = log
        .append(
            "suite.no-such-topic",
            vec![NewRecord::new("k", "v")],
            &options,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LogError::UnknownTopic { topic } if topic == "suite.no-such-topic"),
        "{err}"
    );
    let err = log.read(topic, 7, 0, 1).await.unwrap_err();
    assert!(
        matches!(err, LogError::UnknownPartition { partition: 7, .. }),
        "{err}"
    );
    let err = log
        .create_topic(&TopicSpec::new(topic, 3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LogError::TopicConflict {
                existing: 1,
                requested: 3,
                ..
            }
        ),
        "{err}"
    );
}

/// A claim fences every older claim of the partition: the deposed writer's appends fail with
/// `Fenced` and write nothing; the new writer's go through; a fenced append refuses records of
/// other partitions. `a` and `b` are two clients of the same log (two instances).
pub(crate) async fn claims_fence_older_writers(a: &dyn EventLog, b: &dyn EventLog) {
    let topic = "suite.fencing";
    a.create_topic(&TopicSpec::new(topic, 2)).await.unwrap();
    let key = "conversation-fenced";
    let partition = partition_for_key(key.as_bytes(), 2);
    let first = within("first claim", a.claim(topic, partition))
        .await
        .unwrap();
    let fenced = |fence| AppendOptions::fenced(fence);
    within(
        "append under the claim",
        a.append(
            topic,
            vec![NewRecord::new(key, value(key, 0))],
            &fenced(first),
        ),
    )
    .await
    .unwrap();

    let second = within("second claim", b.claim(topic, partition))
        .await
        .unwrap();
    let deposed = within(
        "deposed append",
        a.append(
            topic,
            vec![NewRecord::new(key, value(key, 1))],
            &fenced(first),
        ),
    )
    .await;
    assert!(
        matches!(deposed, Err(LogError::Fenced { .. })),
        "{deposed:?}"
    );
    within(
        "new owner's append",
        b.append(
            topic,
            vec![NewRecord::new(key, value(key, 2))],
            &fenced(second),
        ),
    )
    .await
    .unwrap();

    let other_key = (0..)
        .map(|k| format!("other-{k}"))
        .find(|k| partition_for_key(k.as_bytes(), 2) != partition)
        .unwrap();
    let outside = b
        .append(
            topic,
            vec![NewRecord::new(other_key.as_str(), vec![1])],
            &fenced(second),
        )
        .await;
    assert!(
        matches!(outside, Err(LogError::Invalid { .. })),
        "{outside:?}"
    );

    let range = b.offsets(topic, partition).await.unwrap();
    let records = within("read back", b.read(topic, partition, range.start, 10))
        .await
        .unwrap();
    let values: Vec<Vec<u8>> = records
        .iter()
        .filter(|r| r.key == key.as_bytes())
        .map(|r| r.value.clone())
        .collect();
    assert_eq!(
        values,
        vec![value(key, 0), value(key, 2)],
        "the deposed writer wrote nothing"
    );
}
