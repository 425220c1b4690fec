//! The roles a process runs, and running them: `switchboard serve` runs all of them,
//! `switchboard run --roles …` any subset, on the backends the configuration names.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use axum::Json;
use axum::routing::get;
use switchboard_edge::{Edge, EdgeConfig, EdgeDeps, LogBus, MemoryBus, SessionIssuer, SignalBus};
use switchboard_events::Topic;
use switchboard_ingest::admission::Admitting;
use switchboard_ingest::api::http::admin::Admin;
use switchboard_ingest::api::{Api, GrpcCommands, GrpcCommandsConfig, JwtOrTokens, StaticTokens};
use switchboard_ingest::routing::clock::Clock;
use switchboard_ingest::routing::driver::{self, DriverConfig};
use switchboard_ingest::tenants::Directory;
use switchboard_ingest::writer::keys::{DataKeys, StoreKeys};
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_log::StartAt;
use switchboard_projector::archiver::{Archiver, ArchiverConfig};
use switchboard_projector::{Projector, ProjectorConfig};
use switchboard_query::follow::follow;
use switchboard_query::source::ArchiveSource;
use switchboard_query::{Invalidate, LogSource, QueryService, Sources};
use tokio::task::JoinSet;

use crate::backends::Backends;
use crate::config::{Config, LogBackend};
use crate::secrets::{instance_keys, session_secret, token_issuer, verifier};
use crate::serving::{self, Health, Kind, Listeners, Shutdown};
use crate::tls::Tls;

/// One role of the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    /// The WebSocket gateway and the web UI.
    Edge,
    /// The command API (gRPC and HTTP) and the single writer of the partitions it owns.
    Ingest,
    /// Assignment of conversations to agents; runs beside an ingest role.
    Router,
    /// Folds the log into the read models.
    Projector,
    /// Moves old resolved conversations to the cold archive.
    Archiver,
    /// History, lists, reports, audit replay and the schema registry.
    Query,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Edge,
        Role::Ingest,
        Role::Router,
        Role::Projector,
        Role::Archiver,
        Role::Query,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Edge => "edge",
            Role::Ingest => "ingest",
            Role::Router => "router",
            Role::Projector => "projector",
            Role::Archiver => "archiver",
            Role::Query => "query",
        }
    }
}

/// Whether the roles can run together in one process with this configuration.
pub fn check(roles: &BTreeSet<Role>, config: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(!roles.is_empty(), "give at least one role");
    if roles.contains(&Role::Router) && !roles.contains(&Role::Ingest) {
        anyhow::bail!("the router role runs in a process with the ingest role");
    }
    if roles.contains(&Role::Edge)
        && !roles.contains(&Role::Ingest)
        && (config.ingest.endpoints.is_empty()
            || (config.ingest.service_token.is_none()
                && config.ingest.service_token_file.is_none()))
    {
        anyhow::bail!(
            "an edge without the ingest role in its process sends commands over gRPC: set \
             ingest.endpoints and ingest.service_token (or ingest.service_token_file)"
        );
    }
    config.telemetry.otlp.check()?;
    let all: BTreeSet<Role> = Role::ALL.into_iter().collect();
    if config.log.backend == LogBackend::Embedded && roles != &all {
        tracing::warn!(
            "the embedded log belongs to one process: roles not run here cannot share it; \
             use log.backend = \"kafka\" to run roles as separate processes"
        );
    }
    Ok(())
}

