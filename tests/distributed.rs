//! switchboard as a distributed deployment: every role a separate OS process of the real
//! binary, on a tansu broker the harness starts. Two edges, two ingest instances (unfenced:
//! tansu has no transactions), and the read side. A customer on edge A and an agent on edge B
//! chat; one ingest instance is SIGKILLed mid-load and its partitions move to the other. Every
//! acknowledged message is in the history once, at its seq; each live subscriber got every
//! event once and in order; the chain verifies through the query service; the conversation
//! carries on; the surviving instance routes a new conversation; and an analytics consumer
//! outside the product (Python's confluent-kafka `AvroDeserializer` on our registry API) reads
//! every event of the run from the topic.
//!
//! On the embedded store each process folds its own read models, so the edges run a projector
//! of their own beside the one of the query process, and every process folds the customers'
//! data keys from the keys topic: message bodies read as their text on both edges and in the
//! query service, and the instance that takes over after the kill seals with the key the dead
//! one made. With `SWITCHBOARD_TEST_SCYLLA=host:port` the same scenario runs on ScyllaDB,
//! projector and query as separate processes.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::kafka::{Broker, consume, python};
use support::node::{Node, kafka_config, token};
use support::{WsClient, every_listener_on_port_zero, request, switchboard};

const TOPIC: &str = "switchboard.conversations";
const PARTITIONS: u32 = 4;

/// Where the read models live.
#[derive(Clone, Copy, Debug)]
enum Store {
    /// One embedded store per process: the edges fold their own.
    Embedded,
    /// One ScyllaDB keyspace shared by every process.
    Scylla,
}

/// The configuration file every process reads; each gets its own `client_id` by flag.
fn write_config(dir: &Path, broker: &str, store: Store) -> PathBuf {
    let mut text = kafka_config(dir, broker, PARTITIONS, 2);
    text.push_str("\n[edge.connection_rate]\nper_second = 1000.0\nburst = 1000.0\n");
    if let Store::Scylla = store {
        let node = std::env::var("SWITCHBOARD_TEST_SCYLLA").unwrap();
        let keyspace = format!("sb_distributed_{}", std::process::id());
        text.push_str(&format!(
            "\n[store]\nbackend = \"scylla\"\n\n[store.scylla]\ncontact_points = [\"{node}\"]\nkeyspace = \"{keyspace}\"\nreplication_factor = 1\nconsistency = \"one\"\n"
        ));
    }
    // Every process wraps the customers' keys under one KEK, made by the first to start.
    text.push_str(&format!(
        "\n[store.kek]\nfile = \"{}\"\n",
        dir.join("kek-1.kek").display()
    ));
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["--set".to_owned(), format!("{k}={v}")])
        .collect()
}

/// The processes of the deployment.
struct Deployment {
    /// Ingest A, then ingest B (which knows A's address).
    ingest: [Node; 2],
    read: Vec<Node>,
    edge_a: Node,
    edge_b: Node,
}

