//! The write side of switchboard: commands are checked against the current state of their
//! conversation (or agent) and the principal who sends them, and become events.

pub mod admission;
pub mod agent;
pub mod api;
pub mod command;
pub mod conversation;
pub mod error;
pub mod metrics;
pub mod routing;
pub mod tenant;
pub mod tenants;
pub mod writer;

pub use admission::{AdmissionConfig, Admitting};
pub use command::{AgentCommand, ConversationCommand, Limits};
pub use error::{CommandError, ErrorDomain};
