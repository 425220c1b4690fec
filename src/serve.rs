//! `switchboard serve`: every service in one process, on the embedded log and store under one
//! data directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use switchboard_edge::{Edge, EdgeConfig, EdgeDeps, MemoryBus};
use switchboard_events::Topic;
use switchboard_events::token::{TokenIssuer, TokenVerifier};
use switchboard_ingest::api::{Api, JwtOrTokens, StaticTokens, serve as serve_commands};
use switchboard_ingest::routing::clock::Clock;
use switchboard_ingest::routing::driver::{self, DriverConfig};
use switchboard_ingest::routing::signals::Admitting;
use switchboard_ingest::writer::keys::StoreKeys;
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_log::embedded::{Durability as LogDurability, EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, StartAt};
use switchboard_projector::archiver::{Archiver, ArchiverConfig};
use switchboard_projector::{Projector, ProjectorConfig};
use switchboard_query::follow::follow;
use switchboard_query::source::ArchiveSource;
use switchboard_query::{
    CacheConfig, Invalidate, LogSource, QueryService, Sources, serve as serve_queries,
};
use switchboard_store::ReadModels;
use switchboard_store::cold::Archive;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, Durability};

/// The HS256 secret of end-user tokens: read from its file, or made on first start.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    let path = config
        .auth
        .jwt_secret_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("secrets").join("jwt-hs256.key"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().as_bytes().to_vec());
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the token secret: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("creating {}", path.display()))
}

/// A development token for `principal`, signed with the instance's secret.
pub fn issue_token(
    config: &Config,
    principal: &switchboard_events::principal::Principal,
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    let issuer = TokenIssuer::hs256(
        &jwt_secret(config)?,
        &config.auth.issuer,
        &config.auth.audience,
    );
    Ok(issuer.issue(
        principal,
        switchboard_events::token::now_seconds() + ttl_seconds,
    )?)
}

