//! The edge as a server: the HTTP routes (WebSocket, web UI, health; metrics are the binary's
//! admin listener's), the background
//! tasks (log tail, signals), and the drain on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use switchboard_events::token::TokenVerifier;
use switchboard_ingest::api::CommandHandler;
use switchboard_ingest::routing::QueueSignal;
use switchboard_ingest::tenants::Directory;
use switchboard_log::{EventLog, LogError};
use switchboard_store::ReadModels;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

use crate::auth;
use crate::config::EdgeConfig;
use crate::hub::Hub;
use crate::limits::TenantLimits;
use crate::protocol::SUBPROTOCOL_V1;
use crate::sessions::{SessionIssuer, Sessions};
use crate::signals::{Signal, SignalBus};
use crate::{conn, presence};

/// What the edge talks to.
pub struct EdgeDeps<H> {
    /// The write side: the writer in-process, or a gRPC forwarder.
    pub commands: Arc<H>,
    /// The log whose conversation topic the edge tails.
    pub log: Arc<dyn EventLog>,
    /// History for resume, summaries for authorization, data keys for message bodies.
    pub store: Arc<dyn ReadModels>,
    pub verifier: TokenVerifier,
    /// Typing, presence and queue signals: [`crate::MemoryBus`] in one process,
    /// [`crate::LogBus`] across instances.
    pub signals: Arc<dyn SignalBus>,
    /// The router's queue signals, when routing runs in this process. Give it to one edge:
    /// the edge republishes it on the signal bus for every instance.
    pub queue: Option<broadcast::Receiver<QueueSignal>>,
}

impl<H> std::fmt::Debug for EdgeDeps<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeDeps").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
}

pub(crate) struct Shared<H> {
    pub config: Arc<EdgeConfig>,
    /// The tenants with records: their allowed origins.
    pub tenants: Option<Directory>,
    pub verifier: TokenVerifier,
    pub commands: Arc<H>,
    pub store: Arc<dyn ReadModels>,
    pub hub: Arc<Hub>,
    pub signals: Arc<dyn SignalBus>,
    pub tenant_limits: TenantLimits,
    pub shutdown: watch::Receiver<bool>,
    pub next_connection: AtomicU64,
    pub alive: mpsc::Sender<()>,
}

/// The WebSocket gateway.
pub struct Edge<H> {
    config: EdgeConfig,
    deps: EdgeDeps<H>,
    sessions: Option<SessionIssuer>,
}

impl<H> std::fmt::Debug for Edge<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<H: CommandHandler> Edge<H> {
    pub fn new(config: EdgeConfig, deps: EdgeDeps<H>) -> Self {
        Self {
            config,
            deps,
            sessions: None,
        }
    }

    /// Serves visitor sessions (`POST /v1/sessions`) for the tenants of the issuer's
    /// directory, and checks their connections' Origin against their settings.
    pub fn with_sessions(mut self, sessions: SessionIssuer) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Starts the edge's background tasks (log tail, signals) and gives its routes — the
    /// WebSocket, the web UI, health and metrics — with the [`Drain`] that ends its sessions.
    /// The caller serves the router on a listener of its own (the binary's, with its limits
    /// and TLS) and runs the drain beside it.
    pub async fn start(self) -> Result<(Router, Drain), EdgeError> {
        let Self {
            config,
            deps,
            sessions,
        } = self;
        let hub = Arc::new(Hub::new(deps.store.clone(), config.hub_idle_conversations));
        hub.follow(deps.log.clone()).await?;
        tokio::spawn(presence::dispatch(
            hub.clone(),
            deps.signals.subscribe(),
            config.presence_lease / 4,
        ));
        if let Some(queue) = deps.queue {
            tokio::spawn(republish_queue(queue, deps.signals.clone()));
        }
        let (stop, stopped) = watch::channel(false);
        let (alive, gone) = mpsc::channel::<()>(1);
        let grace = config.drain_grace;
        let config = Arc::new(config);
        let session_routes = sessions.as_ref().map(|issuer| {
            let sessions = Sessions::new(
                issuer.clone(),
                deps.verifier.clone(),
                config.sessions,
                config.clone(),
            );
            Router::new()
                .route(
                    "/v1/sessions",
                    post(crate::sessions::start).options(crate::sessions::preflight),
                )
                .with_state(Arc::new(sessions))
        });
        let shared = Arc::new(Shared {
            tenant_limits: TenantLimits::new(config.tenant_rate),
            tenants: sessions.map(|s| s.directory),
            config,
            verifier: deps.verifier,
            commands: deps.commands,
            store: deps.store,
            hub,
            signals: deps.signals,
            shutdown: stopped,
            next_connection: AtomicU64::new(1),
            alive,
        });
        let mut app = Router::new()
            .route("/v1/ws", get(upgrade::<H>))
            .route("/healthz", get(|| async { "ok" }))
            .merge(crate::ui::routes(&shared.config)?)
            .with_state(shared);
        if let Some(routes) = session_routes {
            app = app.merge(routes);
        }
        Ok((app, Drain { stop, gone, grace }))
    }

    /// Serves on `listener` with axum's defaults until `shutdown` resolves, then drains: for
    /// the crate's tests and examples. The binary serves [`Edge::start`]'s router itself.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), EdgeError> {
        let (app, drain) = self.start().await?;
        let (fired, on_fire) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = fired.send(());
        };
        let served = axum::serve(listener, app).with_graceful_shutdown(signal);
        let ((), served) = tokio::join!(
            drain.run(async {
                let _ = on_fire.await;
            }),
            served
        );
        served?;
        Ok(())
    }
}

/// The end of an edge's sessions: on shutdown every client gets a `goaway` frame and close
/// 1001; [`Drain::run`] returns once they are gone (and the router dropped) or after the drain
/// grace.
#[derive(Debug)]
pub struct Drain {
    stop: watch::Sender<bool>,
    gone: mpsc::Receiver<()>,
    grace: std::time::Duration,
}

impl Drain {
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(self.grace, self.gone.recv()).await;
    }
}

async fn upgrade<H: CommandHandler>(
    State(shared): State<Arc<Shared<H>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let offer = auth::offer(&headers);
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let config = &shared.config;
    let mut ws = ws
        .max_message_size(config.hard_frame_bytes)
        .max_frame_size(config.hard_frame_bytes)
        // Allocated up front per connection and grown on demand: small, because most
        // connections idle (6.7 KiB per idle connection in total, measured by edge_load).
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .accept_unmasked_frames(false);
    if offer.v1 {
        ws.set_selected_protocol(HeaderValue::from_static(SUBPROTOCOL_V1));
    }
    let alive = shared.alive.clone();
    ws.on_upgrade(move |socket| conn::run(socket, shared, offer.token, origin, alive))
}

async fn republish_queue(mut queue: broadcast::Receiver<QueueSignal>, bus: Arc<dyn SignalBus>) {
    loop {
        let signal = match queue.recv().await {
            Ok(QueueSignal::Waiting { tenant, entry }) => Signal::Queue {
                tenant: tenant.to_string(),
                conversation: entry.conversation.to_string(),
                position: u32::try_from(entry.position).ok(),
                estimated_wait_s: entry.estimated_wait.map(|d| d.as_secs()),
            },
            Ok(QueueSignal::Left {
                tenant,
                conversation,
            }) => Signal::Queue {
                tenant: tenant.to_string(),
                conversation: conversation.to_string(),
                position: None,
                estimated_wait_s: None,
            },
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        bus.publish(signal);
    }
}
