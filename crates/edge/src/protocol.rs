//! Protocol v1: the JSON frames of the WebSocket API, as `docs/protocol.md` describes them.
//!
//! Every frame is one JSON object in one text message, tagged by `type`. The version is
//! chosen at the handshake (subprotocol `switchboard.v1`) or by the `v` of the `auth` frame;
//! v1 clients ignore fields and frame types they do not know, so v1 may grow without a v2.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The subprotocol a v1 client asks for; the server echoes it when it accepts.
pub const SUBPROTOCOL_V1: &str = "switchboard.v1";
/// The prefix of the subprotocol entry that carries the token: `bearer.<jwt>`.
pub const BEARER_PREFIX: &str = "bearer.";
pub const VERSION: u32 = 1;

/// Close codes, stable across v1 (RFC 6455 codes and the private 4000–4999 range).
pub mod close {
    /// The client closed, or the server ended a session normally.
    pub const NORMAL: u16 = 1000;
    /// The server drains (shutdown or deploy): reconnect, elsewhere if you can.
    pub const GOING_AWAY: u16 = 1001;
    /// A message above the hard cap of the transport.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed; reconnect with backoff.
    pub const INTERNAL: u16 = 1011;
    /// No valid token: missing, malformed, expired, wrong issuer/audience/key/algorithm; or
    /// the session's token expired and no fresh one came within the grace after
    /// `reauth_required`.
    pub const UNAUTHENTICATED: u16 = 4001;
    /// The Origin is not on the tenant's allowlist, or the role may not connect.
    pub const FORBIDDEN: u16 = 4003;
    /// The send queue overflowed: the client did not read fast enough. Resume with `since_seq`.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No frame (nor pong) from the client within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4009;
    /// The client kept flooding after rate-limit errors.
    pub const ABUSE: u16 = 4029;
}

/// What a client sends.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// The token, when the client cannot set `Sec-WebSocket-Protocol` (first frame); later,
    /// a fresh token for the same principal, which extends the session.
    Auth {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        token: String,
        #[serde(default)]
        v: Option<u32>,
    },
    /// Opens a conversation for the connected customer.
    Open {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        #[serde(default)]
        channel: Option<String>,
    },
    /// Live events of a conversation, after the gap since `since_seq` (0: from the start).
    Subscribe {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
        #[serde(default)]
        since_seq: u64,
    },
    Unsubscribe {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
    },
    /// Posts a message; `client_msg_id` makes a retry idempotent.
    Send {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
        client_msg_id: String,
        body: String,
        #[serde(default)]
        private_note: bool,
    },
    /// Marks the conversation read up to a seq.
    Read {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
        up_to_seq: u64,
    },
    /// Typing indicator: ephemeral, never stored.
    Typing {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
        #[serde(default = "yes")]
        active: bool,
    },
    /// The agent's availability (an event of record): `online`, `away` or `offline`.
    Status {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        status: String,
    },
    /// An agent takes an unassigned conversation.
    Take {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
    },
    Resolve {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
        conversation_id: String,
    },
    /// Application-level keepalive for clients that cannot see WebSocket pings.
    Ping {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    },
}

fn yes() -> bool {
    true
}

impl ClientFrame {
    /// The frame's kind, for errors and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Open { .. } => "open",
            Self::Subscribe { .. } => "subscribe",
            Self::Unsubscribe { .. } => "unsubscribe",
            Self::Send { .. } => "send",
            Self::Read { .. } => "read",
            Self::Typing { .. } => "typing",
            Self::Status { .. } => "status",
            Self::Take { .. } => "take",
            Self::Resolve { .. } => "resolve",
            Self::Ping { .. } => "ping",
        }
    }

    /// The client's correlation reference, echoed by the answer.
    pub fn reference(&self) -> Option<&str> {
        match self {
            Self::Auth { reference, .. }
            | Self::Typing { reference, .. }
            | Self::Open { reference, .. }
            | Self::Subscribe { reference, .. }
            | Self::Unsubscribe { reference, .. }
            | Self::Send { reference, .. }
            | Self::Read { reference, .. }
            | Self::Status { reference, .. }
            | Self::Take { reference, .. }
            | Self::Resolve { reference, .. }
            | Self::Ping { reference } => reference.as_deref(),
        }
    }
}

