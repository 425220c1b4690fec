//! What each client frame does, and who may do it. Every frame is checked against the
//! connection's principal: its tenant scopes every key, customers act only in their own
//! conversations, and the write side checks every command again.

use axum::extract::ws::{Utf8Bytes, WebSocket};
use switchboard_events::Seq;
use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::id::{AgentId, ClientMsgId, ConversationId, CorrelationId, CustomerId};
use switchboard_events::principal::Role;
use switchboard_ingest::api::{Ack, CommandHandler};
use switchboard_ingest::command::{OpenConversation, PostMessage};
use switchboard_ingest::{AgentCommand, CommandError, ConversationCommand};

use tracing::Instrument;

use crate::auth;
use crate::conn::{Closing, OPENED_KEPT, Session, TokenClock, role_name};
use crate::hub::Handle;
use crate::metrics;
use crate::protocol::{ClientFrame, ServerFrame, close, reference_of};
use crate::signals::Signal;

impl<H: CommandHandler> Session<H> {
    /// Handles one text frame; `Some` closes the connection.
    pub(crate) async fn on_text(
        &mut self,
        socket: &mut WebSocket,
        text: Utf8Bytes,
    ) -> Option<Closing> {
        let read_at = std::time::Instant::now();
        let config = &self.shared.config;
        if text.len() > config.max_frame_bytes {
            metrics::refused_frame("too_large");
            let message = format!(
                "frame is {} bytes, the limit is {}",
                text.len(),
                config.max_frame_bytes
            );
            let reference = reference_of(&text);
            self.handle.frame(&ServerFrame::error(
                reference.as_deref(),
                "frame_too_large",
                message,
            ));
            return self.strike();
        }
        let limited = match self.bucket.take() {
            Err(retry) => Err((retry, "rate_limited_connection")),
            Ok(()) => self
                .shared
                .tenant_limits
                .take(self.principal.tenant.as_str())
                .map_err(|retry| (retry, "rate_limited_tenant")),
        };
        if let Err((retry_after_ms, reason)) = limited {
            metrics::refused_frame(reason);
            self.handle.frame(&ServerFrame::Error {
                reference: reference_of(&text),
                code: "rate_limited".into(),
                message: "too many frames: slow down".into(),
                retry_after_ms: Some(retry_after_ms),
            });
            return self.strike();
        }
        let frame = match serde_json::from_str::<ClientFrame>(&text) {
            Ok(frame) => frame,
            Err(error) => {
                metrics::received("unreadable");
                metrics::refused_frame("unreadable");
                self.handle.frame(&ServerFrame::error(
                    reference_of(&text).as_deref(),
                    "bad_frame",
                    format!("unreadable frame: {error}"),
                ));
                return self.strike();
            }
        };
        self.strikes = 0;
        metrics::received(frame.kind());
        self.received = (read_at, frame.kind());
        // The root of the frame's trace: its command (run on a lane, in this span) carries it
        // to ingest, the log, the projector and every edge that delivers the event.
        let span = tracing::debug_span!(
            "edge.frame",
            frame = frame.kind(),
            tenant = %self.principal.tenant,
        );
        self.dispatch(socket, frame).instrument(span).await;
        None
    }

    fn strike(&mut self) -> Option<Closing> {
        self.strikes += 1;
        (self.strikes > self.shared.config.max_strikes)
            .then_some(Closing(close::ABUSE, "too many refused frames"))
    }