/// Runs `roles` until `shutdown` resolves, or until one of them fails.
pub async fn run(
    config: Config,
    roles: BTreeSet<Role>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    check(&roles, &config)?;
    let backends = Backends::open(&config).await?;
    let (trigger, stop) = Shutdown::new();
    let mut health = Health::new(backends.log.clone(), backends.store.clone());
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let mut announced = Vec::new();
    let has = |role| roles.contains(&role);
    let log = backends.log.clone();
    let store = backends.store.clone();

    let tls = config
        .listen
        .tls
        .as_ref()
        .map(|files| Tls::start(files, stop.clone()))
        .transpose()
        .context("loading the TLS certificate")?;
    let listeners = Listeners::new(config.listen.limits, tls);
    let admin = serving::bind(config.listen.admin, "admin").await?;
    announced.push(Line::new(
        "admin",
        "HTTP",
        admin.local_addr()?,
        "/healthz /readyz /metrics",
    ));

    // The write side first: it creates the topics the others follow.
    let mut router_handle = None;
    let mut writer_handle = None;
    let mut handler = None;
    let mut tenants = None;
    if has(Role::Ingest) {
        let ready = health.flag("ingest");
        let writer = start_writer(&config, &backends).await?;
        writer_handle = Some(writer.clone());
        let directory = Directory::follow(log.clone())
            .await
            .context("reading the tenants from the log")?;
        tenants = Some(directory.clone());
        let router = if has(Role::Router) {
            let ready = health.flag("router");
            // Several ingest instances share the tenants: each routes those whose agent
            // partition its writer owns, so one router decides per tenant, and the lead moves
            // with the partition when an instance dies.
            let leadership = (config.log.backend == LogBackend::Kafka)
                .then(|| Arc::new(writer.clone()) as Arc<dyn driver::Leadership>);
            let peers = (!config.ingest.endpoints.is_empty())
                .then(|| remote_commands(&config))
                .transpose()?;
            let router = driver::start_leading(
                log.clone(),
                Arc::new(RouterCommands {
                    local: writer.clone(),
                    peers,
                }),
                DriverConfig {
                    routing: config.router.routing(),
                    ..DriverConfig::default()
                },
                Clock::system(),
                leadership,
            )
            .await
            .context("rebuilding the router from the log")?;
            ready.store(true, Ordering::Release);
            Some(router)
        } else {
            None
        };
        // Tenant commands go to the instance whose writer owns the tenant's agent partition.
        let admin_api = Api::new(
            Arc::new(RouterCommands {
                local: writer.clone(),
                peers: (!config.ingest.endpoints.is_empty())
                    .then(|| remote_commands(&config))
                    .transpose()?,
            }),
            Arc::new(authenticator(&config)?),
        );
        let commands = Arc::new(Commands::new(
            writer,
            router.as_ref(),
            config.ingest.admission,
        ));
        let api = Api::new(commands.clone(), Arc::new(authenticator(&config)?));
        let grpc = serving::bind(config.listen.ingest_grpc, "ingest gRPC").await?;
        let http = serving::bind(config.listen.ingest_http, "ingest HTTP").await?;
        announced.push(Line::new(
            "commands",
            "gRPC",
            grpc.local_addr()?,
            "(switchboard.ingest.v1.Ingest)",
        ));
        announced.push(Line::new(
            "commands",
            "HTTP",
            http.local_addr()?,
            "/v1/conversations",
        ));
        announced.push(Line::new(
            "tenants",
            "HTTP",
            http.local_addr()?,
            "/v1/tenants  (tenants and their settings; /openapi.json)",
        ));
        let routes =
            tonic::service::Routes::new(switchboard_ingest::api::grpc::service(api.clone()));
        let secure_grpc = config
            .listen
            .tls
            .as_ref()
            .is_some_and(|tls| tls.ingest_grpc);
        let grpc_listeners = if secure_grpc {
            listeners.clone()
        } else {
            listeners.plain()
        };
        tasks.spawn(grpc_listeners.grpc(grpc, routes, stop.clone()));
        let admin = Admin {
            directory,
            sessions: session_secret(&config)?,
        };
        tasks.spawn(listeners.serve(
            http,
            Kind::Http,
            switchboard_ingest::api::http::router_with_admin(api, admin_api, admin),
            stop.clone(),
        ));
        ready.store(true, Ordering::Release);
        handler = Some(commands);
        router_handle = router;
    }

    if has(Role::Projector) {
        for topic in Topic::ALL {
            let projector_config = ProjectorConfig {
                consumer: config.projector.consumer.clone(),
                archive: Some(backends.archive.clone()),
                cache_limit: config.projector.cache_entries,
                ..ProjectorConfig::default()
            };
            let projector = Projector::new(log.clone(), store.clone(), topic, projector_config);
            let stopped = stop.receiver();
            tasks.spawn(async move { projector.run(stopped).await.map_err(anyhow::Error::from) });
        }
    }

    let mut archiver = None;
    if has(Role::Archiver) {
        archiver = Some(archiver_of(&config, &backends).spawn(stop.receiver()));
    }

    if has(Role::Query) {
        let query = Arc::new(query_service(&config, &backends)?);
        // Cached pages follow the log: an event seen there invalidates its conversation's pages.
        let (follow_log, cache) = (log.clone(), query.cache() as Arc<dyn Invalidate>);
        let stopped = stop.clone();
        tasks.spawn(async move {
            // Following never ends by itself: it stops with the process.
            tokio::select! {
                followed = follow(follow_log, cache, StartAt::Latest) => {
                    followed.map_err(anyhow::Error::from)
                }
                () = stopped.wait() => Ok(()),
            }
        });
        let http = serving::bind(config.listen.query_http, "query HTTP").await?;
        let grpc = serving::bind(config.listen.query_grpc, "query gRPC").await?;
        let address = http.local_addr()?;
        announced.push(Line::new(
            "queries",
            "HTTP",
            address,
            "/v1/conversations  (history, lists, reports, replay, verify, export; /openapi.json)",
        ));
        announced.push(Line::new(
            "queries",
            "gRPC",
            grpc.local_addr()?,
            "(switchboard.query.v1.Query)",
        ));
        announced.push(Line::new(
            "schemas",
            "HTTP",
            address,
            "/subjects  (Confluent-compatible registry)",
        ));
        let routes = tonic::service::Routes::new(switchboard_query::grpc::service(query.clone()));
        tasks.spawn(listeners.grpc(grpc, routes, stop.clone()));
        announced.push(Line::new(
            "keys",
            "HTTP",
            address,
            "/.well-known/jwks.json  (the instance's token keys)",
        ));
        let jwks = Json(instance_keys(&config)?.jwks());
        let router = switchboard_query::http::router(query)
            .route(JWKS_PATH, get(move || async move { jwks.clone() }));
        tasks.spawn(listeners.serve(http, Kind::Http, router, stop.clone()));
    }

    if has(Role::Edge) {
        let commands = match handler.clone() {
            Some(local) => local,
            None => Arc::new(Commands::Remote(remote_commands(&config)?)),
        };
        let edge_config: EdgeConfig = config.edge.clone();
        let signals: Arc<dyn SignalBus> = match config.log.backend {
            LogBackend::Embedded => Arc::new(MemoryBus::default()),
            LogBackend::Kafka => Arc::new(
                LogBus::start(log.clone())
                    .await
                    .context("starting the signal bus")?,
            ),
        };
        let directory = match tenants.clone() {
            Some(directory) => directory,
            None => Directory::follow(log.clone())
                .await
                .context("reading the tenants from the log")?,
        };
        let edge = Edge::new(
            edge_config,
            EdgeDeps {
                commands,
                log: log.clone(),
                store: store.clone(),
                verifier: verifier(&config)?,
                signals,
                queue: router_handle.as_ref().map(|r| r.subscribe()),
            },
        )
        .with_sessions(SessionIssuer {
            issuer: token_issuer(&config)?,
            secret: session_secret(&config)?,
            directory,
        });
        let listener = serving::bind(config.listen.edge, "edge WebSocket").await?;
        let address = listener.local_addr()?;
        announced.insert(
            0,
            Line {
                what: "widget",
                protocol: "HTTP",
                address,
                detail: format!(
                    "/  (chat widget and agent console; WebSocket at {}://{address}/v1/ws)",
                    if config.listen.tls.is_some() {
                        "wss"
                    } else {
                        "ws"
                    }
                ),
            },
        );
        let (router, drain) = edge.start().await.context("starting the edge")?;
        let served = listeners.serve(listener, Kind::WebSocket, router, stop.clone());
        let stopped = stop.clone();
        tasks.spawn(async move {
            let (served, ()) = tokio::join!(served, drain.run(stopped.wait()));
            served
        });
    }

    for topic in Topic::ALL {
        if let Ok(partitions) = log.partitions(topic.name()).await {
            switchboard_log::metrics::topic_partitions(topic.name(), partitions);
        }
    }
    let lag = tokio::spawn(crate::telemetry::refresh_lag(log.clone(), stop.clone()));
    let metrics = crate::telemetry::metrics_page(
        roles.iter().map(|role| role.name()).collect(),
        health.flags(),
    );
    tasks.spawn(listeners.serve(
        admin,
        Kind::Admin,
        serving::admin_router(health, metrics),
        stop.clone(),
    ));
    announce(&config, &roles, &announced);

    let outcome = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
        Some(ended) = tasks.join_next() => match ended {
            Ok(Ok(())) => Err(anyhow::anyhow!("a service stopped on its own")),
            Ok(Err(e)) => Err(e.context("a service failed")),
            Err(e) => Err(anyhow::anyhow!("a service panicked: {e}")),
        },
    };
    trigger.fire();
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(e)) = ended {
            tracing::warn!(error = %e, "a service failed while stopping");
        }
    }
    if let Some(archiver) = archiver {
        let _ = archiver.await;
    }
    let _ = lag.await;
    if let Some(router) = router_handle {
        router.stop().await;
    }
    // Last of the roles, once nothing sends it commands: what is queued is written, and every
    // partition's snapshot, so the next start folds no tail.
    if let Some(writer) = writer_handle {
        let grace = std::time::Duration::from_millis(config.listen.limits.drain_grace_ms);
        if tokio::time::timeout(grace, writer.stop()).await.is_err() {
            tracing::warn!(
                "the writer did not stop within the drain grace; the next start folds a longer tail"
            );
        }
    }
    backends.shutdown();
    outcome
}

