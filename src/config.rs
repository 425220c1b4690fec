//! One layered configuration for every role. Precedence, lowest first: built-in defaults <
//! the file given with `--config` < `SWITCHBOARD_*` environment variables (nesting with `__`,
//! e.g. `SWITCHBOARD_LISTEN__INGEST_HTTP=0.0.0.0:7002`) < `--set key.path=value` flags.
//! Unknown keys are refused, so a typo is an error at start-up rather than a silent default.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};
use switchboard_ingest::api::ServiceToken;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded log and store keep their data (and the instance's secrets).
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub log: LogConfig,
    #[serde(default)]
    pub store: StoreConfig,
    pub auth: AuthConfig,
    pub archive: ArchiveConfig,
    /// The edge's limits and Origin allowlists (`switchboard_edge::EdgeConfig`).
    pub edge: switchboard_edge::EdgeConfig,
    /// Per-principal read rates of the query service.
    #[serde(default)]
    pub query: QuerySettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub projector: ProjectorSettings,
    /// What the router remembers (`switchboard_ingest::routing::config::RouterSettings`).
    #[serde(default)]
    pub router: switchboard_ingest::routing::config::RouterSettings,
    /// Log format and trace export (`crate::telemetry::TelemetryConfig`).
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetryConfig,
}

/// The projector role's settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectorSettings {
    /// The consumer group of the projector and the name of its checkpoints in the store.
    /// Projectors writing one store share it; a process on its own embedded store (an edge
    /// that folds its own read models) takes its own, and the edge's `history_consumer`
    /// names it.
    pub consumer: String,
    /// Conversation summaries (with report partials and agent records) each partition's
    /// projection keeps in memory; resolved conversations are forgotten once written.
    pub cache_entries: usize,
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        Self {
            consumer: "projector".to_owned(),
            cache_entries: switchboard_projector::partition::CACHE_LIMIT,
        }
    }
}

/// The event log's backend.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogBackend {
    /// Segment files under `data_dir/log`: one process owns them.
    Embedded,
    /// Any Kafka-protocol broker, configured under `[log.kafka]`.
    Kafka,
}

/// Kafka as the log: what an operator sets to reach the brokers and shape the topics.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSettings {
    /// `host:port,...` of one or more brokers.
    pub bootstrap_servers: String,
    /// The `client.id` the brokers see. On tansu give every process its own: it tells the
    /// members of a consumer group apart by it, so a crashed member's partitions would
    /// otherwise never move.
    pub client_id: String,
    /// How long a group member (an ingest instance, a projector) may go silent before its
    /// partitions move to the others.
    pub session_timeout_ms: u64,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, with SASL.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
    /// A PEM file of the authorities that sign the brokers' certificates.
    pub ssl_ca_location: Option<PathBuf>,
    /// Replication factor of the topics switchboard creates.
    pub replication_factor: u32,
    /// `min.insync.replicas` of the topics switchboard creates.
    pub min_insync_replicas: u32,
    /// Let the ingest role write without transactional fencing, for brokers without
    /// transactions (such as tansu). Then a deposed ingest instance that still believes it
    /// owns a partition can append to it during a handover; the projector refuses and
    /// dead-letters whatever breaks a conversation's hash chain, but the write itself is not
    /// prevented. Leave it off on Apache Kafka.
    pub allow_unfenced: bool,
    /// The compacted topic the customers' data keys travel on (wrapped under `store.kek`),
    /// with the embedded store: every process folds it into its own store. Not used with
    /// ScyllaDB, which is the shared key store itself.
    pub keys_topic: String,
    /// Partitions of the keys topic: fixed once chosen, like the events topics'.
    pub keys_partitions: u32,
    /// Further librdkafka properties, applied last.
    pub extra: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".to_owned(),
            client_id: "switchboard".to_owned(),
            session_timeout_ms: 10_000,
            security_protocol: "plaintext".to_owned(),
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            replication_factor: 1,
            min_insync_replicas: 1,
            allow_unfenced: false,
            keys_topic: "switchboard.keys".to_owned(),
            keys_partitions: 1,
            extra: std::collections::BTreeMap::new(),
        }
    }
}

/// The read-model store's backend.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// fjall under `data_dir/store`: one process owns it.
    Embedded,
    /// ScyllaDB (or Cassandra), configured under `[store.scylla]`.
    Scylla,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    pub scylla: ScyllaSettings,
    /// The key-encryption key the customers' data keys are wrapped under.
    pub kek: KekSettings,
    /// What the embedded store may hold in memory: block cache and write buffers.
    pub embedded: switchboard_store::embedded::EmbeddedMemory,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Embedded,
            scylla: ScyllaSettings::default(),
            kek: KekSettings::default(),
            embedded: Default::default(),
        }
    }
}