impl Deployment {
    fn start(dir: &Path, config: &Path, store: Store) -> Self {
        let data = |name: &str| dir.join(name);
        let id = |name: &str| ("log.kafka.client_id", name.to_owned());
        let ingest_a = Node::start(
            "ingest-a",
            "ingest,router",
            config,
            &data("ingest-a"),
            &flags(&[id("ingest-a")]),
        );
        let a = format!("http://{}", ingest_a.address("commands gRPC"));
        // The second instance knows the first, so its router reaches conversations there.
        let ingest_b = Node::start(
            "ingest-b",
            "ingest,router",
            config,
            &data("ingest-b"),
            &flags(&[id("ingest-b"), ("ingest.endpoints", format!("[\"{a}\"]"))]),
        );
        let b = format!("http://{}", ingest_b.address("commands gRPC"));
        let endpoints = ("ingest.endpoints", format!("[\"{a}\",\"{b}\"]"));
        let (read, edge_a, edge_b) = std::thread::scope(|s| {
            let read = s.spawn(|| match store {
                Store::Embedded => vec![Node::start(
                    "read",
                    "projector,query",
                    config,
                    &data("read"),
                    &flags(&[id("read")]),
                )],
                Store::Scylla => vec![
                    Node::start(
                        "projector",
                        "projector",
                        config,
                        &data("projector"),
                        &flags(&[id("projector")]),
                    ),
                    Node::start(
                        "query",
                        "query",
                        config,
                        &data("query"),
                        &flags(&[id("query")]),
                    ),
                ],
            });
            let edge = |name: &'static str| {
                let endpoints = endpoints.clone();
                s.spawn(move || match store {
                    // Its own store, folded by its own projector under its own name.
                    Store::Embedded => {
                        let consumer = format!("projector-{name}");
                        Node::start(
                            name,
                            "edge,projector",
                            config,
                            &data(name),
                            &flags(&[
                                id(name),
                                endpoints,
                                ("projector.consumer", consumer.clone()),
                                ("edge.history_consumer", consumer),
                            ]),
                        )
                    }
                    Store::Scylla => Node::start(
                        name,
                        "edge",
                        config,
                        &data(name),
                        &flags(&[id(name), endpoints]),
                    ),
                })
            };
            let (edge_a, edge_b) = (edge("edge-a"), edge("edge-b"));
            (
                read.join().unwrap(),
                edge_a.join().unwrap(),
                edge_b.join().unwrap(),
            )
        });
        Self {
            ingest: [ingest_a, ingest_b],
            read,
            edge_a,
            edge_b,
        }
    }

    fn query(&self) -> &str {
        self.read.last().unwrap().address("queries HTTP")
    }

    /// The ingest instance that writes `conversation` now: the one that answers a retry of an
    /// acknowledged post (`unchanged`, nothing appended) where the other says `not_owner`.
    fn owner(&self, conversation: &str, token: &str, post: &Value) -> usize {
        let path = format!("/v1/conversations/{conversation}/commands");
        let answers: Vec<(u16, Value)> = self
            .ingest
            .iter()
            .map(|node| {
                request(
                    node.address("commands HTTP"),
                    "POST",
                    &path,
                    Some(token),
                    &post.to_string(),
                )
            })
            .collect();
        let owners: Vec<usize> = (0..2)
            .filter(|&i| answers[i].0 == 200 && answers[i].1["unchanged"] == true)
            .collect();
        assert_eq!(owners.len(), 1, "one owner: {answers:?}");
        let other = 1 - owners[0];
        assert_eq!(answers[other].1["code"], "not_owner", "{answers:?}");
        owners[0]
    }
}

/// What a chat participant shares with the test: what it had acknowledged, what it saw live.
#[derive(Default)]
struct Seen {
    /// `client_msg_id` → acknowledged seq.
    acked: Mutex<Vec<(String, u64)>>,
    /// Seqs of the events delivered on the subscription, in arrival order.
    live: Mutex<Vec<u64>>,
    /// The body of every message delivered live, by `client_msg_id` (`null` if unreadable).
    bodies: Mutex<HashMap<String, Value>>,
    /// The agent the conversation was last assigned to, as seen live.
    assignee: Mutex<Option<String>>,
}

/// A participant subscribed to one conversation: reads frames, records events, and sends a
/// frame until it is acknowledged.
struct Participant {
    ws: WsClient,
    conversation: String,
    seen: Arc<Seen>,
}

impl Participant {
    async fn join(edge: &str, token: &str, conversation: &str, seen: Arc<Seen>) -> Self {
        let ws = WsClient::connect(edge, token)
            .await
            .expect("the edge answers");
        let mut me = Self {
            ws,
            conversation: conversation.to_owned(),
            seen,
        };
        let subscribe = json!({"type": "subscribe", "ref": "sub", "conversation_id": conversation, "since_seq": 0});
        loop {
            me.ws.send(subscribe.clone()).await.unwrap();
            let answer = me.answer("sub").await;
            match answer["type"].as_str() {
                Some("subscribed") => return me,
                // The edge's read models are still folding what came before: ask again.
                _ if answer["code"] == "history_unavailable" || answer["code"] == "not_found" => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => panic!("subscribe refused: {answer}"),
            }
        }
    }

    fn record(&self, frame: &Value) {
        if frame["type"] == "event" && frame["conversation_id"] == self.conversation.as_str() {
            self.seen
                .live
                .lock()
                .unwrap()
                .push(frame["seq"].as_u64().unwrap());
            if let Some(agent) = frame["data"]["agent_id"].as_str() {
                *self.seen.assignee.lock().unwrap() = Some(agent.to_owned());
            }
            if let Some(id) = frame["data"]["client_msg_id"].as_str() {
                self.seen
                    .bodies
                    .lock()
                    .unwrap()
                    .insert(id.to_owned(), frame["data"]["body"].clone());
            }
        }
    }

