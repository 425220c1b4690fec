//! The log, the store and the archive a process runs on, opened from the configuration.

use std::sync::Arc;

use anyhow::Context;
use switchboard_ingest::writer::directory::{DirectoryConfig, KeyDirectory};
use switchboard_log::EventLog;
use switchboard_log::embedded::{Durability as LogDurability, EmbeddedConfig, EmbeddedLog};
use switchboard_log::kafka::{KafkaConfig, KafkaLog};
use switchboard_store::ReadModels;
use switchboard_store::cold::Archive;
use switchboard_store::embedded::{EmbeddedMemory, EmbeddedOptions, EmbeddedStore};
use switchboard_store::keywrap::KeyWrap;
use switchboard_store::scylla::{Consistency, ScyllaOptions, ScyllaStore};
use {switchboard_log::metrics as log, switchboard_store::metrics as store};

use crate::config::{Config, Durability, KafkaSettings, LogBackend, ScyllaSettings, StoreBackend};

/// The backends of one process.
#[derive(Debug)]
pub struct Backends {
    pub log: Arc<dyn EventLog>,
    /// The embedded log, which must be shut down before the process exits.
    embedded: Option<Arc<EmbeddedLog>>,
    pub store: Arc<dyn ReadModels>,
    /// The embedded store, whose rows have a digest (`switchboard rebuild` compares them).
    pub embedded_store: Option<Arc<EmbeddedStore>>,
    /// The customers' data keys shared through the keys topic: on Kafka with the embedded
    /// store. Otherwise the store keeps them (with ScyllaDB, for every process).
    pub keys: Option<Arc<KeyDirectory>>,
    pub archive: Archive,
}

impl Backends {
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let data = &config.data_dir;
        let embedded_anything = config.log.backend == LogBackend::Embedded
            || config.store.backend == StoreBackend::Embedded
            || config.archive.location.is_none();
        if embedded_anything {
            crate::secrets::private_dir(data).context("the data directory")?;
        }
        let kek = crate::secrets::kek(config)?;
        let (log, embedded): (Arc<dyn EventLog>, _) = match config.log.backend {
            LogBackend::Embedded => {
                let mut log_config = EmbeddedConfig::new(data.join("log"));
                log_config.durability = match config.log.durability {
                    Durability::Always => LogDurability::Always,
                    Durability::Never => LogDurability::Never,
                };
                let log = Arc::new(EmbeddedLog::open(log_config).context("opening the event log")?);
                (
                    Arc::new(log::Metered::new(log.clone(), "embedded")),
                    Some(log),
                )
            }
            LogBackend::Kafka => {
                let log = KafkaLog::connect(kafka_config(&config.log.kafka))
                    .context("connecting to Kafka")?;
                (Arc::new(log::Metered::new(Arc::new(log), "kafka")), None)
            }
        };
        let (store, embedded_store): (Arc<dyn ReadModels>, _) = match config.store.backend {
            StoreBackend::Embedded => {
                let store = Arc::new(open_embedded_store(
                    &data.join("store"),
                    kek.clone(),
                    config.store.embedded,
                )?);
                let metered: Arc<dyn ReadModels> =
                    Arc::new(store::Metered::new(store.clone(), "embedded"));
                (metered, Some(store))
            }
            StoreBackend::Scylla => {
                let mut options = scylla_options(&config.store.scylla)?;
                options.kek = kek.clone();
                let store = ScyllaStore::connect(&options)
                    .await
                    .context("connecting to ScyllaDB")?;
                (
                    Arc::new(store::Metered::new(Arc::new(store), "scylla")),
                    None,
                )
            }
        };
        let keys = match (config.log.backend, &embedded_store) {
            (LogBackend::Kafka, Some(embedded_store)) => {
                let settings = &config.log.kafka;
                let directory = KeyDirectory::start(
                    log.clone(),
                    embedded_store.clone(),
                    store.clone(),
                    kek,
                    DirectoryConfig {
                        topic: settings.keys_topic.clone(),
                        partitions: settings.keys_partitions,
                        ..DirectoryConfig::default()
                    },
                )
                .await
                .context("starting the key directory on the keys topic (log.kafka.keys_topic)")?;
                Some(Arc::new(directory))
            }
            _ => None,
        };
        let archive = match config.archive.location.as_deref() {
            None => Archive::local(&data.join("archive")).map_err(anyhow::Error::from),
            Some(url) if url.starts_with("s3://") => s3_archive(url),
            Some(dir) => Archive::local(std::path::Path::new(dir)).map_err(anyhow::Error::from),
        }
        .context("opening the cold archive")?;
        Ok(Self {
            log,
            embedded,
            store,
            embedded_store,
            keys,
            archive,
        })
    }

    /// Flushes and closes what must be closed.
    pub fn shutdown(&self) {
        if let Some(log) = &self.embedded {
            log.shutdown();
        }
    }
}

