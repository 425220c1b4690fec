//! Queue positions and wait estimates for waiting customers: ephemeral signals, computed from
//! the router's state and the time, never events of record.
//!
//! **Position** is the conversation's place in the order the router serves the queue (VIP
//! first, then priority, then the longest waiting), from 1. Skills can let a later conversation
//! be served first, so it is a good guide, not a promise.
//!
//! **Estimated wait** is `position × interval`, where `interval` is how often a conversation
//! has recently left the queue for an agent: the span between the oldest and the newest of the
//! recent departures (at most [`DEPARTURES_KEPT`], none older than the tenant's
//! `estimate_window`) divided by the gaps between them. With fewer than two recent departures
//! it is the tenant's `expected_handle_time` divided by the agents online. Outside business
//! hours the time until support opens comes first. No estimate is given while support is open
//! and nobody is online, or when the schedule never opens.
//!
//! [`DEPARTURES_KEPT`]: crate::routing::state::DEPARTURES_KEPT

use std::cmp::Reverse;
use std::time::Duration;

use switchboard_events::Timestamp;
use switchboard_events::agent::AgentStatus;
use switchboard_events::id::ConversationId;

use crate::routing::config::micros;
use crate::routing::router::Router;

/// Where one waiting conversation stands.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueueEntry {
    pub conversation: ConversationId,
    /// From 1: the next to be served.
    pub position: usize,
    /// How many conversations wait in the tenant's queue.
    pub queue_length: usize,
    pub estimated_wait: Option<Duration>,
}

impl Router {
    /// Every waiting conversation in the order it will be served, with its estimate.
    pub fn queue(&self, now: Timestamp) -> Vec<QueueEntry> {
        let mut waiting: Vec<_> = self.state.waiting().collect();
        waiting.sort_by_key(|(id, c)| (Reverse(c.vip), Reverse(c.priority), c.waiting_since, *id));
        let length = waiting.len();
        let interval = self.departure_interval(now);
        let until_open = match &self.config.business_hours {
            Some(hours) => hours
                .next_open(now)
                .map(|t| (t.as_micros() - now.as_micros()).max(0)),
            None => Some(0),
        };
        waiting
            .into_iter()
            .enumerate()
            .map(|(index, (id, _))| {
                let position = index + 1;
                let estimated_wait = match (until_open, interval) {
                    (Some(base), Some(interval)) => Some(Duration::from_micros(
                        (base + interval.saturating_mul(position as i64)).max(0) as u64,
                    )),
                    _ => None,
                };
                QueueEntry {
                    conversation: id.clone(),
                    position,
                    queue_length: length,
                    estimated_wait,
                }
            })
            .collect()
    }

    /// Micros between conversations leaving the queue, or `None` when nobody will take them.
    fn departure_interval(&self, now: Timestamp) -> Option<i64> {
        let online = self
            .state
            .agents
            .values()
            .filter(|a| a.status == AgentStatus::Online)
            .count();
        let open = self.is_open(now);
        if open && online == 0 {
            return None;
        }
        let window_start = now.as_micros() - micros(self.config.estimate_window);
        let recent: Vec<_> = self
            .state
            .departures
            .iter()
            .filter(|(at, _)| at.as_micros() >= window_start && *at <= now)
            .collect();
        if let (Some(first), Some(last)) = (recent.first(), recent.last())
            && recent.len() >= 2
        {
            let span = last.0.as_micros() - first.0.as_micros();
            return Some(span / (recent.len() as i64 - 1));
        }
        // Closed with nobody online: whoever comes at opening; assume one agent.
        Some(micros(self.config.expected_handle_time) / online.max(1) as i64)
    }
}
