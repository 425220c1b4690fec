//! The projector's metrics (names and labels as `docs/telemetry.md` specifies them).

use std::fmt::Write;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_events::Topic;
use switchboard_events::metrics::{Counter, Exposition, Family, Gauge, Histogram};
use switchboard_log::Record;

/// Why a record went to the dead letters: the `reason` label's closed set.
pub const REASONS: [&str; 5] = [
    "undecodable",
    "not_opened",
    "opened_twice",
    "broken_chain",
    "other",
];

static DEAD_LETTERED: [[AtomicU64; REASONS.len()]; 2] =
    [const { [const { AtomicU64::new(0) }; REASONS.len()] }; 2];

/// The reason code of a dead letter's reason text.
pub fn reason_code(reason: &str) -> &'static str {
    if reason.starts_with("undecodable") {
        "undecodable"
    } else if reason.starts_with("broken_chain") {
        "broken_chain"
    } else if reason.contains("before the conversation was opened") {
        "not_opened"
    } else if reason.contains("is opened again") {
        "opened_twice"
    } else {
        "other"
    }
}

fn topic_index(topic: Topic) -> usize {
    match topic {
        Topic::Conversations => 0,
        Topic::Agents => 1,
    }
}

/// A partition's projection holds `n` more (or fewer) conversation summaries.
pub(crate) fn cached(n: i64) {
    CACHED.add(n);
}

/// Counts one record sent to the dead letters.
pub fn dead_lettered(topic: Topic, reason: &str) {
    let code = reason_code(reason);
    let index = REASONS
        .iter()
        .position(|r| *r == code)
        .unwrap_or(REASONS.len() - 1);
    DEAD_LETTERED[topic_index(topic)][index].fetch_add(1, Ordering::Relaxed);
}

static PROJECTED: Family<Counter> = Family::new(&["topic"], Counter::new);
static CACHED: Gauge = Gauge::new();
static COMMIT: LazyLock<Histogram> = LazyLock::new(Histogram::seconds);
static LAG: Family<Histogram> = Family::new(&["topic"], Histogram::seconds);
static ARCHIVE_RUNS: Family<Counter> = Family::new(&["outcome"], Counter::new);
static ARCHIVE_RUN_DURATION: LazyLock<Histogram> = LazyLock::new(Histogram::seconds);
static ARCHIVED: Counter = Counter::new();
static ARCHIVE_SKIPPED: Family<Counter> = Family::new(&["reason"], Counter::new);
static ARCHIVE_LAST_SUCCESS: Gauge = Gauge::new();

/// A batch of `records` and its checkpoint reached the store in `took`.
pub(crate) fn committed(topic: Topic, records: &[Record], took: Duration) {
    COMMIT.observe_duration(took);
    PROJECTED.get(&[topic.name()]).add(records.len() as u64);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let lag = LAG.get(&[topic.name()]);
    for record in records {
        // The writer stamps each record with its event's `occurred_at`.
        lag.observe((now_ms - record.timestamp_ms).max(0) as f64 / 1000.0);
    }
}

/// An archive run ended.
pub(crate) fn archive_run(ok: bool, took: Duration) {
    ARCHIVE_RUNS.get(&[if ok { "ok" } else { "error" }]).inc();
    ARCHIVE_RUN_DURATION.observe_duration(took);
    if ok {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        ARCHIVE_LAST_SUCCESS.set(now);
    }
}

/// A conversation's manifest entry was recorded.
pub(crate) fn archived() {
    ARCHIVED.inc();
}

/// A conversation due for the archive stays hot: `chain_unverified` or `write_failed`.
pub(crate) fn archive_skipped(reason: &'static str) {
    ARCHIVE_SKIPPED.get(&[reason]).inc();
}

/// The metrics in Prometheus' text format.
pub fn render(out: &mut String) {
    let mut page = Exposition::new(out);
    page.one(
        "switchboard_projector_cached_conversations",
        "Conversation summaries the projection holds in memory, over its partitions.",
        &CACHED,
    );
    page.family(
        "switchboard_projector_projected_events_total",
        "Events whose batch and checkpoint are in the store.",
        &PROJECTED,
    );
    page.one(
        "switchboard_projector_commit_duration_seconds",
        "Writing a batch and its checkpoint to the store.",
        &*COMMIT,
    );
    page.family(
        "switchboard_projector_lag_seconds",
        "Per projected event, at its batch's commit: now minus the event's occurred_at.",
        &LAG,
    );
    page.family(
        "switchboard_archive_runs_total",
        "Archive runs that ended, by outcome.",
        &ARCHIVE_RUNS,
    );
    page.one(
        "switchboard_archive_run_duration_seconds",
        "How long an archive run took.",
        &*ARCHIVE_RUN_DURATION,
    );
    page.one(
        "switchboard_archive_archived_conversations_total",
        "Conversations moved to the cold archive.",
        &ARCHIVED,
    );
    page.family(
        "switchboard_archive_skipped_conversations_total",
        "Conversations due for the archive left in the hot store, by reason.",
        &ARCHIVE_SKIPPED,
    );
    page.one(
        "switchboard_archive_last_success_time_seconds",
        "Unix time the last successful archive run ended.",
        &ARCHIVE_LAST_SUCCESS,
    );
    let name = "switchboard_projector_dead_lettered_records_total";
    let _ = writeln!(
        out,
        "# HELP {name} Records sent to the dead letters, by reason."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for topic in Topic::ALL {
        for (i, reason) in REASONS.iter().enumerate() {
            let value = DEAD_LETTERED[topic_index(topic)][i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",reason=\"{reason}\"}} {value}",
                topic.name()
            );
        }
    }
}
