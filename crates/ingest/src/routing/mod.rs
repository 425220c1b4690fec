#![doc = include_str!("routing.md")]

pub mod clock;
pub mod config;
pub mod decide;
pub mod driver;
pub mod estimate;
mod follow;
pub mod hours;
mod router;
pub mod signals;
pub mod state;

#[cfg(test)]
mod tests;

pub use clock::Clock;
pub use config::{Distribution, RoutingConfig, RoutingConfigs};
pub use decide::{Decision, Need};
pub use driver::{DriverConfig, RouterHandle};
pub use estimate::QueueEntry;
pub use hours::{BusinessHours, Opening, Weekday};
pub use router::Router;
pub use signals::{Admission, Admitting, QueueSignal};
pub use state::TenantState;