/// The embedded read-model store in `dir`, created when missing, its customers' keys wrapped
/// by `kek`, using at most `memory` for fjall's caches and buffers.
pub fn open_embedded_store(
    dir: &std::path::Path,
    kek: Arc<dyn KeyWrap>,
    memory: EmbeddedMemory,
) -> anyhow::Result<EmbeddedStore> {
    EmbeddedStore::open(
        dir,
        EmbeddedOptions {
            kek,
            memory,
            ..EmbeddedOptions::default()
        },
    )
    .context("opening the read-model store")
}

#[cfg(feature = "s3")]
fn s3_archive(url: &str) -> anyhow::Result<Archive> {
    let bucket = url
        .trim_start_matches("s3://")
        .split('/')
        .next()
        .unwrap_or("");
    Ok(Archive::s3_from_env(bucket)?)
}

#[cfg(not(feature = "s3"))]
fn s3_archive(url: &str) -> anyhow::Result<Archive> {
    anyhow::bail!("archive.location {url} needs S3 support: build switchboard with `--features s3`")
}

/// The librdkafka settings an operator gave, as the Kafka backend's configuration.
pub fn kafka_config(settings: &KafkaSettings) -> KafkaConfig {
    let mut config = KafkaConfig::new(settings.bootstrap_servers.clone());
    config.client_id = settings.client_id.clone();
    config.session_timeout = std::time::Duration::from_millis(settings.session_timeout_ms);
    config.replication_factor = settings.replication_factor as i32;
    config.topic_config.insert(
        "min.insync.replicas".to_owned(),
        settings.min_insync_replicas.to_string(),
    );
    let mut set = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            config.extra.insert(key.to_owned(), value);
        }
    };
    set(
        "security.protocol",
        Some(settings.security_protocol.clone()),
    );
    set("sasl.mechanism", settings.sasl_mechanism.clone());
    set("sasl.username", settings.sasl_username.clone());
    set("sasl.password", settings.sasl_password.clone());
    set(
        "ssl.ca.location",
        settings
            .ssl_ca_location
            .as_ref()
            .map(|p| p.display().to_string()),
    );
    for (key, value) in &settings.extra {
        config.extra.insert(key.clone(), value.clone());
    }
    config
}

fn scylla_options(settings: &ScyllaSettings) -> anyhow::Result<ScyllaOptions> {
    let mut options = ScyllaOptions::new(settings.contact_points.clone(), &settings.keyspace);
    // Every statement is idempotent DDL: creating the schema at each start is safe.
    options.create_schema = true;
    options.replication_factor = settings.replication_factor;
    options.consistency = match settings.consistency.as_str() {
        "local_quorum" => Consistency::LocalQuorum,
        "quorum" => Consistency::Quorum,
        "local_one" => Consistency::LocalOne,
        "one" => Consistency::One,
        "all" => Consistency::All,
        other => anyhow::bail!(
            "store.scylla.consistency {other:?} is not one of local_quorum, quorum, local_one, one, all"
        ),
    };
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_security_and_topic_settings_reach_librdkafka() {
        let settings = KafkaSettings {
            security_protocol: "sasl_ssl".to_owned(),
            sasl_mechanism: Some("SCRAM-SHA-512".to_owned()),
            sasl_username: Some("switchboard".to_owned()),
            min_insync_replicas: 2,
            replication_factor: 3,
            ..KafkaSettings::default()
        };
        let config = kafka_config(&settings);
        assert_eq!(config.extra["security.protocol"], "sasl_ssl");
        assert_eq!(config.extra["sasl.mechanism"], "SCRAM-SHA-512");
        assert!(!config.extra.contains_key("sasl.password"));
        assert_eq!(config.topic_config["min.insync.replicas"], "2");
        assert_eq!(config.replication_factor, 3);
    }

    #[test]
    fn an_unknown_consistency_is_refused_by_name() {
        let settings = ScyllaSettings {
            consistency: "sometimes".to_owned(),
            ..ScyllaSettings::default()
        };
        let error = scylla_options(&settings).unwrap_err().to_string();
        assert!(error.contains("sometimes"), "{error}");
        let fine = scylla_options(&ScyllaSettings::default()).unwrap();
        assert_eq!(fine.consistency, Consistency::LocalQuorum);
    }
}
