//! Folds the event log into read models, checkpoints, archives cold history.
//!
//! Not built yet: this crate holds the workspace slot that its issue fills. It exports nothing.