    async fn dispatch(&mut self, socket: &mut WebSocket, frame: ClientFrame) {
        let reference = frame.reference().map(str::to_owned);
        let p = self.principal.clone();
        match frame {
            ClientFrame::Auth { token, .. } => self.reauthenticate(reference, &token),
            ClientFrame::Ping { reference } => self.handle.frame(&ServerFrame::Pong { reference }),
            ClientFrame::Open { channel, .. } => {
                if p.role != Role::Customer {
                    return self.refuse(
                        reference,
                        "forbidden",
                        "only a customer opens a conversation here",
                    );
                }
                let Ok(customer_id) = CustomerId::new(p.subject.as_str()) else {
                    return self.refuse(
                        reference,
                        "invalid_argument",
                        "the token's subject is not a customer id",
                    );
                };
                let channel = match channel.as_deref() {
                    None | Some("web") => Channel::Web,
                    Some("api") => Channel::Api,
                    Some(other) => {
                        return self.refuse(
                            reference,
                            "invalid_argument",
                            format!("unknown channel {other:?}"),
                        );
                    }
                };
                let command = ConversationCommand::Open(OpenConversation {
                    customer_id,
                    channel,
                    priority: Priority::Normal,
                    team_id: None,
                    required_skills: Vec::new(),
                    vip: false,
                    attributes: Default::default(),
                    customer_name: None,
                    customer_email: None,
                });
                // Inline, so that a subscribe right after knows this customer owns it.
                let result = self
                    .shared
                    .commands
                    .conversation(p, None, command, correlation())
                    .await;
                if let Ok(ack) = &result
                    && let Ok(id) = ack.stream_id.parse()
                {
                    // Only the latest are kept: an older one is found by the hub or the store.
                    if self.opened.len() >= OPENED_KEPT {
                        self.opened.clear();
                    }
                    self.opened.insert(id);
                }
                answer(&self.handle, reference, result, self.received);
            }
            ClientFrame::Subscribe {
                conversation_id,
                since_seq,
                ..
            } => {
                self.subscribe(socket, reference, conversation_id, since_seq)
                    .await;
            }
            ClientFrame::Unsubscribe {
                conversation_id, ..
            } => {
                let Some(key) = self.key(&conversation_id) else {
                    return self.refuse(reference, "not_found", "conversation not found");
                };
                if self
                    .subscriptions
                    .remove(conversation_id.as_str())
                    .is_none()
                {
                    return self.refuse(
                        reference,
                        "not_subscribed",
                        "not subscribed to this conversation",
                    );
                }
                metrics::subscriptions(-1);
                self.shared.hub.unsubscribe(&key, self.handle.id);
                self.handle.frame(&ServerFrame::Unsubscribed {
                    reference,
                    conversation_id,
                });
            }
            ClientFrame::Send {
                conversation_id,
                client_msg_id,
                body,
                private_note,
                ..
            } => {
                let Ok(client_msg_id) = ClientMsgId::new(client_msg_id) else {
                    return self.refuse(reference, "invalid_argument", "invalid client_msg_id");
                };
                let post = PostMessage {
                    client_msg_id,
                    body,
                    attachments: Vec::new(),
                    private_note,
                };
                self.command(
                    reference,
                    conversation_id,
                    ConversationCommand::PostMessage(post),
                );
            }
            ClientFrame::Read {
                conversation_id,
                up_to_seq,
                ..
            } => {
                let command = ConversationCommand::MarkRead {
                    up_to_seq: Seq(up_to_seq),
                };
                self.command(reference, conversation_id, command);
            }
            ClientFrame::Take {
                conversation_id, ..
            } => {
                // The role, not the subject: a supervisor's or a service's subject parses as
                // an agent id too, and would assign the conversation to no agent at all.
                let (true, Ok(agent_id)) =
                    (p.role == Role::Agent, AgentId::new(p.subject.as_str()))
                else {
                    return self.refuse(
                        reference,
                        "forbidden",
                        "only an agent takes a conversation",
                    );
                };
                let policy = switchboard_events::conversation::AssignmentPolicy::Manual;
                self.command(
                    reference,
                    conversation_id,
                    ConversationCommand::Assign { agent_id, policy },
                );
            }
            ClientFrame::Resolve {
                conversation_id, ..
            } => {
                self.command(reference, conversation_id, ConversationCommand::Resolve);
            }
            ClientFrame::Typing {
                conversation_id,
                active,
                ..
            } => {
                if !self.subscriptions.contains_key(conversation_id.as_str()) {
                    return self.refuse(reference, "not_subscribed", "subscribe before typing");
                }
                self.shared.signals.publish(Signal::Typing {
                    tenant: p.tenant.to_string(),
                    conversation: conversation_id,
                    role: role_name(p.role).to_owned(),
                    subject: p.subject.to_string(),
                    active,
                });
            }
            ClientFrame::Status { status, .. } => {
                let status = match status.as_str() {
                    "online" => AgentStatus::Online,
                    "away" => AgentStatus::Away,
                    "offline" => AgentStatus::Offline,
                    _ => {
                        return self.refuse(
                            reference,
                            "invalid_argument",
                            "status is online, away or offline",
                        );
                    }
                };
                let (true, Ok(agent)) = (p.role == Role::Agent, AgentId::new(p.subject.as_str()))
                else {
                    return self.refuse(reference, "forbidden", "only an agent sets its status");
                };
                let commands = self.shared.commands.clone();
                let handle = self.handle.clone();
                let received = self.received;
                self.lanes.spawn(None, async move {
                    let result = commands
                        .agent(p, agent, AgentCommand::SetStatus { status }, correlation())
                        .await;
                    answer(&handle, reference, result, received);
                });
            }
        }
    }

