//! TLS on the public listeners: rustls (ring) with the certificate chain and key of two PEM
//! files named in `[listen.tls]`, reloaded without a restart. A task looks at the files'
//! modification times every `reload_interval_ms` and, when either changed, loads both and swaps
//! the certificate every new handshake gets; SIGHUP loads them at once, changed or not. A pair
//! that does not load (half written, a key that does not match) is logged and the previous one
//! stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ServerConfig, version};

use crate::serving::{Kind, Shutdown};

/// The `[listen.tls]` table: with it, the edge, query and ingest HTTP listeners speak TLS only,
/// and ingest gRPC too with `ingest_grpc`; the admin listener never does.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM: the server's certificate, then its chain.
    pub cert_file: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How often the files' modification times are checked.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
    /// TLS on ingest gRPC as well. Off by default, for edges that reach ingest over plain
    /// HTTP/2 (`http://` in `ingest.endpoints`); with it, they name `https://` endpoints and
    /// trust the CA of `ingest.ca_file`.
    #[serde(default)]
    pub ingest_grpc: bool,
}

fn default_reload_interval_ms() -> u64 {
    10_000
}

/// The process's TLS: one certificate for every listener, each with its own ALPN.
#[derive(Clone, Debug)]
pub struct Tls {
    http: Arc<ServerConfig>,
    grpc: Arc<ServerConfig>,
    websocket: Arc<ServerConfig>,
}

impl Tls {
    /// Loads the files (an error names the one that failed) and starts watching them, and
    /// SIGHUP, until `shutdown`. Call it inside the runtime.
    pub fn start(files: &TlsFiles, shutdown: Shutdown) -> anyhow::Result<Self> {
        let provider = Arc::new(ring::default_provider());
        let loaded = load(&files.cert_file, &files.key_file, &provider)?;
        let resolver = Arc::new(Reloading {
            current: RwLock::new(Arc::new(loaded)),
        });
        let config = |alpn: &[&[u8]]| -> anyhow::Result<Arc<ServerConfig>> {
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&version::TLS13, &version::TLS12])
                .context("the TLS protocol versions")?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        let tls = Self {
            http: config(&[b"h2", b"http/1.1"])?,
            grpc: config(&[b"h2"])?,
            // Browsers open WebSockets over HTTP/1.1.
            websocket: config(&[b"http/1.1"])?,
        };
        let hangup = signal(SignalKind::hangup()).context("handling SIGHUP")?;
        tokio::spawn(watch(files.clone(), provider, resolver, hangup, shutdown));
        Ok(tls)
    }

    /// The acceptor of a listener of `kind`.
    pub fn acceptor(&self, kind: Kind) -> TlsAcceptor {
        let config = match kind {
            Kind::Grpc => &self.grpc,
            Kind::WebSocket => &self.websocket,
            Kind::Http | Kind::Admin => &self.http,
        };
        TlsAcceptor::from(config.clone())
    }
}

/// The certificate new handshakes get, swapped whole on reload.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificates of {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let private = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key of {}", key.display()))?;
    CertifiedKey::from_der(chain, private, provider).with_context(|| {
        format!(
            "the key of {} and the certificate of {}",
            key.display(),
            cert.display()
        )
    })
}

fn modified(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let at = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((at(&files.cert_file)?, at(&files.key_file)?))
}

async fn watch(
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    resolver: Arc<Reloading>,
    mut hangup: Signal,
    shutdown: Shutdown,
) {
    let mut seen = modified(&files);
    let mut every = tokio::time::interval(Duration::from_millis(files.reload_interval_ms.max(1)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = shutdown.wait();
    tokio::pin!(stopped);
    loop {
        let asked = tokio::select! {
            () = &mut stopped => return,
            _ = every.tick() => false,
            _ = hangup.recv() => true,
        };
        let now = modified(&files);
        if now == seen && !asked {
            continue;
        }
        match load(&files.cert_file, &files.key_file, &provider) {
            Ok(loaded) => {
                *resolver
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
                seen = now;
                tracing::info!(cert = %files.cert_file.display(), on_sighup = asked, "TLS certificate reloaded");
            }
            // Kept unseen: tried again next tick, when the writer may have finished.
            Err(e) => tracing::warn!(error = format!("{e:#}"), "TLS certificate not reloaded"),
        }
    }
}
