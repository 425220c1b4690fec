//! The edge's metrics (names and labels as `docs/telemetry.md` specifies them), read by the
//! admin listener and the load generator. No label carries a conversation id.

use std::time::Instant;

use switchboard_events::metrics::{Counter, Exposition, Family, Gauge, Histogram};

use crate::protocol::close;

pub static OPENED_CONNECTIONS: Counter = Counter::new();
pub static OPEN_CONNECTIONS: Gauge = Gauge::new();
static CLOSED_CONNECTIONS: Family<Counter> = Family::new(&["reason"], Counter::new);
static REFUSED_CONNECTIONS: Family<Counter> = Family::new(&["reason"], Counter::new);
static RECEIVED_FRAMES: Family<Counter> = Family::new(&["type"], Counter::new);
static SENT_FRAMES: Family<Counter> = Family::new(&["type"], Counter::new);
static REFUSED_FRAMES: Family<Counter> = Family::new(&["reason"], Counter::new);
static ACK_LATENCY: Family<Histogram> = Family::new(&["type"], Histogram::seconds);
static ACTIVE_SUBSCRIPTIONS: Gauge = Gauge::new();
static DELIVERED_EVENTS: Counter = Counter::new();
/// Conversations the hub remembers (with subscribers or idle), and those it forgot for its bound.
pub static HUB_CONVERSATIONS: Gauge = Gauge::new();
pub static HUB_EVICTIONS: Counter = Counter::new();

/// The metrics in Prometheus' text format.
pub fn render(out: &mut String) {
    let mut page = Exposition::new(out);
    page.one(
        "switchboard_edge_opened_connections_total",
        "WebSocket upgrades completed.",
        &OPENED_CONNECTIONS,
    );
    page.one(
        "switchboard_edge_open_connections",
        "WebSocket connections open now.",
        &OPEN_CONNECTIONS,
    );
    page.family(
        "switchboard_edge_closed_connections_total",
        "Connections ended, by reason.",
        &CLOSED_CONNECTIONS,
    );
    page.family(
        "switchboard_edge_refused_connections_total",
        "Upgrades refused before they completed, by reason.",
        &REFUSED_CONNECTIONS,
    );
    page.family(
        "switchboard_edge_received_frames_total",
        "Client frames read, by type.",
        &RECEIVED_FRAMES,
    );
    page.family(
        "switchboard_edge_sent_frames_total",
        "Server frames queued for a connection, by type.",
        &SENT_FRAMES,
    );
    page.family(
        "switchboard_edge_refused_frames_total",
        "Client frames answered with an error without being acted on, by reason.",
        &REFUSED_FRAMES,
    );
    page.family(
        "switchboard_edge_ack_latency_seconds",
        "From reading a client frame to queueing its ack.",
        &ACK_LATENCY,
    );
    page.one(
        "switchboard_edge_active_subscriptions",
        "Subscriptions of the open connections.",
        &ACTIVE_SUBSCRIPTIONS,
    );
    page.one(
        "switchboard_edge_delivered_events_total",
        "Live event frames queued for subscribers, one per subscriber.",
        &DELIVERED_EVENTS,
    );
    page.one(
        "switchboard_edge_remembered_conversations",
        "Conversations the hub's index holds, with subscribers or idle.",
        &HUB_CONVERSATIONS,
    );
    page.one(
        "switchboard_edge_forgotten_conversations_total",
        "Idle conversations the hub forgot to stay within its bound.",
        &HUB_EVICTIONS,
    );
}

/// A client frame of `kind` was read (`unreadable` when it did not parse).
pub(crate) fn received(kind: &'static str) {
    RECEIVED_FRAMES.get(&[kind]).inc();
}

/// A server frame of `kind` was queued or sent.
pub(crate) fn sent(kind: &'static str) {
    SENT_FRAMES.get(&[kind]).inc();
}

/// A client frame was refused: `rate_limited_connection`, `rate_limited_tenant`, `too_large`,
/// `unreadable` or `unauthorized`.
pub(crate) fn refused_frame(reason: &'static str) {
    REFUSED_FRAMES.get(&[reason]).inc();
}

/// An upgrade was refused: `origin` or `draining`.
pub(crate) fn refused_connection(reason: &'static str) {
    REFUSED_CONNECTIONS.get(&[reason]).inc();
}

/// The ack of a client frame of `kind` read at `at` was queued.
pub(crate) fn acked(kind: &'static str, at: Instant) {
    ACK_LATENCY.get(&[kind]).observe_duration(at.elapsed());
}

/// Subscriptions were added (positive) or ended (negative).
pub(crate) fn subscriptions(n: i64) {
    ACTIVE_SUBSCRIPTIONS.add(n);
}

/// A live event was queued for a subscriber.
pub(crate) fn delivered() {
    DELIVERED_EVENTS.inc();
}

/// A connection ended with this close code.
pub(crate) fn closed(code: u16) {
    let reason = match code {
        close::SLOW_CONSUMER => "slow_consumer",
        close::GOING_AWAY => "shutdown",
        close::IDLE_TIMEOUT => "idle_timeout",
        close::UNAUTHENTICATED | close::FORBIDDEN => "auth_failed",
        close::ABUSE => "strikes",
        close::TOO_BIG => "frame_too_large",
        _ => "client",
    };
    CLOSED_CONNECTIONS.get(&[reason]).inc();
    OPEN_CONNECTIONS.dec();
}
