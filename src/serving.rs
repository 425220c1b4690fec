//! How every role serves: one shutdown signal for the process, one way to run an HTTP
//! (axum) or gRPC (tonic) listener until it fires, and the admin listener with health,
//! readiness and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use switchboard_events::Topic;
use switchboard_log::EventLog;
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::{CheckpointKey, LogPartition};
use tokio::net::TcpListener;
use tokio::sync::watch;

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

/// Binds a listener, naming it in the error.
pub async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the {what} listener to {address}"))
}

/// Serves an HTTP router until shutdown, then finishes the requests under way.
pub async fn http(listener: TcpListener, router: Router, shutdown: Shutdown) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.wait())
        .await
        .context("an HTTP listener failed")
}

/// Serves gRPC services until shutdown, then finishes the calls under way.
pub async fn grpc(
    listener: TcpListener,
    routes: tonic::service::Routes,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown.wait())
        .await
        .context("a gRPC listener failed")
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
