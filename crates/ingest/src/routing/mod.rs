//! Routing: per tenant, one router keeps the queue and the agents' load, folded from the
//! conversation and agent events, and decides who gets which conversation. Its decisions go
//! through the [`CommandHandler`](crate::api::CommandHandler) as commands of the tenant's
//! service principal, so they become events (`AgentAssigned` with the policy that chose,
//! `ConversationQueued`, the offline message) and a replay of the log reproduces them.
//!
//! - [`Router`] is the pure core: [`Router::apply_conversation`] and [`Router::apply_agent`]
//!   fold events, [`Router::decide`] decides at a given time (the rules are in [`decide`]),
//!   [`Router::queue`] gives positions and wait estimates ([`estimate`]), [`Router::admit`]
//!   sheds load.
//! - [`RoutingConfig`] is a tenant's policy, no-answer timeout, business hours and queue limit.
//! - [`driver::start`] runs the routers as a task over the event log and a command handler;
//!   its [`RouterHandle`] gives the [`Admission`] gate and the [`QueueSignal`] broadcast.

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
pub use signals::{Admission, QueueSignal};
pub use state::TenantState;
