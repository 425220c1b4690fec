//! Load generator for the edge, on the embedded backends (log fsynced on every group commit,
//! store, projector, writer) in this process.
//!
//! ```text
//! cargo run --release -p switchboard-edge --example edge_load -- idle <connections>
//! cargo run --release -p switchboard-edge --example edge_load -- latency <messages/s> <seconds> [conversations]
//! cargo run --release -p switchboard-edge --example edge_load -- churn <conversations> [hub bound] [writers]
//! ```
//!
//! `idle` holds N authenticated, idle connections opened by a child process (so that the
//! clients' memory is not counted) from several 127.0.0.x source addresses, and prints the
//! server's RSS beyond its baseline per connection. `latency` posts messages over WebSocket at a
//! fixed rate, each conversation with a customer sending and an agent subscribed, and prints the
//! send → deliver latency (send frame written → event read by the agent) percentiles.
//! `churn` opens, answers and resolves conversations one after another (straight to the
//! writer, `writers` at a time) while a few watched conversations keep a subscriber each, and
//! samples the server's RSS and the hub's conversation count every second: with the hub bound
//! (`hub_idle_conversations`) they stay flat, and every watched subscriber still gets every
//! message of its conversation in order.

#[path = "../tests/support/keys.rs"]
mod keys;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_edge::{Edge, EdgeConfig, EdgeDeps, MemoryBus, Rate};
use switchboard_events::Topic;
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{TokenIssuer, TokenVerifier, now_seconds};
use switchboard_ingest::writer::{Writer, WriterConfig};
use switchboard_log::EventLog;
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_projector::{Projector, ProjectorConfig};
use switchboard_store::ReadModels;
use switchboard_store::embedded::{EmbeddedOptions, EmbeddedStore};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
type Error = Box<dyn std::error::Error + Send + Sync>;

const SECRET: &[u8] = b"edge-load-secret-of-32-bytes-min!";

fn token(role: Role, subject: &str) -> String {
    let principal = Principal::new(
        TenantId::new("loadtest").unwrap(),
        role,
        PrincipalId::new(subject).unwrap(),
    );
    TokenIssuer::hs256(SECRET, "load", "edge")
        .issue(&principal, now_seconds() + 3600)
        .unwrap()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Connects from `source` (a 127.0.0.x address) with the token in the subprotocol.
async fn connect(url: &str, source: std::net::IpAddr, token: &str) -> Result<Ws, Error> {
    let mut request = url.into_client_request()?;
    let protocols = format!("switchboard.v1, bearer.{token}");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_str(&protocols)?);
    let addr: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/ws")
        .parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    let stream = socket.connect(addr).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    let welcome = next(&mut ws).await?;
    if welcome["type"] != "welcome" {
        return Err(format!("not welcome: {welcome}").into());
    }
    Ok(ws)
}

async fn next(ws: &mut Ws) -> Result<Value, Error> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text)?),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed".into()),
        }
    }
}