/// The archiver on these backends, with the configuration's `archive.after_days`.
pub fn archiver_of(config: &Config, backends: &Backends) -> Archiver {
    let archiver_config = ArchiverConfig {
        archive_after: std::time::Duration::from_secs(config.archive.after_days * 86_400),
        ..ArchiverConfig::default()
    };
    Archiver::new(
        backends.store.clone(),
        backends.archive.clone(),
        archiver_config,
    )
}

/// The query service on these backends: history from the hot store, then the cold archive,
/// then the log. The query role serves it; the CLI's offline commands call it directly.
pub fn query_service(config: &Config, backends: &Backends) -> anyhow::Result<QueryService> {
    let store = backends.store.clone();
    let sources = Sources::hot(store.clone())
        .then(Arc::new(ArchiveSource {
            store: store.clone(),
            archive: backends.archive.clone(),
        }))
        .then(Arc::new(LogSource::new(backends.log.clone())));
    Ok(
        QueryService::new(store, verifier(config)?, &config.query.cache)
            .with_sources(sources)
            .with_log(backends.log.clone())
            .with_read_limits(config.query.read_limits),
    )
}

/// Starts the single writer: of every partition on the embedded log, of the partitions the
/// ingest group assigns this instance on Kafka.
async fn start_writer(config: &Config, backends: &Backends) -> anyhow::Result<Writer> {
    let kafka = &config.log.kafka;
    let writer_config = WriterConfig {
        conversation_partitions: config.log.conversation_partitions,
        agent_partitions: config.log.agent_partitions,
        fencing: !(config.log.backend == LogBackend::Kafka && kafka.allow_unfenced),
        state: config.ingest.writer_state.clone(),
        ..WriterConfig::default()
    };
    let keys: Arc<dyn DataKeys> = match &backends.keys {
        Some(directory) => directory.clone(),
        None => Arc::new(StoreKeys(backends.store.clone())),
    };
    let log = backends.log.clone();
    match config.log.backend {
        LogBackend::Embedded => Writer::start(log, keys, writer_config)
            .await
            .context("rebuilding the writer from the log"),
        LogBackend::Kafka => {
            if kafka.allow_unfenced {
                tracing::warn!(
                    "log.kafka.allow_unfenced is set: partitions are written without \
                     transactional fencing, so during a handover a deposed ingest instance can \
                     still append; the projector dead-letters what breaks a hash chain"
                );
            }
            Writer::start_in_group(log, keys, writer_config, "switchboard.ingest")
                .await
                .context(
                    "joining the ingest group; on a broker without transactions (such as \
                     tansu) set log.kafka.allow_unfenced = true, knowing what it means",
                )
        }
    }
}

