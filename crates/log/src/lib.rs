//! The event-log port: one trait for appending, reading, tailing and consumer groups, with an embedded durable backend and a Kafka backend.
//!
//! Not built yet: this crate holds the workspace slot that its issue fills. It exports nothing.
