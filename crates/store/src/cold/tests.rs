//! The archive file format reads back what it wrote; history read through the archive serves
//! the pages the hot store served, before and after a late event.

use switchboard_events::{ChainHash, Seq, Timestamp};

use super::format::{self, ArchivedEvent};
use super::*;
use crate::ReadModels;
use crate::batch::Batch;
use crate::conversation::ConversationStatus;
use crate::embedded::{EmbeddedOptions, EmbeddedStore};
use crate::suite::{T0, conv, message, summary, tenant};
use crate::timeline::{Audience, TimelineCursor, TimelinePage, TimelineQuery, TimelineRow};

fn rows(c: &ConversationId, seqs: std::ops::RangeInclusive<u64>) -> Vec<TimelineRow> {
    seqs.map(|seq| message(&tenant("acme"), c, seq, 3))
        .collect()
}

fn events(c: &ConversationId, seqs: std::ops::RangeInclusive<u64>) -> ConversationEvents {
    ConversationEvents {
        conversation: c.clone(),
        entries: rows(c, seqs).into_iter().map(|r| r.entry).collect(),
    }
}

#[test]
fn a_file_reads_back_every_record_it_was_written_with() {
    let records: Vec<ArchivedEvent> = rows(&conv("c1"), 1..=7)
        .into_iter()
        .map(|r| ArchivedEvent {
            tenant: r.tenant,
            conversation: r.conversation,
            entry: r.entry,
        })
        .collect();
    let bytes = format::encode(&records, [7; 16]).unwrap();
    assert_eq!(&bytes[..4], b"Obj\x01", "an Avro object container file");
    assert_eq!(format::decode(&bytes).unwrap(), records);
}

#[test]
fn the_version_one_golden_file_still_reads() {
    let golden = include_bytes!("testdata/archive.v1.avro");
    let expected: Vec<_> = rows(&conv("golden"), 1..=4)
        .into_iter()
        .map(|r| r.entry)
        .collect();
    let read: Vec<_> = format::decode(golden)
        .unwrap()
        .into_iter()
        .map(|e| e.entry)
        .collect();
    assert_eq!(read, expected);
}

#[test]
fn a_file_of_a_newer_format_is_refused() {
    let schema = apache_avro::Schema::parse_str(SCHEMA_V1).unwrap();
    let mut writer = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
    writer
        .add_user_metadata(FORMAT_KEY.to_owned(), "9")
        .unwrap();
    let bytes = writer.into_inner().unwrap();
    assert!(matches!(
        format::decode(&bytes),
        Err(StoreError::UnknownVersion { version: 9, .. })
    ));
}

#[test]
fn days_are_named_by_their_calendar_date() {
    assert_eq!(iso_date(Day(0)), "1970-01-01");
    assert_eq!(iso_date(Day(19_723)), "2024-01-01");
    assert_eq!(iso_date(Day(19_782)), "2024-02-29");
    assert_eq!(iso_date(Day(-1)), "1969-12-31");
}

#[tokio::test]
async fn the_same_conversations_make_a_file_of_the_same_records_under_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::local(dir.path()).unwrap();
    let batch = [events(&conv("c1"), 1..=5), events(&conv("c2"), 1..=3)];
    let path = archive
        .write(&tenant("acme"), Day(19_723), &batch)
        .await
        .unwrap();
    assert!(path.starts_with("tenants/acme/days/2024-01-01/"), "{path}");
    let file = dir.path().join(&path);
    let records = format::decode(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(records.len(), 8);
    // Written again after a crash (the file is there) or after it was lost: same name, same records.
    let again = archive
        .write(&tenant("acme"), Day(19_723), &batch)
        .await
        .unwrap();
    assert_eq!(again, path);
    std::fs::remove_file(&file).unwrap();
    let again = archive
        .write(&tenant("acme"), Day(19_723), &batch)
        .await
        .unwrap();
    assert_eq!(again, path);
    assert_eq!(
        format::decode(&std::fs::read(&file).unwrap()).unwrap(),
        records
    );
    let other = archive
        .write(&tenant("acme"), Day(19_723), &batch[..1])
        .await
        .unwrap();
    assert_ne!(other, path);
}

