//! What can be checked without a node: every statement parses, rows map both ways, bucket
//! and timestamp arithmetic. With `SWITCHBOARD_TEST_SCYLLA=host:port`, the generic suite.

use cql3_parser::cassandra_ast::CassandraAST;
use cql3_parser::cassandra_statement::CassandraStatement;

use super::schema::{self, STATEMENTS, TABLES};

/// tree-sitter-cql 0.2, under cql3-parser 0.4, has one gap our schema meets: its
/// `composite_key` rule requires clustering columns after a composite partition key, so
/// `PRIMARY KEY ((a, b))` (valid CQL: a composite partition key and no clustering) fails.
/// The check rewrites exactly that construct to `PRIMARY KEY ((a, b), a)`; everything else
/// is parsed as written.
fn parser_dialect(cql: &str) -> String {
    let Some(at) = cql.find("PRIMARY KEY ((") else {
        return cql.to_owned();
    };
    let inner_start = at + "PRIMARY KEY ((".len();
    let inner_end = inner_start + cql[inner_start..].find(')').expect("closing parenthesis");
    if !cql[inner_end..].starts_with("))") {
        return cql.to_owned();
    }
    let first = cql[inner_start..inner_end]
        .split(',')
        .next()
        .unwrap_or("")
        .trim();
    format!("{}), {first}{}", &cql[..inner_end], &cql[inner_end + 1..])
}

fn parses(cql: &str) -> Result<(), String> {
    let ast = CassandraAST::new(&parser_dialect(cql));
    if ast.has_error() {
        return Err("syntax error".into());
    }
    match ast.statements.as_slice() {
        [one] if !matches!(one.statement, CassandraStatement::Unknown(_)) => Ok(()),
        other => Err(format!("{} statements, or an unknown one", other.len())),
    }
}