/// Where the key-encryption keys come from (`switchboard_store::keywrap`). The store opens
/// only with the KEK its keys were wrapped under.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KekSettings {
    /// The id of the current KEK, recorded with every key it wraps.
    pub id: String,
    /// A file holding the KEK as 64 hex digits; made (random, mode 0600) on first start when
    /// missing. By default `data_dir/secrets/<id>.kek`; in production, a mounted secret
    /// outside the data volume.
    pub file: Option<PathBuf>,
    /// The KEK itself as 64 hex digits, instead of the file: meant for the environment
    /// (`SWITCHBOARD_STORE__KEK__KEY`). Never printed.
    pub key: Option<String>,
    /// KEKs the store may still hold keys under, after a rotation. At the first start with a
    /// new `id`, every key is rewrapped under it; after that the previous KEK may go.
    pub previous: Vec<PreviousKek>,
}

impl Default for KekSettings {
    fn default() -> Self {
        Self {
            id: "kek-1".to_owned(),
            file: None,
            key: None,
            previous: Vec::new(),
        }
    }
}

/// A previous KEK: its id, and its file or its key (either must be given).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKek {
    pub id: String,
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaSettings {
    /// `host:port` of one or more nodes; the driver discovers the rest.
    pub contact_points: Vec<String>,
    pub keyspace: String,
    /// Replication factor of the keyspace when switchboard creates it.
    pub replication_factor: u32,
    /// `local_quorum` (the default), `quorum`, `local_one`, `one` or `all`.
    pub consistency: String,
}

impl Default for ScyllaSettings {
    fn default() -> Self {
        Self {
            contact_points: vec!["127.0.0.1:9042".to_owned()],
            keyspace: "switchboard".to_owned(),
            replication_factor: 3,
            consistency: "local_quorum".to_owned(),
        }
    }
}

/// The ingest role's admission, and how other roles reach it when it runs elsewhere.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// gRPC addresses (`http://host:port`, or `https://host:port` with `ca_file`) of the
    /// ingest instances, for an edge that runs without the ingest role in its process.
    pub endpoints: Vec<String>,
    /// PEM: the CA certificates that sign the ingest instances' certificates (their
    /// `listen.tls` with `ingest_grpc = true`). With it, every endpoint is `https://`.
    pub ca_file: Option<PathBuf>,
    /// The service token those calls authenticate with: one of `auth.service_tokens` of the
    /// ingest instances, with `all_tenants = true`.
    pub service_token: Option<String>,
    /// Or the file holding it (made with a random token on first start when missing, mode
    /// 0600): deployments share it between edges and ingest instances as a secret.
    pub service_token_file: Option<PathBuf>,
    /// How long a forwarded command may take, retries on other instances included.
    pub deadline_ms: Option<u64>,
    /// Command rates per principal, by role.
    pub admission: switchboard_ingest::admission::AdmissionConfig,
    /// How many conversations each partition's writer keeps in memory, and how often it
    /// snapshots (`crates/ingest/src/writer/state.md`).
    pub writer_state: switchboard_ingest::writer::StateConfig,
}

/// The query service's settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerySettings {
    /// Read rates per principal, by role.
    pub read_limits: switchboard_query::access::ReadLimits,
    /// Sizes and lifetimes of the query service's caches.
    pub cache: switchboard_query::CacheConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Days a resolved conversation stays in the hot store before it moves to the archive.
    pub after_days: u64,
    /// Where the archive lives: a local directory (by default `data_dir/archive`) or an
    /// S3-compatible URL `s3://bucket/prefix` (credentials from the usual `AWS_*` variables).
    #[serde(default)]
    pub location: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub edge: SocketAddr,
    pub ingest_grpc: SocketAddr,
    pub ingest_http: SocketAddr,
    pub query_http: SocketAddr,
    pub query_grpc: SocketAddr,
    /// Health (`/healthz`, `/readyz`) and metrics (`/metrics`) of every role in the process:
    /// for the operator's network, never the public one.
    pub admin: SocketAddr,
    /// Timeouts and connection caps of every listener (`crate::serving::Limits`).
    #[serde(default)]
    pub limits: crate::serving::Limits,
    /// TLS on every listener but the admin one, when set (`crate::tls::TlsFiles`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsFiles>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub backend: LogBackend,
    #[serde(default)]
    pub kafka: KafkaSettings,
    pub conversation_partitions: u32,
    pub agent_partitions: u32,
    /// fsync every append before acknowledging it (`always`), or leave it to the OS (`never`).
    pub durability: Durability,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    Always,
    Never,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The `iss` end-user tokens must carry.
    pub issuer: String,
    /// The `aud` end-user tokens must carry.
    pub audience: String,
    /// The instance's signing keys (Ed25519, one PKCS#8 PEM per `kid`), `data_dir/keys` by
    /// default: made on first start, published at `/.well-known/jwks.json` on the query HTTP
    /// listener, and what `switchboard token` signs with.
    #[serde(default)]
    pub keys_dir: Option<PathBuf>,
    /// A file with a shared HS256 secret, for roles in separate processes that share a secret
    /// rather than a key directory: when set, the instance's issuer also accepts tokens signed
    /// with it (`kid: "hs256"`), `switchboard token` signs with it, and it is made (random) on
    /// first start when it does not exist.
    pub jwt_secret_file: Option<PathBuf>,
    /// The session secret that visitor sessions' refresh secrets and each tenant's
    /// identity-verification secret derive from: `data_dir/secrets/session.secret` by default,
    /// made (random) on first start. Every edge and ingest instance of a deployment shares it.
    #[serde(default)]
    pub session_secret_file: Option<PathBuf>,
    /// The longest a token may live, per role (`customer_seconds`, `staff_seconds`,
    /// `service_seconds`).
    #[serde(default)]
    pub max_lifetime: switchboard_events::token::Lifetimes,
    /// Other issuers (a tenant's OpenID Connect provider): each `{ issuer, tenants,
    /// jwks_file }`, trusted only for its tenants, with the keys of its JWKS document.
    #[serde(default)]
    pub trusted: Vec<switchboard_events::token::TrustedIssuer>,
    /// Static tokens of services and integrations.
    #[serde(default)]
    pub service_tokens: Vec<ServiceTokenConfig>,
}

