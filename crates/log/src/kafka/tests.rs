//! The Kafka backend against the shared suite, on a tansu broker that the
//! harness starts on a free loopback port and stops afterwards.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::suite;

/// A tansu broker with in-memory storage, killed on drop.
pub(crate) struct Broker {
    child: Child,
    pub address: String,
}

fn tansu() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file());
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"))
        .filter(|p| p.is_file());
    on_path.or(in_cargo_home).unwrap_or_else(|| {
        panic!("the kafka tests need the tansu broker: run `bash ops/install-tansu.sh` first")
    })
}

impl Broker {
    pub fn start() -> Broker {
        let port = TcpListener::bind("127.0.0.1:0")
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
        let mut broker = Broker { child, address };
        broker.wait_until_listening();
        broker
    }

    /// A readiness probe, bounded in time: the port accepts connections.
    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.address).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "tansu exited before listening on {}: {status}",
                    self.address
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 20s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> KafkaLog {
        let mut config = KafkaConfig::new(&self.address);
        config.session_timeout = Duration::from_secs(6);
        // tansu 0.6 numbers a multi-record batch as one offset in its
        // ListOffsets answer and serves no fetch that starts inside a batch;
        // one record per batch keeps it to the protocol the suite checks.
        config.extra.insert("batch.num.messages".into(), "1".into());
        KafkaLog::connect(config).expect("kafka clients")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_ordering_per_key_and_offsets() {
    let broker = Broker::start();
    suite::ordering_per_key_and_offsets(&broker.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_headers_and_timestamps() {
    let broker = Broker::start();
    suite::headers_and_timestamps(&broker.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_tailing() {
    let broker = Broker::start();
    suite::tailing(&broker.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_tail_while_appending() {
    let broker = Broker::start();
    suite::tail_while_appending(&broker.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_group_commit_and_resume() {
    let broker = Broker::start();
    suite::group_commit_and_resume(&broker.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_rebalance_when_a_member_joins() {
    let broker = Broker::start();
    suite::rebalance_when_a_member_joins(&broker.log()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_bad_input() {
    let broker = Broker::start();
    suite::bad_input(&broker.log(), 1024 * 1024).await;
}

/// Fencing rides on Kafka transactions (KIP-98). tansu 0.6 does not implement `EndTxn`, so on
/// it this test checks that a fenced append fails loudly rather than writing unfenced; the
/// fencing scenario itself runs against a broker that has transactions when
/// `SWITCHBOARD_TEST_KAFKA=host:port` names one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_claims_fence_older_writers() {
    if let Ok(address) = std::env::var("SWITCHBOARD_TEST_KAFKA") {
        let client = || KafkaLog::connect(KafkaConfig::new(&address)).expect("kafka clients");
        suite::claims_fence_older_writers(&client(), &client()).await;
        return;
    }
    eprintln!(
        "fencing scenario skipped: tansu has no transactions; set SWITCHBOARD_TEST_KAFKA=host:port to run it"
    );
    let broker = Broker::start();
    let log = broker.log();
    log.create_topic(&TopicSpec::new("suite.fencing", 1))
        .await
        .unwrap();
    let fence = log.claim("suite.fencing", 0).await.unwrap();
    let append = log
        .append(
            "suite.fencing",
            vec![NewRecord::new("k", b"v".to_vec())],
            &AppendOptions::fenced(fence),
        )
        .await;
    match append {
        Err(LogError::Kafka { op, message, .. }) => {
            assert_eq!(op, "commit transaction");
            assert!(message.contains("EndTxn"), "{message}");
        }
        other => {
            panic!("a fenced append on a broker without transactions must fail, got {other:?}")
        }
    }
    let range = log.offsets("suite.fencing", 0).await.unwrap();
    let visible = log.read("suite.fencing", 0, range.start, 10).await.unwrap();
    assert!(
        visible.is_empty(),
        "nothing of the failed transaction is visible: {visible:?}"
    );
}

/// A topic's own settings (a compacted topic's policy and lags) reach the broker beside the
/// backend's topic settings, and a second creation with them checks the partition count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_created_with_settings_of_its_own() {
    use rdkafka::admin::ResourceSpecifier;
    let broker = Broker::start();
    let log = broker.log();
    let spec = TopicSpec::new("suite.compacted", 2)
        .with("cleanup.policy", "compact")
        .with("min.compaction.lag.ms", "3600000");
    log.create_topic(&spec).await.unwrap();
    log.create_topic(&spec).await.unwrap();
    let options = AdminOptions::new().request_timeout(Some(METADATA_TIMEOUT));
    let described = log
        .inner
        .admin
        .describe_configs([&ResourceSpecifier::Topic("suite.compacted")], &options)
        .await
        .unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    // Not Kafka's defaults (`delete`, 0): the values the topic was created with. (tansu
    // reports every entry's source as the default.)
    let setting = |name: &str| resource.get(name).and_then(|entry| entry.value.clone());
    assert_eq!(setting("cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(setting("min.compaction.lag.ms").as_deref(), Some("3600000"));
    let other = log
        .create_topic(&TopicSpec::new("suite.compacted", 3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            other,
            LogError::TopicConflict {
                existing: 2,
                requested: 3,
                ..
            }
        ),
        "{other}"
    );
}
