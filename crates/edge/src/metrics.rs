//! Counters of the edge, read by the metrics endpoint and the load generator.
//! Names follow `switchboard_<noun>_<unit>_total`; no label carries a conversation id.

use std::sync::atomic::AtomicU64;

pub static CONNECTIONS_OPENED: AtomicU64 = AtomicU64::new(0);
pub static CONNECTIONS_ACTIVE: AtomicU64 = AtomicU64::new(0);
pub static SLOW_CONSUMERS: AtomicU64 = AtomicU64::new(0);
pub static RATE_LIMITED: AtomicU64 = AtomicU64::new(0);
pub static AUTH_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Conversations the hub remembers (with subscribers or idle), and those it forgot for its bound.
pub static HUB_CONVERSATIONS: AtomicU64 = AtomicU64::new(0);
pub static HUB_EVICTIONS: AtomicU64 = AtomicU64::new(0);

/// The Prometheus text of the counters.
pub fn render() -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let rows = [
        (
            "switchboard_edge_connections_total",
            CONNECTIONS_OPENED.load(Relaxed),
        ),
        (
            "switchboard_edge_connections_active",
            CONNECTIONS_ACTIVE.load(Relaxed),
        ),
        (
            "switchboard_edge_slow_consumers_total",
            SLOW_CONSUMERS.load(Relaxed),
        ),
        (
            "switchboard_edge_rate_limited_total",
            RATE_LIMITED.load(Relaxed),
        ),
        (
            "switchboard_edge_auth_failures_total",
            AUTH_FAILURES.load(Relaxed),
        ),
        (
            "switchboard_edge_hub_conversations",
            HUB_CONVERSATIONS.load(Relaxed),
        ),
        (
            "switchboard_edge_hub_evictions_total",
            HUB_EVICTIONS.load(Relaxed),
        ),
    ];
    rows.iter()
        .map(|(name, value)| format!("{name} {value}\n"))
        .collect()
}
