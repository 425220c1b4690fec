//! The projector's metrics (names and labels as `docs/telemetry.md` specifies them).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_events::Topic;

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

/// Counts one record sent to the dead letters.
pub fn dead_lettered(topic: Topic, reason: &str) {
    let code = reason_code(reason);
    let index = REASONS
        .iter()
        .position(|r| *r == code)
        .unwrap_or(REASONS.len() - 1);
    DEAD_LETTERED[topic_index(topic)][index].fetch_add(1, Ordering::Relaxed);
}

/// The counters in Prometheus' text format.
pub fn render(out: &mut String) {
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