fn entry_for(c: &ConversationId, object: String, last_seq: u64) -> ArchiveEntry {
    ArchiveEntry {
        tenant: tenant("acme"),
        conversation: c.clone(),
        day: Day(19_723),
        object,
        first_seq: Seq(1),
        last_seq: Seq(last_seq),
        last_hash: ChainHash([0; 32]),
        archived_at: Timestamp(T0),
        summary: summary(
            &tenant("acme"),
            c.as_str(),
            ConversationStatus::Resolved,
            30,
            last_seq,
        ),
    }
}

#[tokio::test]
async fn a_conversation_reads_back_complete_and_a_partial_one_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::local(dir.path()).unwrap();
    let c1 = conv("c1");
    let batch = [events(&c1, 1..=5), events(&conv("c2"), 1..=3)];
    let object = archive
        .write(&tenant("acme"), Day(19_723), &batch)
        .await
        .unwrap();
    let frames = archive
        .read_conversation(&entry_for(&c1, object.clone(), 5))
        .await
        .unwrap();
    let expected: Vec<_> = batch[0].entries.iter().map(|e| e.frame.clone()).collect();
    assert_eq!(frames, expected);
    let beyond = archive.read_conversation(&entry_for(&c1, object, 6)).await;
    assert!(
        matches!(beyond, Err(StoreError::Corrupt { .. })),
        "{beyond:?}"
    );
}

/// Every page a reader can reach: from both ends, and from every seq in both directions, for
/// both audiences, with a page size that cuts the timeline in several places.
fn queries(last: u64) -> Vec<TimelineQuery> {
    let mut cursors = vec![TimelineCursor::Oldest, TimelineCursor::Newest];
    for seq in 0..=last + 1 {
        cursors.extend([
            TimelineCursor::After(Seq(seq)),
            TimelineCursor::Before(Seq(seq)),
        ]);
    }
    let mut out = Vec::new();
    for cursor in cursors {
        for audience in [Audience::Staff, Audience::Customer] {
            for limit in [1, 4, 50] {
                out.push(TimelineQuery::new(cursor, limit, audience));
            }
        }
    }
    out
}

async fn pages(
    store: &dyn ReadModels,
    archive: &Archive,
    c: &ConversationId,
    last: u64,
) -> Vec<TimelinePage> {
    let mut out = Vec::new();
    for query in queries(last) {
        let acme = tenant("acme");
        let page = timeline_or_archive(store, archive, &acme, c, query).await;
        out.push(page.unwrap());
    }
    out
}

fn open(dir: &std::path::Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, EmbeddedOptions::default()).unwrap()
}

#[tokio::test]
async fn history_falls_through_to_the_archive_and_to_late_events_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, reference) = (open(&dir.path().join("hot")), open(&dir.path().join("ref")));
    let archive = Archive::local(&dir.path().join("archive")).unwrap();
    let (acme, c) = (tenant("acme"), conv("c1"));
    let mut batch = Batch::new();
    for row in rows(&c, 1..=10) {
        batch.timeline(row);
    }
    store.apply(&batch).await.unwrap();
    reference.apply(&batch).await.unwrap();
    let before = pages(&store, &archive, &c, 10).await;

    let batch = [events(&c, 1..=10)];
    let object = archive.write(&acme, Day(19_723), &batch).await.unwrap();
    store.archive(&entry_for(&c, object, 10)).await.unwrap();
    let cold = TimelineQuery::new(TimelineCursor::Oldest, 50, Audience::Staff);
    let hot = store.timeline(&acme, &c, cold).await.unwrap();
    assert!(hot.entries.is_empty(), "the hot rows are gone");
    assert_eq!(pages(&store, &archive, &c, 10).await, before);

    // A reopening after the archive: its events are hot, and served after the archived ones.
    let mut late = Batch::new();
    for row in rows(&c, 11..=14) {
        late.timeline(row);
    }
    store.apply(&late).await.unwrap();
    reference.apply(&late).await.unwrap();
    assert_eq!(
        pages(&store, &archive, &c, 14).await,
        pages(&reference, &archive, &c, 14).await
    );
}