#[test]
fn every_statement_parses() {
    let mut failures = Vec::new();
    let all = TABLES
        .iter()
        .chain([&schema::CREATE_KEYSPACE])
        .chain(STATEMENTS);
    for cql in all {
        let cql = schema::in_keyspace(cql, "switchboard");
        if let Err(e) = parses(&cql) {
            failures.push(format!("{e}: {cql}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(STATEMENTS.iter().filter(|s| schema::is_lwt(s)).count(), 1);
}

#[test]
fn the_parser_rejects_broken_statements() {
    // Guards the test above: a parser that accepted anything would make it vacuous.
    assert!(parses("SELEC seq FROM switchboard.timeline").is_err());
    assert!(parses("INSERT INTO t (a) VALUES (?, ?").is_err());
    assert!(parses("CREATE TABLE t (a text, PRIMARY KEY ((a))").is_err());
    assert_eq!(
        parser_dialect("CREATE TABLE t (a text, b text, PRIMARY KEY ((a, b)))"),
        "CREATE TABLE t (a text, b text, PRIMARY KEY ((a, b), a))"
    );
    let untouched = "CREATE TABLE t (a text, b text, PRIMARY KEY ((a), b))";
    assert_eq!(parser_dialect(untouched), untouched);
}

#[test]
fn buckets_hold_512_consecutive_seqs() {
    assert_eq!(schema::bucket(1), 0);
    assert_eq!(schema::bucket(512), 0);
    assert_eq!(schema::bucket(513), 1);
    assert_eq!(
        schema::bucket(0),
        0,
        "seq 0 (before the first) reads bucket 0"
    );
    assert_eq!(schema::bucket_seqs(0), (1, 512));
    assert_eq!(schema::bucket_seqs(2), (1025, 1536));
    for seq in [1, 511, 512, 513, 100_000] {
        let (first, last) = schema::bucket_seqs(schema::bucket(seq));
        assert!(first <= seq && seq <= last, "{seq} in {first}..={last}");
    }
}

#[test]
fn write_timestamps_order_versions_and_archive_deletions() {
    use schema::{ERASED_TS, through_ts, version_ts};
    assert!(version_ts(7) < version_ts(8));
    // An archive through seq 7 removes version 7 and keeps version 8.
    assert!(version_ts(7) < through_ts(7) && through_ts(7) < version_ts(8));
    assert!(version_ts(u64::MAX) < ERASED_TS && through_ts(u64::MAX) < ERASED_TS);
    // Lists read most recent first.
    assert!(schema::activity_desc(10) < schema::activity_desc(9));
    assert!(schema::activity_desc(i64::MAX) < schema::activity_desc(i64::MIN));
}

mod mapping {
    use switchboard_events::agent::AgentStatus;
    use switchboard_events::fixtures;

    use super::super::schema::{
        agent_from_columns, counters_from_list, counters_list, entry_columns, entry_from_columns,
        list_name,
    };
    use crate::conversation::{ConversationList, ConversationStatus};
    use crate::report::ReportCounters;
    use crate::suite;
    use crate::timeline::TimelineRow;

    #[test]
    fn timeline_rows_map_both_ways_with_their_frames() {
        for (event, frame) in fixtures::conversation_history() {
            let entry = TimelineRow::from_event(&event, frame).entry;
            assert_eq!(entry_from_columns(entry_columns(&entry)).unwrap(), entry);
        }
        let mut bad =
            entry_columns(&suite::message(&suite::tenant("a"), &suite::conv("c"), 1, 2).entry);
        bad.3 = 42;
        assert!(
            entry_from_columns(bad)
                .unwrap_err()
                .to_string()
                .contains("unknown actor kind 42")
        );
    }

    #[test]
    fn agent_rows_map_and_refuse_garbage() {
        let tenant = suite::tenant("acme");
        let row = ("agent-1".to_owned(), "away".to_owned(), 4, None, 10, 3);
        let record = agent_from_columns(&tenant, row).unwrap();
        assert_eq!(record.status, AgentStatus::Away);
        assert!(record.skills.is_empty(), "an empty list is stored as null");
        assert_eq!((record.max_conversations, record.last_seq.0), (4, 3));
        let bad = ("agent-1".to_owned(), "busy".to_owned(), 4, None, 10, 3);
        assert!(agent_from_columns(&tenant, bad).is_err());
        let negative = ("agent-1".to_owned(), "away".to_owned(), -1, None, 10, 3);
        assert!(agent_from_columns(&tenant, negative).is_err());
    }

    #[test]
    fn counters_map_as_a_list_that_may_only_grow() {
        let counters = ReportCounters {
            conversations_opened: 3,
            satisfied: 9,
            ..Default::default()
        };
        assert_eq!(
            counters_from_list(Some(counters_list(&counters))).unwrap(),
            counters
        );
        let older = counters_from_list(Some(vec![3])).unwrap();
        assert_eq!(older.conversations_opened, 3);
        assert_eq!(counters_from_list(None).unwrap(), ReportCounters::default());
        assert!(counters_from_list(Some(vec![0; ReportCounters::FIELDS + 1])).is_err());
    }

    #[test]
    fn every_list_has_its_own_partition() {
        let lists = [
            ConversationList::Recent,
            ConversationList::Status(ConversationStatus::Queued),
            ConversationList::Inbox(suite::agent("queued")),
            ConversationList::Customer(switchboard_events::id::CustomerId::new("queued").unwrap()),
        ];
        let names: std::collections::HashSet<_> = lists.iter().map(list_name).collect();
        assert_eq!(names.len(), lists.len(), "{names:?}");
    }
}

/// The generic suite on a real node. Each test gets a fresh keyspace.
mod on_a_node {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    use super::super::{ScyllaOptions, ScyllaStore};
    use crate::suite;

    const NODE: &str = "SWITCHBOARD_TEST_SCYLLA";

    async fn store(test: &str) -> Option<ScyllaStore> {
        let Ok(node) = std::env::var(NODE) else {
            eprintln!("skipped: {test} runs on ScyllaDB only when {NODE}=host:port is set");
            return None;
        };
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let keyspace = format!("switchboard_test_{}_{n}", std::process::id());
        let mut options = ScyllaOptions::new(vec![node], keyspace);
        options.create_schema = true;
        Some(
            ScyllaStore::connect(&options)
                .await
                .expect("the test node accepts a session"),
        )
    }

    macro_rules! suite {
        ($($scenario:ident),* $(,)?) => {
            $(
                // Multi-thread: the synchronous key provider blocks in place.
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(store) = store(stringify!($scenario)).await {
                        suite::$scenario(&store).await;
                    }
                }
            )*
        };
    }

    suite!(
        timeline_pages_go_both_ways_with_cursors,
        timeline_keeps_the_original_frames,
        lists_follow_the_summaries,
        agents_carry_their_load,
        reports_sum_partitions_and_never_double,
        checkpoints_only_move_forward,
        data_keys_are_created_once_and_destroyed_for_good,
        archiving_moves_a_conversation_out,
        the_writer_cache_keeps_the_newest_entry,
        the_same_conversation_id_in_two_tenants_is_two_conversations,
    );

    fn sample_batches() -> Vec<crate::Batch> {
        let mut runner = TestRunner::deterministic();
        suite::batches()
            .new_tree(&mut runner)
            .expect("batches")
            .current()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replays_and_crashes_change_nothing() {
        let test = "replays_and_crashes_change_nothing";
        let (Some(a), Some(b), Some(c)) = (store(test).await, store(test).await, store(test).await)
        else {
            return;
        };
        let batches = sample_batches();
        suite::replaying_changes_nothing(&a, &b, &batches, 0)
            .await
            .unwrap();
        // `a` already holds the batches once: applying them again to it is itself a replay.
        suite::a_crash_before_the_checkpoint_replays_cleanly(&a, &c, &batches, 0, 3, 0)
            .await
            .unwrap();
    }
}