/// The write side as the command API and the edge see it: with the router's admission
/// when the router runs here.
#[derive(Debug)]
enum Commands {
    Routed(Admitting<Writer>),
    Direct(Writer),
    /// The ingest role runs in other processes: commands travel over gRPC.
    Remote(GrpcCommands),
}

impl Commands {
    fn new(
        writer: Writer,
        router: Option<&driver::RouterHandle>,
        admission: switchboard_ingest::admission::AdmissionConfig,
    ) -> Self {
        match router {
            Some(router) => Self::Routed(Admitting::with_config(
                writer,
                router.admission(),
                admission,
            )),
            None => Self::Direct(writer),
        }
    }
}

/// The router's (and the admin API's) way to the writers: this instance's writer, and for a
/// conversation or tenant another instance owns, the instances of `ingest.endpoints` over gRPC.
#[derive(Debug)]
struct RouterCommands {
    local: Writer,
    peers: Option<GrpcCommands>,
}

impl switchboard_ingest::api::CommandHandler for RouterCommands {
    async fn conversation(
        &self,
        principal: switchboard_events::principal::Principal,
        conversation: Option<switchboard_events::id::ConversationId>,
        command: switchboard_ingest::command::ConversationCommand,
        correlation: switchboard_events::id::CorrelationId,
    ) -> Result<switchboard_ingest::api::Ack, switchboard_ingest::CommandError> {
        let here = self
            .local
            .conversation(
                principal.clone(),
                conversation.clone(),
                command.clone(),
                correlation,
            )
            .await;
        match (here, &self.peers) {
            (Err(switchboard_ingest::CommandError::NotOwner { .. }), Some(peers)) => {
                peers
                    .conversation(principal, conversation, command, correlation)
                    .await
            }
            (here, _) => here,
        }
    }

