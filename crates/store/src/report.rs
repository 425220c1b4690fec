//! Report counters: volumes, first response and resolution times, CSAT, per tenant or agent
//! and day.
//!
//! Counters are never incremented in place. The projector that owns a log partition keeps the
//! absolute totals of what it has folded from that partition, per (tenant, day, scope), and
//! upserts them with its checkpoint as a [`ReportPartial`]; a read sums the partials of every
//! partition. Re-applying a batch writes the same absolute values again: nothing doubles.

use serde::{Deserialize, Serialize};
use switchboard_events::Timestamp;
use switchboard_events::id::{AgentId, TenantId};

use crate::checkpoint::LogPartition;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Day(pub i32);

impl Day {
    pub fn of(at: Timestamp) -> Self {
        Self(at.as_micros().div_euclid(MICROS_PER_DAY) as i32)
    }

    /// The first microsecond of the day.
    pub fn start(self) -> Timestamp {
        Timestamp(i64::from(self.0) * MICROS_PER_DAY)
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// Whose figures: the whole tenant's, or one agent's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReportScope {
    Tenant,
    Agent(AgentId),
}

impl ReportScope {
    /// The scope as one string column: `tenant` or `agent:<id>`.
    pub fn key(&self) -> String {
        match self {
            Self::Tenant => "tenant".to_owned(),
            Self::Agent(agent) => format!("agent:{agent}"),
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        match key.split_once(':') {
            None if key == "tenant" => Some(Self::Tenant),
            Some(("agent", id)) => AgentId::new(id).ok().map(Self::Agent),
            _ => None,
        }
    }
}

/// Totals of one scope and day. Times are sums in microseconds, so that partials add up and
/// a mean is `sum / count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReportCounters {
    pub conversations_opened: u64,
    pub conversations_resolved: u64,
    pub messages_from_customers: u64,
    pub messages_from_agents: u64,
    pub first_responses: u64,
    pub first_response_micros: u64,
    pub resolutions: u64,
    pub resolution_micros: u64,
    pub ratings: u64,
    pub rating_sum: u64,
    /// Ratings of 4 or 5: CSAT is `satisfied / ratings`.
    pub satisfied: u64,
}

impl ReportCounters {
    pub const FIELDS: usize = 11;

    pub fn add(&mut self, other: &Self) {
        let mut sum = self.to_array();
        for (a, b) in sum.iter_mut().zip(other.to_array()) {
            *a = a.saturating_add(b);
        }
        *self = Self::from_array(sum);
    }

    pub fn to_array(&self) -> [u64; Self::FIELDS] {
        [
            self.conversations_opened,
            self.conversations_resolved,
            self.messages_from_customers,
            self.messages_from_agents,
            self.first_responses,
            self.first_response_micros,
            self.resolutions,
            self.resolution_micros,
            self.ratings,
            self.rating_sum,
            self.satisfied,
        ]
    }

    pub fn from_array(a: [u64; Self::FIELDS]) -> Self {
        Self {
            conversations_opened: a[0],
            conversations_resolved: a[1],
            messages_from_customers: a[2],
            messages_from_agents: a[3],
            first_responses: a[4],
            first_response_micros: a[5],
            resolutions: a[6],
            resolution_micros: a[7],
            ratings: a[8],
            rating_sum: a[9],
            satisfied: a[10],
        }
    }
}

/// Which figures a partial holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportKey {
    pub tenant: TenantId,
    pub day: Day,
    pub scope: ReportScope,
}

/// The absolute totals one log partition contributes to a report, through an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPartial {
    pub key: ReportKey,
    pub source: LogPartition,
    pub counters: ReportCounters,
    /// The last log offset folded in. On a backend whose batches are not atomic with their
    /// checkpoint this may run ahead of the checkpoint after a crash: a projector resuming
    /// from the checkpoint skips events at or below it for this partial.
    pub through_offset: u64,
}

/// A day of a report, summed over every log partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyReport {
    pub day: Day,
    pub counters: ReportCounters,
}

/// Sums partials `(day, counters)` into one report per day, in day order.
pub(crate) fn sum_by_day(
    partials: impl IntoIterator<Item = (Day, ReportCounters)>,
) -> Vec<DailyReport> {
    let mut days = std::collections::BTreeMap::<Day, ReportCounters>::new();
    for (day, counters) in partials {
        days.entry(day).or_default().add(&counters);
    }
    days.into_iter()
        .map(|(day, counters)| DailyReport { day, counters })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_handle_times_before_the_epoch() {
        assert_eq!(Day::of(Timestamp(0)), Day(0));
        assert_eq!(Day::of(Timestamp(MICROS_PER_DAY - 1)), Day(0));
        assert_eq!(Day::of(Timestamp(-1)), Day(-1));
        // 2026-01-01T00:00:00Z is day 20454.
        let new_year = Timestamp(1_767_225_600_000_000);
        assert_eq!(Day::of(new_year), Day(20_454));
        assert_eq!(Day(20_454).start(), new_year);
    }

    #[test]
    fn scopes_round_trip_through_their_column() {
        let agent = ReportScope::Agent(AgentId::new("agent-7").unwrap());
        for scope in [ReportScope::Tenant, agent] {
            assert_eq!(ReportScope::from_key(&scope.key()), Some(scope));
        }
        assert_eq!(ReportScope::from_key("agent:bad id"), None);
        assert_eq!(ReportScope::from_key("team:x"), None);
    }

    #[test]
    fn partials_sum_per_day() {
        let one = ReportCounters {
            conversations_opened: 2,
            ratings: 1,
            rating_sum: 5,
            satisfied: 1,
            ..Default::default()
        };
        let summed = sum_by_day([(Day(2), one), (Day(1), one), (Day(2), one)]);
        assert_eq!(summed.len(), 2);
        assert_eq!(summed[0].day, Day(1));
        assert_eq!(summed[1].counters.conversations_opened, 4);
        assert_eq!(summed[1].counters.rating_sum, 10);
        assert_eq!(ReportCounters::from_array(one.to_array()), one);
    }
}
