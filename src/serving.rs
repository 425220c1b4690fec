//! How every role serves: one shutdown signal for the process, one way to run a listener until
//! it fires — HTTP (axum), gRPC (tonic) and the edge's WebSockets alike, with the same limits
//! and TLS — and the admin listener with health, readiness and metrics.
//!
//! Every listener runs [`Listeners::serve`]: an accept loop capped by a semaphore, hyper-util's
//! connection builder with its header-read timeout and HTTP/2 keep-alive, a watchdog per
//! connection for the handshake and idle deadlines, and a deadline on every request body.
//! The limits are the `[listen.limits]` table ([`Limits`]); `[listen.tls]` ([`crate::tls`])
//! puts rustls in front of the public listeners. Every gRPC call runs within its client's
//! `grpc-timeout` ([`deadline`]).

mod connection;
mod deadline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use switchboard_events::Topic;
use switchboard_log::EventLog;
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::{CheckpointKey, LogPartition};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tls::Tls;

/// The process's stop signal: cloned into every service, fired once.
#[derive(Clone, Debug)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Fires the [`Shutdown`] it was made with.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

impl Shutdown {
    pub fn new() -> (Trigger, Self) {
        let (tx, rx) = watch::channel(false);
        (Trigger(tx), Self { rx })
    }

    /// Resolves once the process stops (at once if it already has).
    pub async fn wait(mut self) {
        // An error means the trigger is gone, which also means stop.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    /// The signal as the `watch` receiver the crates' long-running tasks take.
    pub fn receiver(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

/// What asks the process to stop: ctrl-c (SIGINT) from a terminal, or SIGTERM, which
/// Kubernetes, compose and systemd send before they kill. Either one drains the process the
/// same way. The handlers are installed when this is called, so a signal that arrives while
/// the roles start is not lost; call it inside the runtime.
pub fn stop_requested() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "stop requested");
    })
}

/// Binds a listener, naming it in the error.
pub async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the {what} listener to {address}"))
}

/// What every listener enforces on its connections: the `[listen.limits]` table. Durations
/// are whole milliseconds in keys ending in `_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// From accept to the first request's complete head: the TLS handshake, the HTTP/2
    /// preface and the headers. A slow client (slowloris) is dropped when it runs out.
    pub handshake_timeout_ms: u64,
    /// Each later HTTP/1 request head, which is also how long a kept-alive HTTP/1 connection
    /// may wait for its next request.
    pub header_read_timeout_ms: u64,
    /// How long a request body may take to arrive whole; then the request fails (400) and
    /// its connection closes.
    pub body_timeout_ms: u64,
    /// A connection with no request under way for this long is closed (HTTP/2 mostly: HTTP/1
    /// runs out of `header_read_timeout_ms` first). WebSockets have the edge's own timers.
    pub idle_timeout_ms: u64,
    /// Connections open at once on each listener but the edge's; one more is closed at once.
    pub max_connections: usize,
    /// Connections open at once on the edge, WebSockets included.
    pub edge_max_connections: usize,
    /// The largest request head: HTTP/1's read buffer (at least 8192), HTTP/2's header list.
    pub max_header_bytes: usize,
    /// HTTP/2: how often an idle peer is pinged, and how long its answer may take.
    pub http2_keepalive_interval_ms: u64,
    pub http2_keepalive_timeout_ms: u64,
    /// HTTP/2: requests under way at once on one connection.
    pub http2_max_concurrent_streams: u32,
    /// On shutdown, how long the requests under way have to finish before their connections
    /// are dropped.
    pub drain_grace_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout_ms: 5_000,
            header_read_timeout_ms: 5_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            edge_max_connections: 100_000,
            max_header_bytes: 64 * 1024,
            http2_keepalive_interval_ms: 30_000,
            http2_keepalive_timeout_ms: 10_000,
            http2_max_concurrent_streams: 256,
            drain_grace_ms: 10_000,
        }
    }
}

/// What a listener serves: decides its protocols, its connection cap and whether TLS applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// HTTP/1.1 and HTTP/2 (ALPN `h2`, `http/1.1`; prior knowledge in clear).
    Http,
    /// HTTP/2 only.
    Grpc,
    /// The edge: HTTP/1.1 with upgrades (ALPN `http/1.1`), capped by `edge_max_connections`.
    WebSocket,
    /// The operator's listener: HTTP, never TLS.
    Admin,
}

/// Every listener of the process, with the same limits and TLS.
#[derive(Clone, Debug)]
pub struct Listeners {
    limits: Limits,
    tls: Option<Tls>,
}

