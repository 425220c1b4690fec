//! One conversation on the write side: its state, folded from its events, and the rules that
//! turn a command into new events.

pub mod decide;
pub mod stamp;
pub mod state;

#[cfg(test)]
mod tests;

pub use decide::{Context, Decision, Sealer, decide, may_set_on_open};
pub use state::{ConversationState, FoldError, Status};