    async fn agent(
        &self,
        principal: switchboard_events::principal::Principal,
        agent: switchboard_events::id::AgentId,
        command: switchboard_ingest::command::AgentCommand,
        correlation: switchboard_events::id::CorrelationId,
    ) -> Result<switchboard_ingest::api::Ack, switchboard_ingest::CommandError> {
        let here = self
            .local
            .agent(
                principal.clone(),
                agent.clone(),
                command.clone(),
                correlation,
            )
            .await;
        match (here, &self.peers) {
            (Err(switchboard_ingest::CommandError::NotOwner { .. }), Some(peers)) => {
                peers.agent(principal, agent, command, correlation).await
            }
            (here, _) => here,
        }
    }
}

/// The gRPC client of the ingest instances named in the configuration.
fn remote_commands(config: &Config) -> anyhow::Result<GrpcCommands> {
    let mut client = GrpcCommandsConfig {
        endpoints: config.ingest.endpoints.clone(),
        ca_file: config.ingest.ca_file.clone(),
        service_token: crate::secrets::ingest_service_token(config)?.unwrap_or_default(),
        ..GrpcCommandsConfig::default()
    };
    if let Some(ms) = config.ingest.deadline_ms {
        client.deadline = std::time::Duration::from_millis(ms);
    }
    GrpcCommands::new(client).context("configuring the gRPC client of the ingest instances")
}