struct Stack {
    url: String,
    writer: Arc<Writer>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn stack(config: EdgeConfig) -> Result<Stack, Error> {
    let log_dir = tempfile::tempdir()?;
    let store_dir = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(EmbeddedConfig::new(log_dir.path()))?);
    let store: Arc<dyn ReadModels> = Arc::new(EmbeddedStore::open(
        store_dir.path(),
        EmbeddedOptions::default(),
    )?);
    let keys = Arc::new(keys::StoreKeys(store.clone()));
    let writer = Arc::new(Writer::start(log.clone(), keys, WriterConfig::default()).await?);
    let commands = writer.clone();
    let projector = Projector::new(
        log.clone(),
        store.clone(),
        Topic::Conversations,
        ProjectorConfig::default(),
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    std::mem::forget(_stop);
    tokio::spawn(projector.run(stopped));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/v1/ws", listener.local_addr()?);
    let deps = EdgeDeps {
        commands,
        log,
        store,
        verifier: TokenVerifier::hs256(SECRET, "load", "edge")?,
        signals: Arc::new(MemoryBus::default()),
        queue: None,
    };
    tokio::spawn(Edge::new(config, deps).serve(listener, std::future::pending()));
    Ok(Stack {
        url,
        writer,
        _dirs: (log_dir, store_dir),
    })
}

fn source(i: usize) -> std::net::IpAddr {
    // 20k ephemeral ports per source address, well under the range.
    std::net::Ipv4Addr::new(127, 0, 0, 1 + (i / 20_000) as u8).into()
}

/// The child: opens `n` connections and holds them until stdin closes.
async fn clients(url: String, n: usize) -> Result<(), Error> {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let token = token(Role::Customer, "idle");
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        match connect(&url, source(i), &token).await {
            Ok(ws) => held.push(ws),
            Err(e) => {
                eprintln!("client {i}: {e}");
                break;
            }
        }
    }
    eprintln!("held={}", held.len());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    Ok(())
}

async fn idle(n: usize) -> Result<(), Error> {
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    let config = EdgeConfig {
        heartbeat: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(3600),
        ..EdgeConfig::default()
    };
    let stack = stack(config).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = rss_kib();
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["clients", &stack.url, &n.to_string()])
        .stdin(std::process::Stdio::piped())
        .spawn()?;
    // Wait until the server holds them all (or the child gave up).
    let mut last = 0;
    let mut still = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let active = switchboard_edge::metrics::OPEN_CONNECTIONS.get();
        if active as usize >= n
            || (active == last && {
                still += 1;
                still
            } > 10)
        {
            break;
        }
        if active != last {
            still = 0;
        }
        last = active;
    }
    let active = switchboard_edge::metrics::OPEN_CONNECTIONS.get();
    let rss = rss_kib();
    eprintln!(
        "nofile_limit={limit} connections={active} connect_time={:.1}s rss_baseline={baseline}KiB rss={rss}KiB per_connection={:.2}KiB",
        started.elapsed().as_secs_f64(),
        (rss.saturating_sub(baseline)) as f64 / active.max(1) as f64
    );
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}

async fn latency(rate: u64, seconds: u64, conversations: usize) -> Result<(), Error> {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let unlimited = Rate {
        per_second: 1e9,
        burst: 1e9,
    };
    let config = EdgeConfig {
        connection_rate: unlimited,
        tenant_rate: unlimited,
        ..EdgeConfig::default()
    };
    let stack = stack(config).await?;
    let sent_at = Arc::new(Instant::now());
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for c in 0..conversations {
        let mut customer = connect(
            &stack.url,
            source(0),
            &token(Role::Customer, &format!("cust-{c}")),
        )
        .await?;
        customer
            .send(Message::text(json!({"type": "open"}).to_string()))
            .await?;
        let ack = loop {
            let f = next(&mut customer).await?;
            if f["type"] == "ack" {
                break f;
            }
        };
        let conversation = ack["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut agent = connect(
            &stack.url,
            source(0),
            &token(Role::Agent, &format!("agent-{c}")),
        )
        .await?;
        agent
            .send(Message::text(
                json!({"type": "subscribe", "conversation_id": conversation, "since_seq": 0})
                    .to_string(),
            ))
            .await?;
        loop {
            if next(&mut agent).await?["type"] == "subscribed" {
                break;
            }
        }
        let epoch = sent_at.clone();
        receivers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Ok(Ok(frame)) =
                tokio::time::timeout(Duration::from_secs(5), next(&mut agent)).await
            {
                if frame["kind"] == "message_posted" {
                    let sent: u64 = frame["data"]["client_msg_id"]
                        .as_str()
                        .and_then(|s| s.split('-').nth(1))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    latencies.push(epoch.elapsed().as_micros() as u64 - sent);
                }
            }
            latencies
        }));
        senders.push((customer, conversation));
    }
    let per_conversation = rate as f64 / conversations as f64;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (n, (customer, conversation)) in senders.into_iter().enumerate() {
        let epoch = sent_at.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_conversation));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut i = 0u64;
            let (mut write, mut read) = customer.split();
            let drain = tokio::spawn(async move { while read.next().await.is_some() {} });
            while Instant::now() < deadline {
                tick.tick().await;
                i += 1;
                let at = epoch.elapsed().as_micros();
                let frame = json!({"type": "send", "conversation_id": conversation, "client_msg_id": format!("{n}x{i}-{at}"), "body": "x".repeat(200)});
                if write.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
            }
            drain.abort();
            i
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await?;
    }
    let mut all = Vec::new();
    for r in receivers {
        if let Ok(l) = r.await {
            all.extend(l)
        }
    }
    report(rate, seconds, sent, all);
    Ok(())
}