    /// Frames until the answer with `reference`, recording events on the way.
    async fn answer(&mut self, reference: &str) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("an answer within 30 s")
                .expect("the edge keeps the connection");
            self.record(&frame);
            if frame["ref"] == reference && frame["type"] != "event" {
                return frame;
            }
        }
    }

    /// Sends `frame` (with `ref`) until it is acknowledged; a retriable refusal (the write side
    /// is moving partitions) is retried with the same `client_msg_id`.
    async fn until_acked(&mut self, frame: Value) -> Value {
        let reference = frame["ref"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            self.ws.send(frame.clone()).await.unwrap();
            let answer = self.answer(&reference).await;
            if answer["type"] == "ack" {
                return answer;
            }
            let retriable = ["unavailable", "not_owner", "overloaded", "rate_limited"];
            assert!(
                retriable.contains(&answer["code"].as_str().unwrap_or_default()),
                "refused for good: {answer}"
            );
            assert!(
                Instant::now() < deadline,
                "not acknowledged in 40 s: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts messages `prefix-0`, `prefix-1`, … one after the other until `stop`.
    async fn chat(mut self, prefix: &str, stop: Arc<AtomicBool>) -> Self {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let id = format!("{prefix}-{n}");
            let frame = json!({"type": "send", "ref": id, "conversation_id": self.conversation, "client_msg_id": id, "body": format!("{prefix} says {n}")});
            let ack = self.until_acked(frame).await;
            let seq = ack["seq"].as_u64().expect("an ack has a seq");
            self.seen.acked.lock().unwrap().push((id, seq));
            n += 1;
        }
        self
    }

    /// Reads live events until seq `newest` has arrived.
    async fn follow_to(&mut self, newest: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.seen.live.lock().unwrap().last().copied().unwrap_or(0) < newest {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("seq {newest} did not arrive live"))
                .expect("the edge keeps the connection");
            self.record(&frame);
        }
    }
}

/// What the message with `client_msg_id` `prefix-n` says.
fn body_of(id: &str) -> Value {
    let (prefix, n) = id.rsplit_once('-').unwrap();
    Value::String(format!("{prefix} says {n}"))
}

