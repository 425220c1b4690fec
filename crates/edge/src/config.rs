//! How an edge runs: limits, timeouts, the Origin allowlists.
//!
//! [`EdgeConfig`] is the `[edge]` table of the configuration file. Every key is optional (the
//! defaults below apply), unknown keys are refused, and every duration is a whole number of
//! milliseconds in a key ending in `_ms`:
//!
//! ```toml
//! [edge]
//! heartbeat_ms = 20000
//! connection_rate = { per_second = 20.0, burst = 40.0 }
//! allowed_origins = { acme = ["https://acme.example"] }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sessions::SessionsConfig;

/// A token bucket's shape: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// The edge's configuration. [`EdgeConfig::default`] suits a chat product.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Origins a browser may connect from, per tenant; the entry under the tenant `"*"`
    /// applies to tenants without one. A tenant with neither accepts only clients that send no
    /// Origin (native apps, servers); the origin `"*"` accepts any.
    pub allowed_origins: HashMap<String, Vec<String>>,
    /// Sites that may embed the chat widget in a frame, besides the edge's own origin: CSP
    /// sources such as `https://shop.example` (the widget's `frame-ancestors`).
    pub widget_frame_ancestors: Vec<String>,
    /// The largest text frame the protocol accepts; a larger one gets a `frame_too_large` error.
    pub max_frame_bytes: usize,
    /// The transport's hard cap: above it the socket closes with 1009.
    pub hard_frame_bytes: usize,
    /// Frames queued for one connection before it counts as slow and is cut (close 4008).
    pub send_queue: usize,
    /// How often the server pings.
    #[serde(rename = "heartbeat_ms", with = "millis")]
    pub heartbeat: Duration,
    /// How long a client may stay silent (no frame, no pong) before it is closed (4009).
    #[serde(rename = "idle_timeout_ms", with = "millis")]
    pub idle_timeout: Duration,
    /// How long a client has to authenticate when the handshake carried no token.
    #[serde(rename = "auth_timeout_ms", with = "millis")]
    pub auth_timeout: Duration,
    /// How long a session whose token expired has to send a fresh one (`auth`) after
    /// `reauth_required`, before it is closed with 4001.
    #[serde(rename = "reauth_grace_ms", with = "millis")]
    pub reauth_grace: Duration,
    /// Frames per connection.
    pub connection_rate: Rate,
    /// Frames per tenant, over every connection of the tenant on this instance.
    pub tenant_rate: Rate,
    /// Rate-limit errors in a row after which the connection is closed (4029).
    pub max_strikes: u32,
    /// The largest gap (in events) replayed on subscribe; above it the answer is `reload`.
    pub max_gap: u64,
    /// The most conversations one connection follows (`too_many_subscriptions` above).
    pub max_subscriptions: usize,
    /// The most conversations without subscribers the hub remembers (their last seq, customer
    /// and public message ids); above it, the least recently used are forgotten. Conversations
    /// with subscribers are never forgotten and do not count.
    pub hub_idle_conversations: usize,
    /// How long a subscribe waits for the read models to reach what the live tail has seen.
    /// Also how long every `not_found` answer to a subscribe takes, whatever the reason, so
    /// that its timing tells nothing (`subscribe.rs`).
    #[serde(rename = "history_wait_ms", with = "millis")]
    pub history_wait: Duration,
    /// The projector (its checkpoint name in the store) whose progress tells how far the
    /// read models hold the conversation topic.
    pub history_consumer: String,
    /// An agent is offline when no heartbeat renewed its presence for this long.
    #[serde(rename = "presence_lease_ms", with = "millis")]
    pub presence_lease: Duration,
    /// How long a draining server gives clients before it closes their sockets.
    #[serde(rename = "drain_grace_ms", with = "millis")]
    pub drain_grace: Duration,
    /// Visitor sessions (`POST /v1/sessions`): token lifetime and rate limits.
    pub sessions: SessionsConfig,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            allowed_origins: HashMap::new(),
            widget_frame_ancestors: Vec::new(),
            max_frame_bytes: 64 * 1024,
            hard_frame_bytes: 256 * 1024,
            send_queue: 512,
            heartbeat: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            auth_timeout: Duration::from_secs(10),
            reauth_grace: Duration::from_secs(30),
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
            max_subscriptions: 256,
            hub_idle_conversations: 50_000,
            history_wait: Duration::from_secs(3),
            history_consumer: "projector".to_owned(),
            presence_lease: Duration::from_secs(30),
            drain_grace: Duration::from_secs(5),
            sessions: SessionsConfig::default(),
        }
    }
}

/// A [`Duration`] as a whole number of milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional_and_durations_are_milliseconds() {
        let config: EdgeConfig = serde_json::from_str(r#"{"heartbeat_ms": 5000}"#).unwrap();
        assert_eq!(
            config,
            EdgeConfig {
                heartbeat: Duration::from_secs(5),
                ..EdgeConfig::default()
            }
        );
        let empty: EdgeConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, EdgeConfig::default());
    }

    #[test]
    fn the_defaults_round_trip_and_unknown_keys_are_refused() {
        let json = serde_json::to_value(EdgeConfig::default()).unwrap();
        assert_eq!(json["idle_timeout_ms"], 60_000);
        assert_eq!(json["connection_rate"]["burst"], 40.0);
        let back: EdgeConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, EdgeConfig::default());
        for bad in [
            r#"{"heartbeat": 5000}"#,
            r#"{"connection_rate": {"per_second": 1.0, "burst": 2.0, "x": 1}}"#,
        ] {
            assert!(serde_json::from_str::<EdgeConfig>(bad).is_err(), "{bad}");
        }
    }
}
