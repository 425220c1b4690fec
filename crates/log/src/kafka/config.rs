//! Configuration of the Kafka backend and the librdkafka settings it implies.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

/// Configuration of the Kafka backend.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port,...` of the brokers.
    pub bootstrap_servers: String,
    pub client_id: String,
    /// Prefix of the `transactional.id` a claim of a partition uses: the same for every
    /// instance that may claim the partition, so that a new claim fences the old one.
    pub transaction_prefix: String,
    /// Replication factor of topics this backend creates.
    pub replication_factor: i32,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd` (if librdkafka has it).
    pub compression: String,
    /// How long the producer waits to fill a batch.
    pub linger: Duration,
    /// Requests in flight per broker connection; at most 5 with idempotence.
    pub max_in_flight: u32,
    /// How long a record may take to be acknowledged before it fails.
    pub delivery_timeout: Duration,
    /// The largest record accepted (key + value + headers).
    pub max_record_bytes: usize,
    /// How long a group member may go silent before the group drops it.
    pub session_timeout: Duration,
    /// How long a `read` waits for the brokers before it fails (retriable).
    pub read_timeout: Duration,
    /// Further librdkafka properties, applied last.
    pub extra: BTreeMap<String, String>,
    /// Topic-level settings of the topics this backend creates (`min.insync.replicas`, ...).
    pub topic_config: BTreeMap<String, String>,
}

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "switchboard".into(),
            transaction_prefix: "switchboard".into(),
            replication_factor: 1,
            compression: "lz4".into(),
            linger: Duration::from_millis(5),
            max_in_flight: 5,
            delivery_timeout: Duration::from_secs(30),
            max_record_bytes: 1024 * 1024,
            session_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            extra: BTreeMap::new(),
            topic_config: BTreeMap::new(),
        }
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("allow.auto.create.topics", "false");
        config
    }

    fn finish(&self, mut config: ClientConfig) -> ClientConfig {
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    /// The librdkafka settings of the producer: idempotent, acks from all
    /// in-sync replicas, Kafka's murmur2 partitioner, bounded in-flight
    /// requests. Public so that a plain producer can be compared with ours.
    pub fn producer(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger.as_millis().to_string())
            .set(
                "max.in.flight.requests.per.connection",
                self.max_in_flight.to_string(),
            )
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().to_string(),
            )
            // Leave room for the record's framing on top of its bytes.
            .set(
                "message.max.bytes",
                (self.max_record_bytes + 64 * 1024).to_string(),
            );
        self.finish(config)
    }

    /// A consumer that reads assigned partitions; it never commits.
    pub(crate) fn reader(&self) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", format!("{}-reader", self.client_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true");
        self.finish(config)
    }

    /// A consumer-group member: manual commits only, after processing.
    pub(crate) fn member(&self, group: &str, reset: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", reset)
            .set("partition.assignment.strategy", "range")
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            );
        self.finish(config)
    }
}