impl AuthConfig {
    /// The verifier's policy: audience, lifetimes and the instance's issuer.
    pub fn token_config(&self) -> switchboard_events::token::TokenConfig {
        switchboard_events::token::TokenConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            max_lifetime: self.max_lifetime.clone(),
            trusted: self.trusted.clone(),
            ..switchboard_events::token::TokenConfig::default()
        }
    }
}

/// A configured service token (the token itself is never printed).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenConfig {
    /// The token itself; or `token_file`, the file holding it (made on first start when
    /// missing, mode 0600).
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    pub tenant: String,
    pub role: switchboard_events::principal::Role,
    pub subject: String,
    #[serde(default)]
    pub all_tenants: bool,
}

impl std::fmt::Debug for ServiceTokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokenConfig")
            .field("tenant", &self.tenant)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl ServiceTokenConfig {
    pub fn to_token(&self) -> anyhow::Result<ServiceToken> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), None) => token.clone(),
            (None, Some(file)) => crate::secrets::read_or_create(file)?,
            _ => anyhow::bail!(
                "auth.service_tokens: give each token either `token` or `token_file`, not both"
            ),
        };
        Ok(ServiceToken {
            token,
            tenant: self.tenant.parse()?,
            role: self.role,
            subject: self.subject.parse()?,
            all_tenants: self.all_tenants,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            data_dir: PathBuf::from("switchboard-data"),
            listen: Listen {
                edge: local(7100),
                ingest_grpc: local(7101),
                ingest_http: local(7102),
                query_http: local(7103),
                query_grpc: local(7104),
                admin: local(7109),
                limits: crate::serving::Limits::default(),
                tls: None,
            },
            log: LogConfig {
                backend: LogBackend::Embedded,
                kafka: KafkaSettings::default(),
                conversation_partitions: 12,
                agent_partitions: 4,
                durability: Durability::Always,
            },
            auth: AuthConfig {
                issuer: "switchboard".to_owned(),
                audience: "switchboard".to_owned(),
                keys_dir: None,
                jwt_secret_file: None,
                session_secret_file: None,
                max_lifetime: switchboard_events::token::Lifetimes::default(),
                trusted: Vec::new(),
                service_tokens: Vec::new(),
            },
            store: StoreConfig::default(),
            archive: ArchiveConfig {
                after_days: 30,
                location: None,
            },
            ingest: IngestSettings::default(),
            telemetry: crate::telemetry::TelemetryConfig::default(),
            edge: switchboard_edge::EdgeConfig {
                // The web UI served by the edge itself, on the default address.
                allowed_origins: [(
                    "*".to_owned(),
                    vec![
                        "http://127.0.0.1:7100".to_owned(),
                        "http://localhost:7100".to_owned(),
                    ],
                )]
                .into(),
                ..switchboard_edge::EdgeConfig::default()
            },
            query: QuerySettings::default(),
            projector: ProjectorSettings::default(),
            router: Default::default(),
        }
    }
}

const MASK: &str = "********";

