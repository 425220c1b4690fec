//! How an edge runs: limits, timeouts, the Origin allowlists.

use std::collections::HashMap;
use std::time::Duration;

/// A token bucket's shape: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// The edge's configuration. [`EdgeConfig::default`] suits a chat product.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// Origins a browser may connect from, per tenant; the entry under the tenant `"*"`
    /// applies to tenants without one. A tenant with neither accepts only clients that send no
    /// Origin (native apps, servers); the origin `"*"` accepts any.
    pub allowed_origins: HashMap<String, Vec<String>>,
    /// The largest text frame the protocol accepts; a larger one gets a `frame_too_large` error.
    pub max_frame_bytes: usize,
    /// The transport's hard cap: above it the socket closes with 1009.
    pub hard_frame_bytes: usize,
    /// Frames queued for one connection before it counts as slow and is cut (close 4008).
    pub send_queue: usize,
    /// How often the server pings.
    pub heartbeat: Duration,
    /// How long a client may stay silent (no frame, no pong) before it is closed (4009).
    pub idle_timeout: Duration,
    /// How long a client has to authenticate when the handshake carried no token.
    pub auth_timeout: Duration,
    /// Frames per connection.
    pub connection_rate: Rate,
    /// Frames per tenant, over every connection of the tenant on this instance.
    pub tenant_rate: Rate,
    /// Rate-limit errors in a row after which the connection is closed (4029).
    pub max_strikes: u32,
    /// The largest gap (in events) replayed on subscribe; above it the answer is `reload`.
    pub max_gap: u64,
    /// How long a subscribe waits for the read models to reach what the live tail has seen.
    pub history_wait: Duration,
    /// The projector (its checkpoint name in the store) whose progress tells how far the
    /// read models hold the conversation topic.
    pub history_consumer: String,
    /// An agent is offline when no heartbeat renewed its presence for this long.
    pub presence_lease: Duration,
    /// How long a draining server gives clients before it closes their sockets.
    pub drain_grace: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            allowed_origins: HashMap::new(),
            max_frame_bytes: 64 * 1024,
            hard_frame_bytes: 256 * 1024,
            send_queue: 512,
            heartbeat: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            connection_rate: Rate {
                per_second: 20.0,
                burst: 40.0,
            },
            tenant_rate: Rate {
                per_second: 5_000.0,
                burst: 10_000.0,
            },
            max_strikes: 50,
            max_gap: 1_000,
            history_wait: Duration::from_secs(3),
            history_consumer: "projector".to_owned(),
            presence_lease: Duration::from_secs(30),
            drain_grace: Duration::from_secs(5),
        }
    }
}
