//! One WebSocket connection: authentication, then one loop that reads frames, drains the send
//! queue, pings, and watches the idle timer, the slow-consumer switch and shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::now_seconds;
use switchboard_ingest::api::CommandHandler;
use switchboard_store::timeline::Audience;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::auth;
use crate::hub::{Handle, Key, Outbound};
use crate::lanes::Lanes;
use crate::limits::Bucket;
use crate::metrics;
use crate::protocol::{ClientFrame, ServerFrame, VERSION, close, reference_of};
use crate::server::Shared;
use crate::signals::Signal;

/// The conversations a connection remembers having opened.
pub(crate) const OPENED_KEPT: usize = 64;

/// Why a session ended, as the close frame says it.
pub(crate) struct Closing(pub u16, pub &'static str);

/// The state of an authenticated connection.
pub(crate) struct Session<H> {
    pub shared: Arc<Shared<H>>,
    pub principal: Principal,
    /// When the token runs out.
    pub clock: TokenClock,
    pub handle: Handle,
    /// Subscribed conversations and the last seq sent for each: live events at or below it
    /// are duplicates of the gap and dropped.
    pub subscriptions: HashMap<Arc<str>, u64>,
    /// Conversations this connection opened lately (the customer owns them), at most
    /// [`OPENED_KEPT`], so that a subscribe right after an open needs no lookup.
    pub opened: HashSet<ConversationId>,
    /// Commands in flight, per conversation (`None`: the agent's own), run in order.
    pub lanes: Lanes<Option<ConversationId>>,
    pub bucket: Bucket,
    pub strikes: u32,
    /// When the frame being handled was read, and its type: what its ack is measured from.
    pub received: (std::time::Instant, &'static str),
}

/// Runs a connection to its end. `token` came from the handshake, if at all.
pub(crate) async fn run<H: CommandHandler>(
    mut socket: WebSocket,
    shared: Arc<Shared<H>>,
    token: Option<String>,
    origin: Option<String>,
    _alive: mpsc::Sender<()>,
) {
    metrics::OPENED_CONNECTIONS.inc();
    metrics::OPEN_CONNECTIONS.inc();
    let (token, reference) = match token {
        Some(token) => (Some(token), None),
        None => first_frame_token(&mut socket, &shared).await,
    };
    let authenticated = token
        .as_deref()
        .ok_or(auth::AuthFailure::Token)
        .and_then(|t| {
            auth::authenticate(
                &shared.verifier,
                &shared.config,
                shared.tenants.as_ref(),
                t,
                origin.as_deref(),
            )
        });
    let ending = match authenticated {
        Ok(authenticated) => serve(&mut socket, shared, authenticated).await,
        Err(failure) => {
            if let auth::AuthFailure::Origin(_) = failure {
                metrics::refused_connection("origin");
            }
            let frame =
                ServerFrame::error(reference.as_deref(), failure.code(), failure.to_string());
            let _ = socket.send(Message::Text(frame.to_json().into())).await;
            match failure {
                auth::AuthFailure::Token => Closing(close::UNAUTHENTICATED, "unauthenticated"),
                auth::AuthFailure::Origin(_) => Closing(close::FORBIDDEN, "origin forbidden"),
            }
        }
    };
    let Closing(code, reason) = ending;
    // Bounded: a client that stopped reading must not hold the connection open forever.
    let closed = async {
        let close = CloseFrame {
            code,
            reason: reason.into(),
        };
        socket.send(Message::Close(Some(close))).await?;
        // The closing handshake: read (and drop) what the client still sends until its close,
        // so that unread frames do not make the kernel reset the connection, losing the
        // frames and the close code on their way to the client.
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
        Ok::<_, axum::Error>(())
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, closed).await;
    metrics::closed(code);
}

/// How long the last frames and the close frame of a session may take to send.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Waits for an `auth` frame as the first frame, within the auth timeout: its token and `ref`.
async fn first_frame_token<H>(
    socket: &mut WebSocket,
    shared: &Shared<H>,
) -> (Option<String>, Option<String>) {
    let first = tokio::time::timeout(shared.config.auth_timeout, socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        return (None, None);
    };
    match serde_json::from_str::<ClientFrame>(&text) {
        Ok(ClientFrame::Auth {
            token,
            v,
            reference,
        }) if v.unwrap_or(VERSION) == VERSION => (Some(token), reference),
        _ => (None, reference_of(&text)),
    }
}

/// When the session's token runs out: `reauth_required` at its expiry, the close one grace
/// later, unless a fresh token came meanwhile.
#[derive(Debug)]
pub(crate) struct TokenClock {
    expires: Instant,
    asked: bool,
}

/// The longest a session runs before it is asked for a fresh token, whatever its `exp`.
const MAX_SESSION: Duration = Duration::from_secs(365 * 24 * 3600);

impl TokenClock {
    /// From a token's `exp` (seconds since the Unix epoch, against the system clock) to the
    /// runtime's clock, which tests pause.
    pub fn new(expires_at: u64) -> Self {
        let left = Duration::from_secs(expires_at.saturating_sub(now_seconds())).min(MAX_SESSION);
        Self {
            expires: Instant::now() + left,
            asked: false,
        }
    }

    fn next(&self, grace: Duration) -> Instant {
        if self.asked {
            self.expires + grace
        } else {
            self.expires
        }
    }
}

async fn serve<H: CommandHandler>(
    socket: &mut WebSocket,
    shared: Arc<Shared<H>>,
    authenticated: auth::Authenticated,
) -> Closing {
    let auth::Authenticated {
        principal,
        expires_at,
    } = authenticated;
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let (handle, mut rx, cut) = Handle::new(id, shared.config.send_queue);
    let welcome = ServerFrame::Welcome {
        v: VERSION,
        tenant_id: principal.tenant.to_string(),
        role: role_name(principal.role).to_owned(),
        subject: principal.subject.to_string(),
        max_frame_bytes: shared.config.max_frame_bytes,
        heartbeat_ms: shared.config.heartbeat.as_millis() as u64,
    };
    metrics::sent(welcome.kind());
    if send_text(socket, welcome.to_json().into()).await.is_err() {
        return Closing(close::NORMAL, "");
    }
    let staff = principal.role.is_staff();
    if staff {
        shared
            .hub
            .add_staff(principal.tenant.clone(), handle.clone());
    }
    let mut session = Session {
        bucket: Bucket::new(shared.config.connection_rate),
        shared: shared.clone(),
        principal,
        clock: TokenClock::new(expires_at),
        handle,
        subscriptions: HashMap::new(),
        opened: HashSet::new(),
        lanes: Lanes::default(),
        strikes: 0,
        received: (std::time::Instant::now(), "auth"),
    };
    let closing = session.run(socket, &mut rx, &cut).await;
    if closing.0 != close::SLOW_CONSUMER {
        // The answers to the frames that led here (the rate-limit errors before 4029 ...).
        let _ = tokio::time::timeout(CLOSE_GRACE, session.flush(socket, &mut rx)).await;
    }
    session.leave();
    closing
}

impl<H: CommandHandler> Session<H> {
    async fn run(
        &mut self,
        socket: &mut WebSocket,
        rx: &mut mpsc::Receiver<Outbound>,
        cut: &tokio::sync::Notify,
    ) -> Closing {
        let config = self.shared.config.clone();
        let mut shutdown = self.shared.shutdown.clone();
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + config.heartbeat, config.heartbeat);
        let presence_every = config.presence_lease / 3;
        let mut presence = tokio::time::interval(presence_every);
        let agent = self.principal.role == Role::Agent;
        let mut idle_deadline = Instant::now() + config.idle_timeout;
        loop {
            tokio::select! {
                biased;
                _ = cut.notified() => return Closing(close::SLOW_CONSUMER, "send queue overflow"),
                _ = shutdown.changed() => {
                    let goaway = ServerFrame::Goaway {
                        reason: "draining".into(),
                        reconnect_after_ms: 0,
                    };
                    let _ = send_text(socket, goaway.to_json().into()).await;
                    return Closing(close::GOING_AWAY, "server draining");
                }
                _ = sleep_until(idle_deadline) => return Closing(close::IDLE_TIMEOUT, "idle timeout"),
                _ = sleep_until(self.clock.next(config.reauth_grace)) => {
                    if self.clock.asked {
                        return Closing(close::UNAUTHENTICATED, "token expired");
                    }
                    self.clock.asked = true;
                    self.handle.frame(&ServerFrame::ReauthRequired {
                        within_ms: config.reauth_grace.as_millis() as u64,
                    });
                }
                received = socket.recv() => {
                    idle_deadline = Instant::now() + config.idle_timeout;
                    match received {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(closing) = self.on_text(socket, text).await {
                                return closing;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let error = ServerFrame::error(None, "unsupported", "protocol v1 is text frames of JSON");
                            self.handle.frame(&error);
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return Closing(close::NORMAL, ""),
                        Some(Err(_)) => return Closing(close::TOO_BIG, "protocol error or frame above the hard cap"),
                    }
                }
                Some(out) = rx.recv() => {
                    if let Some(text) = self.admit(out) && send_text(socket, text).await.is_err() {
                        return Closing(close::NORMAL, "");
                    }
                }
                _ = heartbeat.tick() => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return Closing(close::NORMAL, "");
                    }
                }
                _ = presence.tick(), if agent => self.renew_presence(true),
            }
        }
    }

    /// Sends what is already queued.
    async fn flush(&mut self, socket: &mut WebSocket, rx: &mut mpsc::Receiver<Outbound>) {
        while let Ok(out) = rx.try_recv() {
            if let Some(text) = self.admit(out)
                && send_text(socket, text).await.is_err()
            {
                return;
            }
        }
    }

    /// Drops live events at or below what the gap already sent, or for a conversation no
    /// longer subscribed.
    fn admit(&mut self, out: Outbound) -> Option<Utf8Bytes> {
        match out {
            Outbound::Frame(text) => Some(Utf8Bytes::from(text.as_ref())),
            Outbound::Event(event) => {
                let last = self.subscriptions.get_mut(&event.conversation)?;
                if event.seq <= *last {
                    return None;
                }
                *last = event.seq;
                Some(event.json.clone())
            }
        }
    }

    fn renew_presence(&self, online: bool) {
        self.shared.signals.publish(Signal::Presence {
            tenant: self.principal.tenant.to_string(),
            agent: self.principal.subject.to_string(),
            online,
            lease_ms: self.shared.config.presence_lease.as_millis() as u64,
        });
    }

    /// Unregisters everything the connection holds.
    fn leave(&mut self) {
        metrics::subscriptions(-(self.subscriptions.len() as i64));
        let tenant: TenantId = self.principal.tenant.clone();
        for conversation in self.subscriptions.keys() {
            if let Ok(id) = conversation.parse::<ConversationId>() {
                self.shared
                    .hub
                    .unsubscribe(&(tenant.clone(), id), self.handle.id);
            }
        }
        if self.principal.role.is_staff() {
            self.shared.hub.remove_staff(&tenant, self.handle.id);
        }
        if self.principal.role == Role::Agent {
            self.renew_presence(false);
        }
    }

    pub(crate) fn key(&self, conversation: &str) -> Option<Key> {
        Some((self.principal.tenant.clone(), conversation.parse().ok()?))
    }

    pub(crate) fn audience(&self) -> Audience {
        if self.principal.role == Role::Customer {
            Audience::Customer
        } else {
            Audience::Staff
        }
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "customer",
        Role::Agent => "agent",
        Role::Supervisor => "supervisor",
        Role::Auditor => "auditor",
        Role::Service => "service",
    }
}

pub(crate) async fn send_text(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), axum::Error> {
    socket.send(Message::Text(text)).await
}
