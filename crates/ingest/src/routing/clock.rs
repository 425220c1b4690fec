//! The driver's clock: wall-clock time as event timestamps count it, advanced by tokio's clock,
//! so that tests on `tokio::time::pause()` move the router's time with the runtime's.

use std::time::Duration;

use switchboard_events::Timestamp;
use tokio::time::Instant;

/// Event time anchored to a tokio instant.
///
/// After the anchor, time advances with tokio's monotonic clock, not the system clock: a long
/// run may drift from the writer's timestamps by what the system clock is adjusted, which is
/// seconds at worst and only moves no-answer deadlines by as much.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    anchor: Timestamp,
    at: Instant,
}

impl Clock {
    /// The system time, now.
    pub fn system() -> Self {
        Self::starting_at(Timestamp::now())
    }

    /// A clock that reads `anchor` now (tests).
    pub fn starting_at(anchor: Timestamp) -> Self {
        Self {
            anchor,
            at: Instant::now(),
        }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = i64::try_from(self.at.elapsed().as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.anchor.as_micros().saturating_add(elapsed))
    }

    /// The tokio instant at which the clock reads `at` (now, if that is past).
    pub fn instant(&self, at: Timestamp) -> Instant {
        let ahead = at
            .as_micros()
            .saturating_sub(self.anchor.as_micros())
            .max(0);
        self.at + Duration::from_micros(ahead as u64)
    }
}
