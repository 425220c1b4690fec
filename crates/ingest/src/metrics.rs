//! The write side's and the router's metrics (names and labels as `docs/telemetry.md`
//! specifies them).

use std::time::Instant;

use switchboard_events::Topic;
use switchboard_events::metrics::{Counter, Exposition, Family, Gauge, Histogram};

use switchboard_events::conversation::AssignmentPolicy;

use crate::error::CommandError;
use crate::routing::decide::{Decision, Need};

static COMMANDS: Family<Counter> = Family::new(&["kind", "outcome"], Counter::new);
static ACK_LATENCY: Family<Histogram> = Family::new(&["kind"], Histogram::seconds);
static FORWARDED: Family<Counter> = Family::new(&["outcome"], Counter::new);
static QUEUED: Gauge = Gauge::new();
static HELD: Gauge = Gauge::new();
static ADMISSION_CUSTOMERS: Gauge = Gauge::new();
static OWNED: Family<Gauge> = Family::new(&["partition"], Gauge::new);

static ROUTER_OWNED: Family<Gauge> = Family::new(&["partition"], Gauge::new);
static ROUTER_TENANTS: Gauge = Gauge::new();
static ROUTER_QUEUED: Gauge = Gauge::new();
static ROUTER_REMEMBERED: Gauge = Gauge::new();
static ROUTER_ASSIGNMENTS: Family<Counter> = Family::new(&["policy"], Counter::new);
static ROUTER_REASSIGNED: Family<Counter> = Family::new(&["reason"], Counter::new);

/// The metrics in Prometheus' text format.
pub fn render(out: &mut String) {
    let mut page = Exposition::new(out);
    page.family(
        "switchboard_ingest_commands_total",
        "Commands answered, by kind and outcome.",
        &COMMANDS,
    );
    page.family(
        "switchboard_ingest_ack_latency_seconds",
        "From a command's arrival to its answer.",
        &ACK_LATENCY,
    );
    page.family(
        "switchboard_ingest_forwarded_commands_total",
        "Commands sent on to the ingest instance that owns their partition, and answered.",
        &FORWARDED,
    );
    page.one(
        "switchboard_ingest_queued_commands",
        "Commands waiting in this instance's partition queues.",
        &QUEUED,
    );
    page.one(
        "switchboard_ingest_held_conversations",
        "Conversation states the writer holds in memory, over its partitions.",
        &HELD,
    );
    page.one(
        "switchboard_ingest_admission_customers",
        "Customers the admission gate counts: with a conversation not resolved, or an open under way.",
        &ADMISSION_CUSTOMERS,
    );
    page.family(
        "switchboard_ingest_owned_partitions",
        "1 for each conversation partition this instance writes under its claim.",
        &OWNED,
    );
    page.family(
        "switchboard_router_owned_partitions",
        "1 for each agents partition whose tenants this instance routes.",
        &ROUTER_OWNED,
    );
    page.one(
        "switchboard_router_owned_tenants",
        "Tenants this instance routes.",
        &ROUTER_TENANTS,
    );
    page.one(
        "switchboard_router_queued_conversations",
        "Conversations waiting for an agent, over the tenants routed here.",
        &ROUTER_QUEUED,
    );
    page.one(
        "switchboard_router_remembered_conversations",
        "Conversations the router holds in memory, resolved ones it has not forgotten included.",
        &ROUTER_REMEMBERED,
    );
    page.family(
        "switchboard_router_assignments_total",
        "Assignments the router made, by policy.",
        &ROUTER_ASSIGNMENTS,
    );
    page.family(
        "switchboard_router_reassigned_conversations_total",
        "Conversations taken from their agent to be given again, by reason.",
        &ROUTER_REASSIGNED,
    );
}

/// Counts one answered command of `kind` that arrived at `started`.
pub(crate) fn answered<T>(kind: &'static str, started: Instant, answer: &Result<T, CommandError>) {
    let outcome = match answer {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    COMMANDS.get(&[kind, outcome]).inc();
    ACK_LATENCY.get(&[kind]).observe_duration(started.elapsed());
}

/// Counts a command answered by another instance than the first one asked.
pub(crate) fn forwarded<T>(answer: &Result<T, CommandError>) {
    let outcome = match answer {
        Ok(_) => "ok",
        Err(e) => e.code(),
    };
    FORWARDED.get(&[outcome]).inc();
}

/// A partition's writer holds `n` more (or fewer) conversation states in memory.
pub(crate) fn held_conversations(n: i64) {
    HELD.add(n);
}

/// The customers the admission gate counts, after a router round.
pub(crate) fn admission_customers(n: usize) {
    ADMISSION_CUSTOMERS.set(n as i64);
}

/// Commands entered (positive) or left (negative) the partition queues.
pub(crate) fn queued(n: i64) {
    QUEUED.add(n);
}

/// This instance took (true) or lost (false) the write claim of a partition of `topic`.
pub(crate) fn ownership(topic: Topic, partition: u32, owned: bool) {
    if topic != Topic::Conversations {
        return;
    }
    let partition = partition.to_string();
    if owned {
        OWNED.get(&[&partition]).set(1);
    } else {
        OWNED.remove(&[&partition]);
    }
}

/// The router routes the tenants of this partition of `switchboard.agents`.
pub(crate) fn routing_partition(partition: u32) {
    ROUTER_OWNED.get(&[&partition.to_string()]).set(1);
}

/// The router's tenants, the conversations waiting over them and every conversation it
/// remembers, after a round.
pub(crate) fn routing_load(tenants: usize, waiting: usize, remembered: usize) {
    ROUTER_TENANTS.set(tenants as i64);
    ROUTER_QUEUED.set(waiting as i64);
    ROUTER_REMEMBERED.set(remembered as i64);
}

/// One of the router's decisions was acknowledged.
pub(crate) fn routed(decision: &Decision) {
    let Decision::Assign { policy, need, .. } = decision else {
        return;
    };
    let policy = match policy {
        AssignmentPolicy::Manual => "manual",
        AssignmentPolicy::RoundRobin => "round_robin",
        AssignmentPolicy::LeastBusy => "least_busy",
        AssignmentPolicy::SkillsMatch => "skills_match",
        AssignmentPolicy::VipFirst => "vip_first",
    };
    ROUTER_ASSIGNMENTS.get(&[policy]).inc();
    match need {
        Need::Waiting => {}
        Need::AgentOffline => ROUTER_REASSIGNED.get(&["agent_offline"]).inc(),
        Need::NoAnswer => ROUTER_REASSIGNED.get(&["no_answer"]).inc(),
    }
}