/// The `ref` of a frame that did not parse as a [`ClientFrame`] (unknown field, wrong
/// type) or was refused before parsing (too large, rate limited): a lenient read of the one
/// field, so that every error frame echoes the `ref` of the frame it answers.
pub fn reference_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Referenced {
        #[serde(default, rename = "ref")]
        reference: Option<String>,
    }
    serde_json::from_str::<Referenced>(text).ok()?.reference
}

/// What the server sends (events are rendered by [`crate::render`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        v: u32,
        tenant_id: String,
        role: String,
        subject: String,
        max_frame_bytes: usize,
        heartbeat_ms: u64,
    },
    Ack {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<String>,
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The command had already been applied: a retry.
        duplicate: bool,
    },
    /// The gap is sent: what follows is live.
    Subscribed {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
        /// The last seq sent so far (the client's `since_seq` when the gap was empty).
        seq: u64,
    },
    Unsubscribed {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
    },
    /// The gap is too large to replay here: load history over HTTP, then subscribe again.
    Reload {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
        reason: String,
        latest_seq: u64,
    },
    Typing {
        conversation_id: String,
        role: String,
        subject: String,
        active: bool,
    },
    Presence {
        agent_id: String,
        online: bool,
    },
    Queue {
        conversation_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        position: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated_wait_s: Option<u64>,
    },
    Error {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The session's token has expired: send a fresh one in an `auth` frame within
    /// `within_ms`, or the socket closes with 4001.
    ReauthRequired {
        within_ms: u64,
    },
    /// A fresh token was accepted: the session now lasts until it expires.
    Reauthenticated {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// The server drains: reconnect (elsewhere) after the delay; the socket closes with 1001.
    Goaway {
        reason: String,
        reconnect_after_ms: u64,
    },
    Pong {
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// A conversation event; see `docs/protocol.md` for `kind` and `data`.
    Event {
        conversation_id: String,
        seq: u64,
        kind: String,
        occurred_at_us: i64,
        actor: Value,
        data: Value,
    },
}

impl ServerFrame {
    /// The frame's `type`, as the metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Welcome { .. } => "welcome",
            Self::Ack { .. } => "ack",
            Self::Subscribed { .. } => "subscribed",
            Self::Unsubscribed { .. } => "unsubscribed",
            Self::Reload { .. } => "reload",
            Self::Typing { .. } => "typing",
            Self::Presence { .. } => "presence",
            Self::Queue { .. } => "queue",
            Self::Error { .. } => "error",
            Self::ReauthRequired { .. } => "reauth_required",
            Self::Reauthenticated { .. } => "reauthenticated",
            Self::Goaway { .. } => "goaway",
            Self::Pong { .. } => "pong",
            Self::Event { .. } => "event",
        }
    }

    pub fn error(reference: Option<&str>, code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            reference: reference.map(str::to_owned),
            code: code.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"unencodable frame"}"#.to_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_with_defaults_and_refuse_unknown_fields() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"subscribe","conversation_id":"c1"}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::Subscribe {
                reference: None,
                conversation_id: "c1".into(),
                since_seq: 0
            }
        );
        let f: ClientFrame =
            serde_json::from_str(r#"{"type":"typing","conversation_id":"c1"}"#).unwrap();
        assert!(matches!(f, ClientFrame::Typing { active: true, .. }));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"launch"}"#).is_err());
    }

    #[test]
    fn the_ref_of_a_refused_frame_is_read_leniently() {
        assert_eq!(
            reference_of(r#"{"type":"ping","ref":"r1","x":1}"#).as_deref(),
            Some("r1")
        );
        assert_eq!(
            reference_of(r#"{"type":"launch","ref":"r2"}"#).as_deref(),
            Some("r2")
        );
        assert_eq!(reference_of(r#"{"type":"ping","ref":7}"#), None);
        assert_eq!(reference_of("not json"), None);
    }

    #[test]
    fn server_frames_serialize_with_their_type_and_ref() {
        let ack = ServerFrame::Ack {
            reference: Some("r1".into()),
            conversation_id: Some("c1".into()),
            seq: 7,
            message_id: None,
            duplicate: false,
        };
        assert_eq!(
            ack.to_json(),
            r#"{"type":"ack","ref":"r1","conversation_id":"c1","seq":7,"duplicate":false}"#
        );
    }
}
