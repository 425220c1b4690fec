//! An in-process stack for the edge's tests: embedded log, embedded store, a real writer and
//! projector, and the edge on 127.0.0.1:0; plus a WebSocket client that speaks protocol v1.

#![allow(dead_code, reason = "each test binary uses a part of the harness")]

pub mod client;
pub mod keys;

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use switchboard_edge::{Edge, EdgeConfig, EdgeDeps, MemoryBus, SignalBus};
use switchboard_events::Topic;
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{
    IssuerKeys, Tenants, TokenConfig, TokenIssuer, TokenVerifier, now_seconds,
};
use switchboard_ingest::routing::QueueSignal;
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_log::EventLog;
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_projector::{Projector, ProjectorConfig};
use switchboard_store::ReadModels;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use tokio::sync::{oneshot, watch};

pub const ISSUER: &str = "https://auth.switchboard.test";
/// Acme's own identity provider, trusted for acme only.
pub const ACME_IDP: &str = "https://id.acme.test";
pub const AUDIENCE: &str = "switchboard-edge";

pub fn principal(tenant: &str, role: Role, subject: &str) -> Principal {
    Principal::new(
        TenantId::new(tenant).unwrap(),
        role,
        PrincipalId::new(subject).unwrap(),
    )
}

/// The instance's own keys, and acme's provider's.
pub static KEYS: LazyLock<IssuerKeys> =
    LazyLock::new(|| IssuerKeys::generate(now_seconds()).unwrap());
pub static ACME_KEYS: LazyLock<IssuerKeys> =
    LazyLock::new(|| IssuerKeys::generate(now_seconds()).unwrap());

/// One verifier per test binary, shared by every edge it starts: the instance's issuer for
/// every tenant, acme's provider for acme. A test may trust more issuers on it.
static VERIFIER: LazyLock<TokenVerifier> = LazyLock::new(|| {
    let verifier = TokenVerifier::new(&TokenConfig {
        audience: AUDIENCE.to_owned(),
        ..TokenConfig::default()
    });
    verifier.trust(ISSUER, Tenants::All, &KEYS.jwks()).unwrap();
    let acme = Tenants::only([TenantId::new("acme").unwrap()]);
    verifier.trust(ACME_IDP, acme, &ACME_KEYS.jwks()).unwrap();
    verifier
});

/// The stack's issuer.
pub fn issuer() -> TokenIssuer {
    TokenIssuer::new(&KEYS, ISSUER, AUDIENCE)
}

/// A token for `principal`, valid for an hour, from the stack's issuer.
pub fn token(principal: &Principal) -> String {
    issuer().issue(principal, now_seconds() + 3600).unwrap()
}

/// A token from acme's provider, whatever tenant `principal` is of.
pub fn acme_idp_token(principal: &Principal) -> String {
    TokenIssuer::new(&ACME_KEYS, ACME_IDP, AUDIENCE)
        .issue(principal, now_seconds() + 600)
        .unwrap()
}

/// The backends one or more edges share.
pub struct Backends {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn ReadModels>,
    pub writer: Arc<Writer>,
    pub stop_projector: Option<watch::Sender<bool>>,
    pub _dirs: Option<(tempfile::TempDir, tempfile::TempDir)>,
}

impl Backends {
    pub async fn embedded() -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(EmbeddedLog::open(EmbeddedConfig::new(log_dir.path())).unwrap());
        let store: Arc<dyn ReadModels> =
            Arc::new(EmbeddedStore::open(store_dir.path(), EmbeddedOptions::default()).unwrap());
        Self::on(log, store, (log_dir, store_dir), true).await
    }

    /// Backends over `log`. `fencing` off is for a broker without transactions (tansu): the
    /// tests run one writer, which needs no fence.
    pub async fn on(
        log: Arc<dyn EventLog>,
        store: Arc<dyn ReadModels>,
        dirs: (tempfile::TempDir, tempfile::TempDir),
        fencing: bool,
    ) -> Self {
        let keys = Arc::new(keys::StoreKeys(store.clone()));
        let config = WriterConfig {
            conversation_partitions: 4,
            agent_partitions: 2,
            fencing,
            ..WriterConfig::default()
        };
        let writer = Arc::new(Writer::start(log.clone(), keys, config).await.unwrap());
        let projector = Projector::new(
            log.clone(),
            store.clone(),
            Topic::Conversations,
            ProjectorConfig::default(),
        );
        let (stop_projector, stopped) = watch::channel(false);
        tokio::spawn(projector.run(stopped));
        Self {
            log,
            store,
            writer,
            stop_projector: Some(stop_projector),
            _dirs: Some(dirs),
        }
    }

    /// The same backends, for another edge instance to borrow: it owns nothing.
    pub fn shallow(&self) -> Self {
        Self {
            log: self.log.clone(),
            store: self.store.clone(),
            writer: self.writer.clone(),
            stop_projector: None,
            _dirs: None,
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        if let Some(stop) = &self.stop_projector {
            let _ = stop.send(true);
        }
    }
}

/// A running edge.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub served: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// Starts the drain and waits for the server to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served).await.unwrap();
    }
}

pub fn verifier() -> TokenVerifier {
    VERIFIER.clone()
}

/// Starts an edge on `backends` with `config` and the signal bus `signals`.
pub async fn edge_with(
    backends: &Backends,
    config: EdgeConfig,
    signals: Arc<dyn SignalBus>,
) -> Running {
    edge_full(backends, config, signals, None).await
}

/// Starts an edge that also forwards the router's queue signals.
pub async fn edge_full(
    backends: &Backends,
    config: EdgeConfig,
    signals: Arc<dyn SignalBus>,
    queue: Option<tokio::sync::broadcast::Receiver<QueueSignal>>,
) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let deps = EdgeDeps {
        commands: backends.writer.clone(),
        log: backends.log.clone(),
        store: backends.store.clone(),
        verifier: verifier(),
        signals,
        queue,
    };
    let (stop, stopped) = oneshot::channel();
    let served = tokio::spawn(async move {
        Edge::new(config, deps)
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
        served,
    }
}

pub async fn edge(backends: &Backends, config: EdgeConfig) -> Running {
    edge_with(backends, config, Arc::new(MemoryBus::default())).await
}

/// One stack: backends and one edge with the default configuration.
pub async fn stack() -> (Backends, Running) {
    let backends = Backends::embedded().await;
    let running = edge(&backends, EdgeConfig::default()).await;
    (backends, running)
}
