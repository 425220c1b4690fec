//! Two edge instances on the Kafka backend (a tansu broker the harness starts): a customer on
//! one and an agent on the other talk, and typing crosses instances through the signals topic.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::client::connect;
use support::{Backends, edge_with, principal, token};
use switchboard_edge::{EdgeConfig, LogBus};
use switchboard_events::principal::Role;
use switchboard_log::EventLog;
use switchboard_log::kafka::{KafkaConfig, KafkaLog};
use switchboard_store::ReadModels;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};

/// A tansu broker on a free loopback port with in-memory storage, killed on drop.
struct Broker {
    child: Child,
    address: String,
}

impl Broker {
    fn start() -> Self {
        let binary = std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cargo/bin/tansu"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("tansu"));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(binary)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the kafka test needs tansu: run `bash ops/install-tansu.sh`");
        let mut broker = Self { child, address };
        // Readiness probe, bounded: the port accepts connections.
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&broker.address).is_err() {
            assert!(broker.child.try_wait().unwrap().is_none(), "tansu exited");
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    /// A client of its own: each edge instance connects separately, as separate processes would.
    fn log(&self) -> Arc<dyn EventLog> {
        let mut config = KafkaConfig::new(&self.address);
        config.session_timeout = Duration::from_secs(6);
        // tansu serves no fetch that starts inside a multi-record batch.
        config.extra.insert("batch.num.messages".into(), "1".into());
        Arc::new(KafkaLog::connect(config).unwrap())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_on_one_edge_and_an_agent_on_another_talk() {
    let broker = Broker::start();
    let store_dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ReadModels> =
        Arc::new(EmbeddedStore::open(store_dir.path(), EmbeddedOptions::default()).unwrap());
    let backends = Backends::on(
        broker.log(),
        store,
        (tempfile::tempdir().unwrap(), store_dir),
        false,
    )
    .await;

    let mut edges = Vec::new();
    for _ in 0..2 {
        let log = broker.log();
        let bus = Arc::new(LogBus::start(log.clone()).await.unwrap());
        let mut instance = backends.shallow();
        instance.log = log;
        edges.push(edge_with(&instance, EdgeConfig::default(), bus).await);
    }
    let mut customer = connect(
        &edges[0].url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let mut agent = connect(
        &edges[1].url(),
        &token(&principal("acme", Role::Agent, "agent-1")),
    )
    .await;

    let conversation = customer.open().await;
    customer.subscribe(&conversation, 0).await;
    agent.subscribe(&conversation, 0).await;
    agent
        .send(json!({"type": "take", "conversation_id": conversation}))
        .await;
    agent.expect("ack").await;

    customer
        .say(&conversation, "m1", "hello from edge one")
        .await;
    customer.expect("ack").await;
    let heard = loop {
        let event = agent.expect("event").await;
        if event["kind"] == "message_posted" {
            break event;
        }
    };
    assert_eq!(heard["data"]["body"], "hello from edge one");

    agent.say(&conversation, "r1", "hello from edge two").await;
    agent.expect("ack").await;
    let reply = loop {
        let event = customer.expect("event").await;
        if event["kind"] == "message_posted" && event["actor"]["kind"] == "agent" {
            break event;
        }
    };
    assert_eq!(reply["data"]["body"], "hello from edge two");

    agent
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let typing = customer.expect("typing").await;
    assert_eq!(
        (typing["role"].as_str(), typing["subject"].as_str()),
        (Some("agent"), Some("agent-1"))
    );
}