/// A conversation's life, straight to the writer: opened, answered, resolved.
async fn one_conversation(writer: &Writer, i: usize) -> Result<(), Error> {
    use switchboard_events::conversation::{Channel, Priority};
    use switchboard_events::id::{ClientMsgId, CorrelationId, CustomerId};
    use switchboard_ingest::ConversationCommand;
    use switchboard_ingest::api::CommandHandler;
    use switchboard_ingest::command::{OpenConversation, PostMessage};

    let subject = format!("churn-{i}");
    let customer = Principal::new(
        TenantId::new("loadtest")?,
        Role::Customer,
        PrincipalId::new(subject.as_str())?,
    );
    let correlation = || CorrelationId(uuid::Uuid::now_v7());
    let open = ConversationCommand::Open(OpenConversation {
        customer_id: CustomerId::new(subject.as_str())?,
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: Vec::new(),
        vip: false,
        attributes: Default::default(),
        customer_name: None,
        customer_email: None,
    });
    let opened = writer
        .conversation(customer.clone(), None, open, correlation())
        .await?;
    let id: switchboard_events::id::ConversationId = opened.stream_id.parse()?;
    for m in 0..2 {
        let post = ConversationCommand::PostMessage(PostMessage {
            client_msg_id: ClientMsgId::new(format!("m{m}"))?,
            body: "x".repeat(200),
            attachments: Vec::new(),
            private_note: false,
        });
        writer
            .conversation(customer.clone(), Some(id.clone()), post, correlation())
            .await?;
    }
    writer
        .conversation(
            customer,
            Some(id),
            ConversationCommand::Resolve,
            correlation(),
        )
        .await?;
    Ok(())
}

