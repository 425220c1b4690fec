//! Faults from outside the process, each under chat load, each ending with the same check:
//! every acknowledged message is in the history exactly once, in order.
//!
//! - Graceful stop: SIGTERM (what Kubernetes and compose send) drains the edge with close 1001
//!   and `serve` exits 0 within seconds; nothing acknowledged is missing after a restart.
//! - Broker faults: `serve` on a tansu broker that is killed with SIGKILL and restarted on the
//!   same storage; producers, consumers and the edge recover by themselves.
//! - Reconnect storm: every client drops at once and resumes with `since_seq`; each ends with
//!   exactly its conversation's events (`SWITCHBOARD_TEST_STORM_CLIENTS`, 500 by default;
//!   `ops/reconnect-storm.sh` runs 10,000 with the load generator and samples the RSS).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::kafka::Broker;
use support::{
    Load, Server, WsClient, assert_every_ack_once_in_order, follow, history, request, token,
    try_request,
};

/// Opens a conversation for `customer`, retrying while the write side is not ready yet (a
/// Kafka-backed `serve` announces its listeners before the group has assigned partitions).
fn open(server: &Server, customer: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = r#"{"customer_id":"cust-1","channel":"web"}"#;
        match try_request(
            &server.http,
            "POST",
            "/v1/conversations",
            Some(customer),
            body,
        ) {
            Some((201, opened)) => return opened["conversation_id"].as_str().unwrap().to_owned(),
            other => assert!(
                Instant::now() < deadline,
                "the conversation did not open: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the load has at least `n` acknowledgements.
async fn acks_reach(load: &Load, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let acked = load.acked().len();
        if acked >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the load reached {acked} of {n} acks within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the customer's chat load on its own thread.
fn chat(load: &Arc<Load>, customer: &str, conversation: &str) -> std::thread::JoinHandle<()> {
    let (load, customer, conversation) =
        (load.clone(), customer.to_owned(), conversation.to_owned());
    std::thread::spawn(move || load.send_until_stopped(&customer, &conversation))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_edge_and_exits_zero_keeping_every_ack() {
    let data = tempfile::tempdir().unwrap();
    let customer = token(data.path(), "customer", "cust-1");
    let agent = token(data.path(), "agent", "agent-1");
    let mut server = Server::start(data.path(), &[]);
    let conversation = open(&server, &customer);
    let mut watcher = WsClient::connect(&server.edge, &agent).await.unwrap();
    let subscribe =
        json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": 0});
    watcher.send(subscribe).await.unwrap();
    let drained = tokio::spawn(async move { watcher.until_closed().await });

    let load = Arc::new(Load::new(&server.http));
    let sender = chat(&load, &customer, &conversation);
    acks_reach(&load, 20, Duration::from_secs(30)).await;

    // SIGTERM mid-load: the server drains and exits on its own.
    let (stopped, server) = tokio::task::spawn_blocking(move || {
        let stopped = server.terminate(Duration::from_secs(15));
        (stopped, server)
    })
    .await
    .unwrap();
    let (status, took) = stopped.expect("serve exits within 15 s of SIGTERM");
    assert!(status.success(), "serve exits 0 on SIGTERM, got {status}");
    assert!(took < Duration::from_secs(8), "serve took {took:?} to stop");
    let (frames, code) = tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .expect("the watcher is closed by the drain")
        .unwrap();
    assert_eq!(code, Some(1001), "the drain closes with going-away");
    assert!(
        frames.iter().any(|f| f["type"] == "goaway"),
        "the watcher is told to go away before the close"
    );

    load.stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    // The writer stopped before the runtime: its last snapshots were written, not cancelled.
    let mut server = server;
    let complaints: Vec<String> = server
        .stderr_to_end()
        .into_iter()
        .filter(|line| line.contains("snapshot") || line.contains("did not stop"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
    drop(server);
    let acked = load.acked();
    let server = Server::start(data.path(), &[]);
    let history = history(&server.query, &agent, &conversation);
    assert_every_ack_once_in_order(&history, &acked);
}

/// Follows `conversation` as `agent` from seq 0 until `done` is set and the newest acked seq
/// has arrived, reconnecting whenever the connection drops. `follow` asserts each event
/// continues the sequence; this returns the last seq seen.
async fn follow_throughout(
    edge: String,
    agent: String,
    conversation: String,
    done: Arc<AtomicBool>,
    newest: Arc<Load>,
) -> u64 {
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let reached = newest
            .acked()
            .iter()
            .map(|(_, seq)| *seq)
            .max()
            .unwrap_or(0);
        if done.load(Ordering::Relaxed) && last >= reached {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "the follower is stuck at seq {last} of {reached}"
        );
        let until = Instant::now() + Duration::from_secs(2);
        last = follow(&edge, &agent, &conversation, last, until).await;
    }
}

/// The broker killed twice with SIGKILL under load and restarted on its storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_under_load_and_restarted_loses_no_ack() {
    let storage = tempfile::tempdir().unwrap();
    let mut broker = Broker::on_disk(storage.path());
    let data = tempfile::tempdir().unwrap();
    let config = broker.config(storage.path());
    let config = config.to_str().unwrap();
    let server = Server::start(data.path(), &["--config", config]);
    let customer = token(data.path(), "customer", "cust-1");
    let agent = token(data.path(), "agent", "agent-1");
    let conversation = open(&server, &customer);

    let load = Arc::new(Load::new(&server.http));
    let sender = chat(&load, &customer, &conversation);
    let done = Arc::new(AtomicBool::new(false));
    let follower = tokio::spawn(follow_throughout(
        server.edge.clone(),
        agent.clone(),
        conversation.clone(),
        done.clone(),
        load.clone(),
    ));

    for round in 1..=2 {
        acks_reach(&load, 30 * round, Duration::from_secs(60)).await;
        broker.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        broker.restart();
        // Producers recover by themselves: acknowledgements go on after the restart.
        let before = load.acked().len();
        acks_reach(&load, before + 20, Duration::from_secs(90)).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    done.store(true, Ordering::Relaxed);
    // The edge's tail recovers: the follower reaches the newest acknowledged seq.
    let last = follower
        .await
        .expect("the follower saw every event once, in order");
    let acked = load.acked();
    assert!(last >= acked.last().unwrap().1);

    // The projector recovers: its summary (read models only, never the log) reaches the
    // newest acknowledged seq and counts every message once.
    let newest = acked.last().unwrap().1;
    let path = format!("/v1/conversations/{conversation}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let summary = loop {
        let (status, summary) = request(&server.query, "GET", &path, Some(&agent), "");
        assert_eq!(status, 200, "{summary}");
        if summary["last_seq"].as_u64() >= Some(newest) {
            break summary;
        }
        assert!(
            Instant::now() < deadline,
            "the projector is stuck: {summary}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        summary["messages"].as_u64(),
        Some(acked.len() as u64),
        "{summary}"
    );
    let history = history(&server.query, &agent, &conversation);
    assert_every_ack_once_in_order(&history, &acked);
}

/// The secret `serve` signs and checks tokens with, written before it starts so the test can
/// mint hundreds of tokens in-process.
const STORM_SECRET: &str = "faults-storm-secret-faults-storm-secret-0123";

/// One client of the storm and what it saw: every event's seq, and the messages' ids.
#[derive(Default)]
struct Seen {
    seqs: Vec<u64>,
    messages: Vec<String>,
}

impl Seen {
    fn last(&self) -> u64 {
        self.seqs.last().copied().unwrap_or(0)
    }

    fn note(&mut self, frame: &serde_json::Value) {
        if frame["type"] == "event" {
            self.seqs.push(frame["seq"].as_u64().unwrap());
            if frame["kind"] == "message_posted" {
                let id = frame["data"]["client_msg_id"].as_str().unwrap_or_default();
                self.messages.push(id.to_owned());
            }
        }
    }
}

/// Subscribes from what `seen` holds, noting the replayed gap, until `subscribed`.
async fn resume(ws: &mut WsClient, conversation: &str, seen: &mut Seen) {
    let frame = json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": seen.last()});
    ws.send(frame).await.unwrap();
    loop {
        let frame = ws.next().await.expect("the server answers the subscribe");
        match frame["type"].as_str() {
            Some("subscribed") => return,
            Some("error") if frame["code"] == "history_unavailable" => {
                // The read models are catching up: ask again shortly, as the protocol says.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let again = json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": seen.last()});
                ws.send(again).await.unwrap();
            }
            Some("error" | "reload") => panic!("resume refused: {frame}"),
            _ => seen.note(&frame),
        }
    }
}

/// Reads until `seen` reaches `seq`.
async fn until(ws: &mut WsClient, seq: u64, seen: &mut Seen) {
    while seen.last() < seq {
        let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .unwrap_or_else(|_| panic!("seq {seq} never arrived (at {})", seen.last()))
            .expect("the connection stays up");
        seen.note(&frame);
    }
}

/// The customer sends `n` messages, each after the previous ack; answers the last seq.
async fn say(
    ws: &mut WsClient,
    conversation: &str,
    sent: &mut Vec<String>,
    n: usize,
    seen: &mut Seen,
) -> u64 {
    let mut seq = 0;
    for _ in 0..n {
        let id = format!("m-{}", sent.len());
        let frame = json!({"type": "send", "ref": id, "conversation_id": conversation, "client_msg_id": id, "body": "hello"});
        ws.send(frame).await.unwrap();
        loop {
            let frame = ws.next().await.expect("the server acks");
            match frame["type"].as_str() {
                Some("ack") => break seq = frame["seq"].as_u64().unwrap(),
                Some("error") => panic!("send refused: {frame}"),
                _ => seen.note(&frame),
            }
        }
        sent.push(id);
    }
    seq
}

/// Every client (a customer and an agent per conversation) drops at once and resumes with
/// `since_seq`: each ends with exactly its conversation's events, once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_ends_with_every_client_holding_exactly_its_events() {
    use switchboard_events::id::{PrincipalId, TenantId};
    use switchboard_events::principal::{Principal, Role};
    use switchboard_events::token::{TokenIssuer, now_seconds};

    let clients: usize = std::env::var("SWITCHBOARD_TEST_STORM_CLIENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    let data = tempfile::tempdir().unwrap();
    let secrets = data.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let secret_file = secrets.join("jwt-hs256.key");
    std::fs::write(&secret_file, STORM_SECRET).unwrap();
    // A shared secret beside the instance's keys, so the test mints its thousand tokens itself.
    let secret_setting = format!("auth.jwt_secret_file={}", secret_file.display());
    let server = Server::start(data.path(), &["--set", &secret_setting]);
    let issuer = TokenIssuer::hs256(STORM_SECRET.as_bytes(), "switchboard", "switchboard");
    let mint = |tenant: &str, role, subject: &str| {
        let principal = Principal::new(
            TenantId::new(tenant).unwrap(),
            role,
            PrincipalId::new(subject).unwrap(),
        );
        issuer.issue(&principal, now_seconds() + 3600).unwrap()
    };
    let rooms = clients / 2;
    let dropped = Arc::new(tokio::sync::Barrier::new(rooms));
    let setting_up = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for i in 0..rooms {
        // Under the tenant's queue limit (200 waiting): 100 conversations per tenant.
        let tenant = format!("storm{}", i / 100);
        let customer = mint(&tenant, Role::Customer, &format!("cust-{i}"));
        let agent = mint(&tenant, Role::Agent, &format!("agent-{i}"));
        let (edge, dropped, setting_up) =
            (server.edge.clone(), dropped.clone(), setting_up.clone());
        tasks.push(tokio::spawn(async move {
            let (mut seen_c, mut seen_a, mut sent) = (Seen::default(), Seen::default(), Vec::new());
            let turn = setting_up.acquire().await.unwrap();
            let mut c = WsClient::connect(&edge, &customer)
                .await
                .expect("customer connects");
            let mut a = WsClient::connect(&edge, &agent)
                .await
                .expect("agent connects");
            c.send(json!({"type": "open", "ref": "open"}))
                .await
                .unwrap();
            let conversation = loop {
                let frame = c.next().await.expect("the open is answered");
                if frame["type"] == "ack" {
                    break frame["conversation_id"].as_str().unwrap().to_owned();
                }
                assert_ne!(frame["type"], "error", "{frame}");
            };
            resume(&mut c, &conversation, &mut seen_c).await;
            resume(&mut a, &conversation, &mut seen_a).await;
            let seq = say(&mut c, &conversation, &mut sent, 3, &mut seen_c).await;
            until(&mut c, seq, &mut seen_c).await;
            until(&mut a, seq, &mut seen_a).await;
            drop(turn);
            // Everyone drops together, and nobody reconnects before all have dropped.
            dropped.wait().await;
            drop((c, a));
            dropped.wait().await;
            let mut c = WsClient::connect(&edge, &customer)
                .await
                .expect("customer reconnects");
            let mut a = WsClient::connect(&edge, &agent)
                .await
                .expect("agent reconnects");
            resume(&mut c, &conversation, &mut seen_c).await;
            resume(&mut a, &conversation, &mut seen_a).await;
            let seq = say(&mut c, &conversation, &mut sent, 3, &mut seen_c).await;
            until(&mut c, seq, &mut seen_c).await;
            until(&mut a, seq, &mut seen_a).await;
            for (who, seen) in [("customer", &seen_c), ("agent", &seen_a)] {
                let expected: Vec<u64> = (1..=seen.last()).collect();
                assert_eq!(
                    seen.seqs, expected,
                    "{who} of {conversation}: every seq once, in order"
                );
                assert_eq!(
                    seen.messages, sent,
                    "{who} of {conversation}: exactly the messages sent"
                );
            }
        }));
    }
    for task in tasks {
        task.await
            .expect("each client ends with exactly its events");
    }
    // The server stayed up through the storm.
    let (status, _) = request(&server.admin, "GET", "/healthz", None, "");
    assert_eq!(status, 200);
}