    /// Runs a conversation command off the connection loop, after the commands sent before it
    /// to the same conversation (`lanes.rs`); the ack comes through the queue.
    fn command(
        &mut self,
        reference: Option<String>,
        conversation_id: String,
        command: ConversationCommand,
    ) {
        let Ok(id) = conversation_id.parse::<ConversationId>() else {
            return self.refuse(reference, "not_found", "conversation not found");
        };
        let commands = self.shared.commands.clone();
        let handle = self.handle.clone();
        let principal = self.principal.clone();
        let received = self.received;
        self.lanes.spawn(Some(id.clone()), async move {
            let result = commands
                .conversation(principal, Some(id), command, correlation())
                .await;
            answer(&handle, reference, result, received);
        });
    }

    /// A fresh token for the same principal extends the session to its expiry. Any other
    /// token gets the one answer every token failure gets, and the session keeps its old end.
    fn reauthenticate(&mut self, reference: Option<String>, token: &str) {
        match auth::verify(&self.shared.verifier, token) {
            Ok(fresh) if fresh.principal == self.principal => {
                self.clock = TokenClock::new(fresh.expires_at);
                self.handle
                    .frame(&ServerFrame::Reauthenticated { reference });
            }
            _ => {
                metrics::refused_frame("unauthorized");
                let failure = auth::AuthFailure::Token;
                self.refuse(reference, failure.code(), failure.to_string());
            }
        }
    }

    pub(crate) fn refuse(&self, reference: Option<String>, code: &str, message: impl Into<String>) {
        if code == "forbidden" {
            metrics::refused_frame("unauthorized");
        }
        self.handle
            .frame(&ServerFrame::error(reference.as_deref(), code, message));
    }
}

fn correlation() -> CorrelationId {
    CorrelationId(uuid::Uuid::now_v7())
}

/// Queues a command's ack or error; `received` is when and what the client frame was.
fn answer(
    handle: &Handle,
    reference: Option<String>,
    result: Result<Ack, CommandError>,
    received: (std::time::Instant, &'static str),
) {
    if result.is_ok() {
        metrics::acked(received.1, received.0);
    }
    let frame = match result {
        Ok(ack) => ServerFrame::Ack {
            reference,
            conversation_id: Some(ack.stream_id),
            seq: ack.seq.0,
            message_id: ack.message_id.map(|m| m.to_string()),
            duplicate: ack.unchanged,
        },
        Err(error) => ServerFrame::Error {
            reference,
            code: error.code().to_owned(),
            message: error.to_string(),
            retry_after_ms: matches!(
                error,
                CommandError::Overloaded | CommandError::Unavailable(_)
            )
            .then_some(1000),
        },
    };
    handle.frame(&frame);
}