async fn churn(total: usize, bound: usize, writers: usize) -> Result<(), Error> {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use switchboard_edge::metrics::{HUB_CONVERSATIONS, HUB_EVICTIONS};

    const WATCHED: usize = 8;
    let unlimited = Rate {
        per_second: 1e9,
        burst: 1e9,
    };
    let config = EdgeConfig {
        connection_rate: unlimited,
        tenant_rate: unlimited,
        hub_idle_conversations: bound,
        ..EdgeConfig::default()
    };
    let stack = stack(config).await?;
    // The watched conversations: a customer who says something every second, an agent
    // subscribed throughout.
    let mut watched = Vec::new();
    for w in 0..WATCHED {
        let mut customer = connect(
            &stack.url,
            source(0),
            &token(Role::Customer, &format!("watched-{w}")),
        )
        .await?;
        customer
            .send(Message::text(json!({"type": "open"}).to_string()))
            .await?;
        let conversation = loop {
            let f = next(&mut customer).await?;
            if f["type"] == "ack" {
                break f["conversation_id"].as_str().unwrap_or_default().to_owned();
            }
        };
        let mut agent = connect(
            &stack.url,
            source(0),
            &token(Role::Agent, &format!("agent-{w}")),
        )
        .await?;
        agent
            .send(Message::text(
                json!({"type": "subscribe", "conversation_id": conversation, "since_seq": 0})
                    .to_string(),
            ))
            .await?;
        loop {
            if next(&mut agent).await?["type"] == "subscribed" {
                break;
            }
        }
        let (write, mut read) = customer.split();
        tokio::spawn(async move { while read.next().await.is_some() {} });
        let heard = tokio::spawn(async move {
            let mut seqs = Vec::new();
            while let Ok(Ok(frame)) =
                tokio::time::timeout(Duration::from_secs(10), next(&mut agent)).await
            {
                if frame["kind"] == "message_posted" {
                    seqs.push(frame["seq"].as_u64().unwrap_or(0));
                }
            }
            seqs
        });
        watched.push((write, conversation, heard));
    }

    let done = Arc::new(AtomicUsize::new(0));
    let claimed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (writer, done, claimed) = (stack.writer.clone(), done.clone(), claimed.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = claimed.fetch_add(1, Relaxed);
                if i >= total {
                    return;
                }
                if let Err(e) = one_conversation(&writer, i).await {
                    eprintln!("conversation {i}: {e}");
                }
                done.fetch_add(1, Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut said = 0u64;
    let mut samples = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        said += 1;
        for (write, conversation, _) in &mut watched {
            let frame = json!({"type": "send", "conversation_id": conversation, "client_msg_id": format!("w{said}"), "body": "still here"});
            write.send(Message::text(frame.to_string())).await?;
        }
        let (finished, rss) = (done.load(Relaxed), rss_kib());
        let hub = HUB_CONVERSATIONS.get();
        eprintln!(
            "t={:.0}s conversations={finished} rss={rss}KiB hub_conversations={hub} hub_evictions={}",
            started.elapsed().as_secs_f64(),
            HUB_EVICTIONS.get()
        );
        samples.push((finished, rss, hub));
        if finished >= total {
            break;
        }
    }
    for t in tasks {
        t.await?;
    }
    let mut intact = 0;
    for (write, _, heard) in watched {
        drop(write);
        let seqs = heard.await?;
        let in_order = seqs.windows(2).all(|w| w[0] < w[1]);
        if seqs.len() as u64 == said && in_order {
            intact += 1;
        }
    }
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let (quarter, half, last) = (at(0.25), at(0.5), at(1.0));
    let max_rss = samples.iter().map(|s| s.1).max().unwrap_or(0);
    eprintln!(
        "churn conversations={total} bound={bound} seconds={:.0} rss_at_25%={}KiB rss_at_50%={}KiB rss_end={}KiB rss_max={max_rss}KiB hub_end={} watched_intact={intact}/{WATCHED}",
        started.elapsed().as_secs_f64(),
        quarter.1,
        half.1,
        last.1,
        last.2
    );
    Ok(())
}

fn report(rate: u64, seconds: u64, sent: u64, mut latencies: Vec<u64>) {
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    eprintln!(
        "target={rate}/s seconds={seconds} sent={sent} delivered={} achieved={:.0}/s p50={}us p99={}us p99.9={}us max={}us",
        latencies.len(),
        latencies.len() as f64 / seconds as f64,
        at(0.5),
        at(0.99),
        at(0.999),
        latencies.last().copied().unwrap_or(0)
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("clients") => clients(args[1].clone(), arg(2, 1000) as usize).await,
        Some("idle") => idle(arg(1, 10_000) as usize).await,
        Some("latency") => latency(arg(1, 1000), arg(2, 10), arg(3, 100) as usize).await,
        Some("churn") => {
            let bound = EdgeConfig::default().hub_idle_conversations as u64;
            churn(arg(1, 100_000) as usize, arg(2, bound) as usize, arg(3, 64) as usize).await
        }
        _ => Err(
            "usage: edge_load idle <connections> | latency <messages/s> <seconds> [conversations] | churn <conversations> [hub bound] [writers]"
                .into(),
        ),
    }
}