impl switchboard_ingest::api::CommandHandler for Commands {
    async fn conversation(
        &self,
        principal: switchboard_events::principal::Principal,
        conversation: Option<switchboard_events::id::ConversationId>,
        command: switchboard_ingest::command::ConversationCommand,
        correlation: switchboard_events::id::CorrelationId,
    ) -> Result<switchboard_ingest::api::Ack, switchboard_ingest::CommandError> {
        match self {
            Self::Routed(h) => {
                h.conversation(principal, conversation, command, correlation)
                    .await
            }
            Self::Direct(h) => {
                h.conversation(principal, conversation, command, correlation)
                    .await
            }
            Self::Remote(h) => {
                h.conversation(principal, conversation, command, correlation)
                    .await
            }
        }
    }

    async fn agent(
        &self,
        principal: switchboard_events::principal::Principal,
        agent: switchboard_events::id::AgentId,
        command: switchboard_ingest::command::AgentCommand,
        correlation: switchboard_events::id::CorrelationId,
    ) -> Result<switchboard_ingest::api::Ack, switchboard_ingest::CommandError> {
        match self {
            Self::Routed(h) => h.agent(principal, agent, command, correlation).await,
            Self::Direct(h) => h.agent(principal, agent, command, correlation).await,
            Self::Remote(h) => h.agent(principal, agent, command, correlation).await,
        }
    }
}

fn authenticator(config: &Config) -> anyhow::Result<JwtOrTokens> {
    let tokens = config
        .auth
        .service_tokens
        .iter()
        .map(|t| t.to_token())
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(JwtOrTokens {
        jwt: verifier(config)?,
        services: StaticTokens::new(tokens)?,
    })
}

/// Where the query HTTP listener publishes the instance's public keys, for other verifiers.
const JWKS_PATH: &str = "/.well-known/jwks.json";

/// One line of the start-up announcement.
#[derive(Debug)]
struct Line {
    what: &'static str,
    protocol: &'static str,
    address: SocketAddr,
    detail: String,
}

impl Line {
    fn new(what: &'static str, protocol: &'static str, address: SocketAddr, detail: &str) -> Self {
        Self {
            what,
            protocol,
            address,
            detail: detail.to_owned(),
        }
    }
}

/// Tells where everything listens (the bound addresses, so a port 0 in the configuration
/// shows the port it got).
fn announce(config: &Config, roles: &BTreeSet<Role>, lines: &[Line]) {
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    tracing::info!(roles = %names.join(","), data_dir = %config.data_dir.display(), "switchboard is serving");
    eprintln!(
        "switchboard is serving {} (log: {:?}, store: {:?}), data in {}",
        names.join(", "),
        config.log.backend,
        config.store.backend,
        config.data_dir.display()
    );
    for line in lines {
        let secure = config.listen.tls.as_ref().is_some_and(|tls| {
            line.what != "admin"
                && (tls.ingest_grpc || (line.what, line.protocol) != ("commands", "gRPC"))
        });
        eprintln!(
            "  {:<9} {:<5} {}://{}{}{}",
            line.what,
            line.protocol,
            if secure { "https" } else { "http" },
            line.address,
            if line.detail.starts_with('/') {
                ""
            } else {
                "  "
            },
            line.detail
        );
    }
    if roles.contains(&Role::Ingest) {
        eprintln!(
            "  tokens: `switchboard token --tenant T --role agent --subject S` signs one for this instance"
        );
    }
}