/// The answer to the frame with `reference`, within 30 s.
async fn reply(ws: &mut WsClient, reference: &str) -> Value {
    let answer = async {
        loop {
            let frame = ws.next().await.expect("the edge keeps the connection");
            if frame["ref"] == reference {
                return frame;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .unwrap_or_else(|_| panic!("no answer to {reference} within 30 s"))
}

/// Every event of the conversation from the query service, page after page.
fn history(query: &str, token: &str, conversation: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0u64;
    loop {
        let path = format!("/v1/conversations/{conversation}/history?after={after}&limit=200");
        let (status, page) = request(query, "GET", &path, Some(token), "");
        assert_eq!(status, 200, "{page}");
        let entries = page["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = entries.last() else {
            return events;
        };
        after = last["seq"].as_u64().unwrap();
        events.extend(entries);
    }
}

/// The history once it holds every acknowledged message (the projector catches up).
fn history_with(
    query: &str,
    token: &str,
    conversation: &str,
    acked: &[(String, u64)],
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = history(query, token, conversation);
        let newest = acked.iter().map(|(_, seq)| *seq).max().unwrap_or(0);
        let reached = events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
        if reached >= newest || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits on the agent's connection for the conversation to be assigned to `agent`.
async fn assigned(participant: &mut Participant, agent: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let holder = |p: &Participant| p.seen.assignee.lock().unwrap().clone();
    while holder(participant).as_deref() != Some(agent) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(frame) = tokio::time::timeout(left, participant.ws.next()).await else {
            return false;
        };
        participant.record(&frame.expect("the edge keeps the connection"));
    }
    true
}

async fn scenario(store: Store) {
    let started = Instant::now();
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.address, store);
    // The first token makes the shared secret, before any process could race to.
    let customer = token(&config, "customer", "cust-1");
    let agent = token(&config, "agent", "agent-1");
    let auditor = token(&config, "auditor", "audit-1");
    let mut deployment = {
        let (dir, config) = (dir.path().to_owned(), config.clone());
        tokio::task::spawn_blocking(move || Deployment::start(&dir, &config, store))
            .await
            .unwrap()
    };
    let (edge_a, edge_b) = (
        deployment.edge_a.address("widget HTTP").to_owned(),
        deployment.edge_b.address("widget HTTP").to_owned(),
    );

    // The agent comes online on edge B; the customer opens a conversation on edge A.
    let mut console = WsClient::connect(&edge_b, &agent).await.unwrap();
    console
        .send(json!({"type": "status", "ref": "st", "status": "online"}))
        .await
        .unwrap();
    let mut widget = WsClient::connect(&edge_a, &customer).await.unwrap();
    widget
        .send(json!({"type": "open", "ref": "o1"}))
        .await
        .unwrap();
    let opened = reply(&mut widget, "o1").await;
    assert_eq!(opened["type"], "ack", "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    eprintln!("opened {conversation}");
    let (customer_seen, agent_seen) = (Arc::new(Seen::default()), Arc::new(Seen::default()));
    let customer_side =
        Participant::join(&edge_a, &customer, &conversation, customer_seen.clone()).await;
    let mut agent_side =
        Participant::join(&edge_b, &agent, &conversation, agent_seen.clone()).await;
    // The router may have assigned it already; taking it makes sure, whichever came first.
    let take = json!({"type": "take", "ref": "take", "conversation_id": conversation});
    agent_side.ws.send(take).await.unwrap();
    let took = agent_side.answer("take").await;
    assert!(
        assigned(&mut agent_side, "agent-1", Duration::from_secs(10)).await,
        "agent-1 holds the conversation: {took}"
    );

    eprintln!("agent-1 holds {conversation}");
    // Both chat; once each has a few acknowledged messages, ingest A dies.
    let stop = Arc::new(AtomicBool::new(false));
    let customer_chat = tokio::spawn(customer_side.chat("cust", stop.clone()));
    let agent_chat = tokio::spawn(agent_side.chat("agent", stop.clone()));
    let acks = |seen: &Seen| seen.acked.lock().unwrap().len();
    let wait_for = |n: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(40);
        let what = what.to_owned();
        let (c, a) = (customer_seen.clone(), agent_seen.clone());
        async move {
            while acks(&c) < n || acks(&a) < n {
                assert!(
                    Instant::now() < deadline,
                    "{what}: {} and {} acks",
                    acks(&c),
                    acks(&a)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(15, "before the kill").await;
    // Kill the instance that writes the conversation, so that its partition must move.
    let first = json!({"type": "post_message", "client_msg_id": "cust-0", "body": "cust says 0"});
    let owner = deployment.owner(&conversation, &customer, &first);
    deployment.ingest[owner].kill();
    eprintln!("killed ingest-{}", ["a", "b"][owner]);
    let at_kill = (acks(&customer_seen), acks(&agent_seen));
    // The conversation carries on: both sides get well past the handover.
    wait_for(at_kill.0.max(at_kill.1) + 15, "after the kill").await;
    stop.store(true, Ordering::Relaxed);
    let mut customer_side = customer_chat.await.unwrap();
    let mut agent_side = agent_chat.await.unwrap();

    // Every acknowledged message is in the history once, at its seq; the history is gapless.
    let acked: Vec<(String, u64)> = [&customer_seen, &agent_seen]
        .iter()
        .flat_map(|s| s.acked.lock().unwrap().clone())
        .collect();
    let events = history_with(deployment.query(), &auditor, &conversation, &acked);
    let mut in_history = HashMap::new();
    for event in &events {
        if event["kind"] == "switchboard.conversation.MessagePosted" {
            let id = event["event"]["client_msg_id"].as_str().unwrap().to_owned();
            let seq = event["seq"].as_u64().unwrap();
            // Sealed by whichever ingest instance wrote it, opened by the query service.
            assert_eq!(
                event["event"]["body"]["text"],
                body_of(&id),
                "the body of {id} in the history"
            );
            assert!(
                in_history.insert(id.clone(), seq).is_none(),
                "{id} is in the history twice"
            );
        }
    }
    for (id, seq) in &acked {
        assert_eq!(
            in_history.get(id),
            Some(seq),
            "{id} was acknowledged at seq {seq}"
        );
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "history is gapless"
    );

    // Each live subscriber got every event once, in order, across the handover.
    let newest = *seqs.last().unwrap();
    customer_side.follow_to(newest).await;
    agent_side.follow_to(newest).await;
    for (who, seen) in [("customer", &customer_seen), ("agent", &agent_seen)] {
        let live = seen.live.lock().unwrap().clone();
        assert_eq!(
            live[..newest as usize],
            (1..=newest).collect::<Vec<_>>()[..],
            "the {who} on its edge saw every event once, in order"
        );
        // Both edges open every body, whichever instance sealed it.
        let bodies = seen.bodies.lock().unwrap().clone();
        assert_eq!(
            bodies.len(),
            in_history.len(),
            "the {who} saw every message"
        );
        for (id, body) in &bodies {
            assert_eq!(*body, body_of(id), "the body of {id} on the {who}'s edge");
        }
    }

    // The chain verifies through the query service.
    let (status, verdict) = request(
        deployment.query(),
        "GET",
        &format!("/v1/conversations/{conversation}/verify"),
        Some(&auditor),
        "",
    );
    assert_eq!(status, 200, "{verdict}");
    assert!(verdict.to_string().contains("intact"), "{verdict}");

    // The surviving instance routes: a new conversation goes to the online agent.
    widget
        .send(json!({"type": "open", "ref": "o2"}))
        .await
        .unwrap();
    let second = reply(&mut widget, "o2").await;
    assert_eq!(second["type"], "ack", "{second}");
    let second = second["conversation_id"].as_str().unwrap().to_owned();
    let mut routed = Participant::join(&edge_b, &agent, &second, Arc::default()).await;
    assert!(
        assigned(&mut routed, "agent-1", Duration::from_secs(20)).await,
        "the surviving ingest instance's router assigns the new conversation to agent-1"
    );
    drop(console);

    // An analytics consumer outside the product reads every event of the run from the topic.
    let second_events = history_with(deployment.query(), &auditor, &second, &[]);
    let expected = events.len() + second_events.len();
    let registry = format!(
        "http://{}",
        deployment.read.last().unwrap().address("schemas HTTP")
    );
    let address = broker.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        consume(&python, &address, &registry, TOPIC, PARTITIONS, expected)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the analytics consumer read fewer than {expected} events: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut by_conversation = BTreeMap::<String, Vec<u64>>::new();
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        by_conversation
            .entry(value["conversation_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(value["seq"].as_u64().unwrap());
    }
    assert_eq!(
        by_conversation.remove(&conversation),
        Some(seqs),
        "every event, in order"
    );
    // The second conversation is live (its router may still act on it after the history was
    // read): the topic holds at least what the history showed, gapless from seq 1.
    let second_seqs = by_conversation.remove(&second).unwrap_or_default();
    assert!(
        second_seqs.len() >= second_events.len()
            && second_seqs == (1..=second_seqs.len() as u64).collect::<Vec<_>>(),
        "the second conversation's events, in order: {second_seqs:?} after a history of {}",
        second_events.len()
    );
    assert!(
        by_conversation.is_empty(),
        "no other events: {by_conversation:?}"
    );
    eprintln!(
        "distributed scenario ({store:?} store): {} messages acknowledged ({} after the kill), {:.1} s",
        acked.len(),
        acked.len() - at_kill.0 - at_kill.1,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_across_two_edges_survives_the_kill_of_an_ingest_instance() {
    scenario(Store::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_scylladb_with_projector_and_query_apart() {
    if std::env::var_os("SWITCHBOARD_TEST_SCYLLA").is_none() {
        eprintln!("skipped: SWITCHBOARD_TEST_SCYLLA not set");
        return;
    }
    scenario(Store::Scylla).await;
}

/// A topic whose partition count differs from the configured one refuses the start, with the
/// counts in the message: keys would move. The events topic and the keys topic alike.
#[test]
fn a_topic_with_another_partition_count_refuses_the_start() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.address, Store::Embedded);
    token(&config, "customer", "cust-1");
    // The first instance creates the topics as configured.
    let _first = Node::start(
        "ingest",
        "ingest",
        &config,
        &dir.path().join("first"),
        &flags(&[("log.kafka.client_id", "first".to_owned())]),
    );
    let cases = [
        ("log.conversation_partitions", TOPIC, PARTITIONS, 6),
        ("log.kafka.keys_partitions", "switchboard.keys", 1, 3),
    ];
    for (key, topic, existing, asked) in cases {
        let output = switchboard()
            .args(["run", "--roles", "ingest", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join(format!("other-{asked}")))
            .args(every_listener_on_port_zero())
            .args(flags(&[
                ("log.kafka.client_id", format!("other-{asked}")),
                (key, asked.to_string()),
            ]))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{key} = {asked} started: {stderr}"
        );
        let expected =
            format!("topic conflict: {topic} exists with {existing} partitions, asked for {asked}");
        assert!(stderr.contains(&expected), "{key} = {asked}: {stderr}");
    }
}
