#![doc = include_str!("routing.md")]

pub mod admission;
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

pub use admission::{Admission, Held, Resolving};
pub use clock::Clock;
pub use config::{CustomerCaps, Distribution, RoutingConfig, RoutingConfigs};
pub use decide::{Decision, Need};
pub use driver::{DriverConfig, RouterHandle};
pub use estimate::QueueEntry;
pub use hours::{BusinessHours, Day, Opening};
pub use router::Router;
pub use signals::QueueSignal;
pub use state::{CustomerLoad, TenantState};
