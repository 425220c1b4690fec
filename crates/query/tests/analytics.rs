//! A real analytics client end to end: our events produced to a Kafka topic on a tansu broker
//! through `switchboard_log::kafka`, consumed by Python's `confluent-kafka` `AvroDeserializer`
//! pointed at our schema registry API on a loopback port, and every event comes back.
//!
//! The harness needs `tansu` (`ops/install-tansu.sh`) and `python3` with `venv`; it installs
//! `confluent-kafka` with pip into a virtual environment under the target directory, once.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_events::{ConversationEvent, Topic, fixtures};
use switchboard_log::kafka::{KafkaConfig, KafkaLog};
use switchboard_log::{EventLog, NewRecord, TopicSpec};

/// The pinned client: the version this test was written against.
const CONFLUENT_KAFKA: &str = "confluent-kafka[avro,schemaregistry]==2.16.0";

fn tansu() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain(home.map(|h| h.join("bin")))
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file())
        .expect("this test needs the tansu broker: run `bash ops/install-tansu.sh` first")
}

/// A tansu broker with in-memory storage on a free loopback port, killed on drop.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(tansu())
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let mut broker = Self { child, address };
        let deadline = Instant::now() + Duration::from_secs(20);
        // A readiness probe bounded in time, not a sleep standing in for synchronisation.
        while TcpStream::connect(&broker.address).is_err() {
            assert!(broker.child.try_wait().unwrap().is_none(), "tansu exited");
            assert!(Instant::now() < deadline, "tansu did not listen within 20s");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python with confluent-kafka, installed under the target directory on first use.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-analytics");
    let python = venv.join("bin").join("python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import confluent_kafka.schema_registry.avro"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return python;
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("this test needs python3 with venv");
    assert!(created.success(), "python3 -m venv failed");
    let installed = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CONFLUENT_KAFKA,
        ])
        .status()
        .expect("run pip");
    assert!(installed.success(), "pip install {CONFLUENT_KAFKA} failed");
    assert!(
        ready(&python),
        "confluent-kafka does not import after installing it"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafkas_avro_deserializer_reads_our_topic_through_our_registry() {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let broker = Broker::start();
    let mut config = KafkaConfig::new(&broker.address);
    // tansu serves no fetch that starts inside a multi-record batch: one record per batch.
    config.extra.insert("batch.num.messages".into(), "1".into());
    let log = KafkaLog::connect(config).unwrap();
    let topic = Topic::Conversations.name();
    let partitions = 3;
    log.create_topic(&TopicSpec::new(topic, partitions))
        .await
        .unwrap();
    let events: Vec<(ConversationEvent, Vec<u8>)> = fixtures::conversation_history();
    let records = events
        .iter()
        .map(|(e, frame)| NewRecord::new(e.envelope.conversation_id.as_str(), frame.clone()))
        .collect();
    log.append(topic, records, &Default::default())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, switchboard_query::registry_api::routes())
            .await
            .unwrap()
    });

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/analytics/consume.py");
    let expected = events.len().to_string();
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args([broker.address.as_str(), &registry, topic])
        .args([partitions.to_string(), expected])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the consumer failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut seqs = BTreeMap::<String, Vec<u64>>::new();
    for line in stdout.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        seqs.entry(value["conversation_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(value["seq"].as_u64().unwrap());
    }
    let conversation = fixtures::conversation().to_string();
    assert_eq!(
        seqs.remove(&conversation).unwrap(),
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "every event, in order"
    );
    assert!(seqs.is_empty());
}