impl Config {
    /// The configuration as TOML, with every secret replaced by a mask.
    pub fn masked_toml(&self) -> anyhow::Result<String> {
        let mut masked = self.clone();
        for token in &mut masked.auth.service_tokens {
            if token.token.is_some() {
                token.token = Some(MASK.to_owned());
            }
        }
        if masked.ingest.service_token.is_some() {
            masked.ingest.service_token = Some(MASK.to_owned());
        }
        let kek = &mut masked.store.kek;
        for key in std::iter::once(&mut kek.key).chain(kek.previous.iter_mut().map(|p| &mut p.key))
        {
            if key.is_some() {
                *key = Some(MASK.to_owned());
            }
        }
        if masked.log.kafka.sasl_password.is_some() {
            masked.log.kafka.sasl_password = Some(MASK.to_owned());
        }
        Ok(toml::to_string(&masked)?)
    }
}

/// Where environment variables come from: the process, or a fixed list in tests.
pub trait EnvSource {
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
#[derive(Debug)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl EnvSource for Vec<(String, String)> {
    fn vars(&self) -> Vec<(String, String)> {
        self.clone()
    }
}

/// `SWITCHBOARD_A__B=v` pairs as nested configuration values.
struct EnvProvider(Vec<(String, String)>);

impl Provider for EnvProvider {
    fn metadata(&self) -> Metadata {
        Metadata::named("SWITCHBOARD_* environment variables")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, value) in &self.0 {
            let Some(path) = name.strip_prefix("SWITCHBOARD_") else {
                continue;
            };
            let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
            insert(&mut root, &keys, parse_value(value));
        }
        Ok(Profile::Default.collect(root))
    }
}

fn parse_value(text: &str) -> Value {
    text.parse::<Value>()
        .unwrap_or_else(|_| Value::from(text.to_owned()))
}

fn insert(dict: &mut Dict, keys: &[String], value: Value) {
    match keys {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// Loads the configuration: defaults < file < environment < `key.path=value` overrides.
pub fn load(
    file: Option<&std::path::Path>,
    env: &dyn EnvSource,
    overrides: &[String],
) -> anyhow::Result<Config> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(file) = file {
        anyhow::ensure!(
            file.exists(),
            "config file {} does not exist",
            file.display()
        );
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(EnvProvider(env.vars()));
    let mut flags = Dict::new();
    for o in overrides {
        let (key, value) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--set takes key.path=value, got {o:?}"))?;
        let keys: Vec<String> = key.split('.').map(str::to_owned).collect();
        insert(&mut flags, &keys, parse_value(value));
    }
    figment = figment.merge(Serialized::defaults(flags));
    figment
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_anything_else() {
        let config = load(None, &env(&[]), &[]).unwrap();
        assert_eq!(config.listen.ingest_http.port(), 7102);
        assert_eq!(config.log.durability, Durability::Always);
    }

    #[test]
    fn file_then_env_then_flags_win_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchboard.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\n[log]\nconversation_partitions = 24\nagent_partitions = 2\ndurability = \"never\"\n").unwrap();
        let vars = env(&[
            ("SWITCHBOARD_LOG__CONVERSATION_PARTITIONS", "36"),
            ("SWITCHBOARD_DATA_DIR", "/from/env"),
            ("OTHER", "x"),
        ]);
        let config = load(Some(&file), &vars, &["data_dir=/from/flag".to_owned()]).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.log.conversation_partitions, 36, "env over file");
        assert_eq!(config.log.agent_partitions, 2, "file over defaults");
        assert_eq!(config.log.durability, Durability::Never);
    }

    #[test]
    fn the_printed_configuration_masks_secrets_and_loads_back() {
        let vars = env(&[
            ("SWITCHBOARD_LOG__KAFKA__SASL_PASSWORD", "hunter2"),
            ("SWITCHBOARD_INGEST__SERVICE_TOKEN", "svc-secret"),
            ("SWITCHBOARD_STORE__KEK__KEY", "ab12cd"),
        ]);
        let config = load(None, &vars, &["log.backend=kafka".to_owned()]).unwrap();
        let printed = config.masked_toml().unwrap();
        assert!(
            !printed.contains("hunter2")
                && !printed.contains("svc-secret")
                && !printed.contains("ab12cd"),
            "{printed}"
        );
        assert!(printed.contains(MASK), "{printed}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("printed.toml");
        std::fs::write(&file, &printed).unwrap();
        let again = load(Some(&file), &env(&[]), &[]).unwrap();
        assert_eq!(
            again.log.backend,
            LogBackend::Kafka,
            "the printed file is a valid config"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let err = load(
            None,
            &env(&[("SWITCHBOARD_LISTEN__INGEST_HTTPS", "1")]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ingest_https"), "{err}");
        let err = load(None, &env(&[]), &["log.durability=sometimes".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sometimes"), "{err}");
        assert!(load(None, &env(&[]), &["nonsense".to_owned()]).is_err());
        assert!(load(Some(std::path::Path::new("/nope.toml")), &env(&[]), &[]).is_err());
    }
}