/// Runs every service until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating the data directory {}", data.display()))?;
    let mut log_config = EmbeddedConfig::new(data.join("log"));
    log_config.durability = match config.log.durability {
        Durability::Always => LogDurability::Always,
        Durability::Never => LogDurability::Never,
    };
    let log = Arc::new(EmbeddedLog::open(log_config).context("opening the event log")?);
    let store: Arc<dyn ReadModels> = Arc::new(
        EmbeddedStore::open(data.join("store"), EmbeddedOptions::default())
            .context("opening the read-model store")?,
    );

    let writer_config = WriterConfig {
        conversation_partitions: config.log.conversation_partitions,
        agent_partitions: config.log.agent_partitions,
        ..WriterConfig::default()
    };
    let writer = Writer::start(
        log.clone(),
        Arc::new(StoreKeys(store.clone())),
        writer_config,
    )
    .await
    .context("rebuilding the writer from the log")?;
    let router = driver::start(
        log.clone(),
        Arc::new(writer.clone()),
        DriverConfig::default(),
        Clock::system(),
    )
    .await
    .context("rebuilding the router from the log")?;

    let archive = Archive::local(&data.join("archive")).context("opening the cold archive")?;
    let (stop, _) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for topic in Topic::ALL {
        let config = ProjectorConfig {
            archive: Some(archive.clone()),
            ..ProjectorConfig::default()
        };
        let projector = Projector::new(log.clone(), store.clone(), topic, config);
        let stopped = stop.subscribe();
        tasks.spawn(async move { projector.run(stopped).await.map_err(anyhow::Error::from) });
    }

    let archiver = Archiver::new(
        store.clone(),
        archive.clone(),
        ArchiverConfig {
            archive_after: std::time::Duration::from_secs(config.archive.after_days * 86_400),
            ..ArchiverConfig::default()
        },
    )
    .spawn(stop.subscribe());

    let verifier = TokenVerifier::hs256(
        &jwt_secret(&config)?,
        &config.auth.issuer,
        &config.auth.audience,
    )?;
    let tokens = config
        .auth
        .service_tokens
        .iter()
        .map(|t| t.to_token())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let auth = JwtOrTokens {
        jwt: verifier,
        services: StaticTokens::new(tokens)?,
    };
    let handler = Arc::new(Admitting::new(writer, router.admission()));
    let api = Api::new(handler.clone(), Arc::new(auth));

    let ingest_grpc = bind(config.listen.ingest_grpc, "ingest gRPC").await?;
    let ingest_http = bind(config.listen.ingest_http, "ingest HTTP").await?;
    let query_http = bind(config.listen.query_http, "query HTTP").await?;
    let query_grpc = bind(config.listen.query_grpc, "query gRPC").await?;
    let edge_listener = bind(config.listen.edge, "edge WebSocket").await?;
    let bound = [
        edge_listener.local_addr()?,
        ingest_grpc.local_addr()?,
        ingest_http.local_addr()?,
        query_http.local_addr()?,
        query_grpc.local_addr()?,
    ];
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let commands = serve_commands(
        api,
        ingest_grpc,
        ingest_http,
        until_stopped(stop.subscribe()),
    );
    tasks.spawn(async move { commands.await.map_err(anyhow::Error::from) });
    let sources = Sources::hot(store.clone())
        .then(Arc::new(ArchiveSource {
            store: store.clone(),
            archive: archive.clone(),
        }))
        .then(Arc::new(LogSource::new(log.clone())));
    let query_verifier = TokenVerifier::hs256(
        &jwt_secret(&config)?,
        &config.auth.issuer,
        &config.auth.audience,
    )?;
    let query = Arc::new(
        QueryService::new(store.clone(), query_verifier, &CacheConfig::default())
            .with_sources(sources),
    );
    // Cached pages follow the log: an event seen there invalidates its conversation's pages.
    let (follow_log, cache) = (
        log.clone() as Arc<dyn EventLog>,
        query.cache() as Arc<dyn Invalidate>,
    );
    tasks.spawn(async move {
        follow(follow_log, cache, StartAt::Latest)
            .await
            .map_err(anyhow::Error::from)
    });
    let queries = serve_queries(
        query,
        query_http,
        query_grpc,
        until_stopped(stop.subscribe()),
    );
    tasks.spawn(async move { queries.await.map_err(anyhow::Error::from) });

    let mut edge_config = EdgeConfig::default();
    for (tenant, origins) in &config.edge.allowed_origins {
        edge_config
            .allowed_origins
            .insert(tenant.clone(), origins.clone());
    }
    let edge_verifier = TokenVerifier::hs256(
        &jwt_secret(&config)?,
        &config.auth.issuer,
        &config.auth.audience,
    )?;
    let edge = Edge::new(
        edge_config,
        EdgeDeps {
            commands: handler,
            log: log.clone(),
            store: store.clone(),
            verifier: edge_verifier,
            signals: Arc::new(MemoryBus::default()),
            queue: Some(router.subscribe()),
        },
    );
    let edge = edge.serve(edge_listener, until_stopped(stop.subscribe()));
    tasks.spawn(async move { edge.await.map_err(anyhow::Error::from) });

    announce(&config, bound);
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        Some(ended) = tasks.join_next() => {
            let _ = stop.send(true);
            router.stop().await;
            log.shutdown();
            return match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("a service stopped on its own")),
                Ok(Err(e)) => Err(e.context("a service failed")),
                Err(e) => Err(anyhow::anyhow!("a service panicked: {e}")),
            };
        }
    }
    let _ = stop.send(true);
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(e)) = ended {
            tracing::warn!(error = %e, "a service failed while stopping");
        }
    }
    let _ = archiver.await;
    router.stop().await;
    log.shutdown();
    Ok(())
}

async fn bind(address: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the {what} listener to {address}"))
}

/// Tells where everything listens (the bound addresses, so a port 0 in the configuration
/// shows the port it got).
fn announce(config: &Config, [edge, grpc, http, query, query_grpc]: [std::net::SocketAddr; 5]) {
    tracing::info!(data_dir = %config.data_dir.display(), "switchboard is serving");
    eprintln!(
        "switchboard is serving, data in {}",
        config.data_dir.display()
    );
    eprintln!(
        "  widget    HTTP  http://{edge}/  (chat widget and agent console; WebSocket at ws://{edge}/v1/ws)"
    );
    eprintln!("  commands  gRPC  http://{grpc}  (switchboard.ingest.v1.Ingest)");
    eprintln!("  commands  HTTP  http://{http}/v1/conversations");
    eprintln!(
        "  queries   HTTP  http://{query}/v1/conversations  (history, lists, reports, replay, verify, export; /openapi.json)"
    );
    eprintln!("  queries   gRPC  http://{query_grpc}  (switchboard.query.v1.Query)");
    eprintln!("  schemas   HTTP  http://{query}/subjects  (Confluent-compatible registry)");
    eprintln!(
        "  tokens: `switchboard token --tenant T --role agent --subject S` signs one for this instance"
    );
}