impl Listeners {
    pub fn new(limits: Limits, tls: Option<Tls>) -> Self {
        Self { limits, tls }
    }

    /// The same listeners without TLS.
    pub fn plain(&self) -> Self {
        Self {
            limits: self.limits,
            tls: None,
        }
    }

    /// Serves `router` on `listener` until shutdown, then lets the requests under way finish
    /// (within the drain grace).
    pub fn serve(
        &self,
        listener: TcpListener,
        kind: Kind,
        router: Router,
        shutdown: Shutdown,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let tls = match kind {
            Kind::Admin => None,
            _ => self.tls.as_ref().map(|tls| tls.acceptor(kind)),
        };
        connection::accept(listener, kind, self.limits, tls, router, shutdown)
    }

    /// Serves gRPC services (as one router, unknown methods answering `unimplemented`), each
    /// call within the deadline its client sent (`grpc-timeout`, [`deadline`]).
    pub fn grpc(
        &self,
        listener: TcpListener,
        routes: tonic::service::Routes,
        shutdown: Shutdown,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let router = routes
            .into_axum_router()
            .layer(axum::middleware::from_fn(deadline::enforce));
        self.serve(listener, Kind::Grpc, router, shutdown)
    }
}

/// What `/readyz` checks: the roles' own flags (set once they have claimed and rebuilt what
/// they own) and whether the log and the store answer.
#[derive(Clone, Debug, Default)]
pub struct Health {
    flags: Vec<(&'static str, Arc<AtomicBool>)>,
    log: Option<Arc<dyn EventLog>>,
    store: Option<Arc<dyn ReadModels>>,
}

impl Health {
    pub fn new(log: Arc<dyn EventLog>, store: Arc<dyn ReadModels>) -> Self {
        Self {
            flags: Vec::new(),
            log: Some(log),
            store: Some(store),
        }
    }

    /// A flag a role sets once it is ready.
    pub fn flag(&mut self, role: &'static str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.flags.push((role, flag.clone()));
        flag
    }

    /// What is not ready, empty when everything is.
    async fn waiting_for(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .flags
            .iter()
            .filter(|(_, ready)| !ready.load(Ordering::Acquire))
            .map(|(role, _)| format!("{role}: starting"))
            .collect();
        let limit = Duration::from_secs(2);
        if let Some(log) = &self.log {
            let probe = log.partitions(Topic::Conversations.name());
            match tokio::time::timeout(limit, probe).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => missing.push(format!("log: {e}")),
                Err(_) => missing.push("log: no answer within 2 s".to_owned()),
            }
        }
        if let Some(store) = &self.store {
            let key = CheckpointKey {
                consumer: "readyz".to_owned(),
                source: LogPartition::new(Topic::Conversations, 0),
            };
            match tokio::time::timeout(limit, store.checkpoint(&key)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => missing.push(format!("store: {e}")),
                Err(_) => missing.push("store: no answer within 2 s".to_owned()),
            }
        }
        missing
    }
}

/// The metrics page of the admin listener, rendered at each scrape.
pub type MetricsPage = Arc<dyn Fn() -> String + Send + Sync>;

impl Health {
    /// The roles' readiness flags, for `switchboard_process_ready_roles`.
    pub fn flags(&self) -> Vec<(&'static str, Arc<AtomicBool>)> {
        self.flags.clone()
    }
}

/// The admin listener's routes: `/healthz` answers while the process runs, `/readyz` once
/// every role is ready and the backends answer, `/metrics` in Prometheus' text format.
pub fn admin_router(health: Health, metrics: MetricsPage) -> Router {
    let health = Arc::new(health);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    let missing = health.waiting_for().await;
                    if missing.is_empty() {
                        (StatusCode::OK, "ready\n".to_owned())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready:\n{}\n", missing.join("\n")),
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        metrics(),
                    )
                }
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shutdown_reaches_every_clone_once_fired() {
        let (trigger, shutdown) = Shutdown::new();
        let waiters: Vec<_> = (0..3)
            .map(|_| tokio::spawn(shutdown.clone().wait()))
            .collect();
        trigger.fire();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        // Fired already: a late waiter returns at once.
        shutdown.wait().await;
    }

    #[tokio::test]
    async fn readiness_waits_for_every_flag() {
        let mut health = Health::default();
        let writer = health.flag("ingest");
        assert_eq!(health.waiting_for().await, vec!["ingest: starting"]);
        writer.store(true, Ordering::Release);
        assert!(health.waiting_for().await.is_empty());
    }
}
