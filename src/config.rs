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
    /// Where the embedded log and store keep their data.
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub archive: ArchiveConfig,
    pub edge: EdgeSettings,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSettings {
    /// Browser origins allowed to open a WebSocket, per tenant (`"*"` for any). A tenant
    /// without an entry accepts only clients that send no Origin.
    #[serde(default)]
    pub allowed_origins: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Days a resolved conversation stays in the hot store before it moves to the archive
    /// (under `data_dir/archive`).
    pub after_days: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    pub edge: SocketAddr,
    pub ingest_grpc: SocketAddr,
    pub ingest_http: SocketAddr,
    pub query_http: SocketAddr,
    pub query_grpc: SocketAddr,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
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
    /// A file with the HS256 secret of end-user tokens; made (random) on first start when it
    /// does not exist.
    pub jwt_secret_file: Option<PathBuf>,
    /// Static tokens of services and integrations.
    #[serde(default)]
    pub service_tokens: Vec<ServiceTokenConfig>,
}

/// A configured service token (the token itself is never printed).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenConfig {
    pub token: String,
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
        Ok(ServiceToken {
            token: self.token.clone(),
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
            },
            log: LogConfig {
                conversation_partitions: 12,
                agent_partitions: 4,
                durability: Durability::Always,
            },
            auth: AuthConfig {
                issuer: "switchboard".to_owned(),
                audience: "switchboard".to_owned(),
                jwt_secret_file: None,
                service_tokens: Vec::new(),
            },
            archive: ArchiveConfig { after_days: 30 },
            edge: EdgeSettings {
                // The web UI served by the edge itself, on the default address.
                allowed_origins: [(
                    "*".to_owned(),
                    vec![
                        "http://127.0.0.1:7100".to_owned(),
                        "http://localhost:7100".to_owned(),
                    ],
                )]
                .into(),
            },
        }
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
