//! The scenarios. Each conversation is a room: one customer sending, agents subscribed.
//! Senders are open-loop (every message has an intended send time, and latency counts from
//! it, so a server that falls behind cannot hide its queue) or closed-loop (the next message
//! after the previous ack, to find the maximum).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::{Conn, Http, Who, connect};
use super::stats::{Latency, cpu_seconds, rss_kib};
use super::target::{Endpoint, Server};
use crate::Error;

/// 200 bytes of message body.
const BODY: &str = "Hello, my order #48151623 has not arrived yet and the tracking page says it left the warehouse nine days ago. Could you check where it is and whether it can still arrive this week? Thanks a lot, Sam.";

/// Connections opened at once during set-up.
const CONNECTING: usize = 64;

/// The source address of the `i`-th connection: 20,000 per 127.0.0.x, well within the
/// ephemeral port range.
pub fn source(i: usize) -> IpAddr {
    Ipv4Addr::new(127, 0, 0, 1 + (i / 20_000) as u8).into()
}

/// One conversation with its sender and receivers.
#[derive(Debug)]
pub struct Room {
    pub tenant: String,
    pub conversation: String,
    customer: Conn,
    agents: Vec<(Who, Conn)>,
}

/// Opens `rooms` conversations spread over `tenants`, with `agents` subscribed to each.
pub async fn rooms(
    server: &Endpoint,
    rooms: usize,
    agents: usize,
    tenants: usize,
) -> Result<Vec<Room>, Error> {
    let made: Vec<Result<Room, Error>> = futures_util::stream::iter(0..rooms)
        .map(|i| room(server, i, agents, tenants))
        .buffer_unordered(CONNECTING)
        .collect()
        .await;
    made.into_iter().collect()
}

async fn room(server: &Endpoint, i: usize, agents: usize, tenants: usize) -> Result<Room, Error> {
    let tenant = format!("bench{}", i % tenants);
    let who = |role, subject: String| Who {
        tenant: tenant.clone(),
        role,
        subject,
    };
    let mut customer = connect(server, &who("customer", format!("cust-{i}")), source(i)).await?;
    customer
        .send(&json!({"type": "open", "ref": "open"}))
        .await?;
    let conversation = customer.expect("ack").await?["conversation_id"]
        .as_str()
        .ok_or("ack without conversation_id")?
        .to_owned();
    let mut subscribed = Vec::with_capacity(agents);
    let agents_at = server.for_agents();
    for a in 0..agents {
        let agent = who("agent", format!("agent-{i}-{a}"));
        let mut conn = connect(&agents_at, &agent, source(i)).await?;
        subscribe(&mut conn, &conversation, 0, &mut Tracker::default()).await?;
        subscribed.push((agent, conn));
    }
    Ok(Room {
        tenant,
        conversation,
        customer,
        agents: subscribed,
    })
}

/// Subscribes from `since`; the gap's events go to `tracker`.
async fn subscribe(
    conn: &mut Conn,
    conversation: &str,
    since: u64,
    tracker: &mut Tracker,
) -> Result<(), Error> {
    conn.send(&json!({"type": "subscribe", "ref": "sub", "conversation_id": conversation, "since_seq": since}))
        .await?;
    loop {
        let frame = conn.recv().await?;
        match frame["type"].as_str() {
            Some("subscribed") => return Ok(()),
            Some("error" | "reload") => return Err(format!("subscribe: {frame}").into()),
            _ => tracker.on_frame(&frame),
        }
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct Tracker {
    latency: Latency,
    delivered: u64,
    /// The sender's counter of the last message, to find gaps and duplicates.
    last_k: u64,
    last_seq: u64,
    gaps: u64,
    duplicates: u64,
    last_at: Option<Instant>,
}

impl Tracker {
    fn on_frame(&mut self, frame: &Value) {
        if frame["type"] != "event" {
            return;
        }
        self.last_seq = self.last_seq.max(frame["seq"].as_u64().unwrap_or(0));
        if frame["kind"] != "message_posted" {
            return;
        }
        // client_msg_id = "<k>-<intended send time, µs since the epoch>".
        let Some((k, at)) = frame["data"]["client_msg_id"]
            .as_str()
            .and_then(|id| id.split_once('-'))
            .and_then(|(k, at)| Some((k.parse::<u64>().ok()?, at.parse::<u64>().ok()?)))
        else {
            return;
        };
        let now = Instant::now();
        self.latency.record(micros(now).saturating_sub(at));
        self.delivered += 1;
        self.last_at = Some(now);
        if k <= self.last_k {
            self.duplicates += 1;
        } else {
            self.gaps += k - self.last_k - 1;
            self.last_k = k;
        }
    }
}

/// Microseconds since the bench started: the clock every send time is written in.
fn micros(at: Instant) -> u64 {
    at.duration_since(*crate::EPOCH.get_or_init(Instant::now))
        .as_micros() as u64
}

/// How senders pace themselves.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// Messages per second per room, at fixed intended times.
    Open(f64),
    /// The next message after the previous one's ack.
    Closed,
}

/// What a run of rooms measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: u64,
    pub delivered: u64,
    pub refused: u64,
    pub latency: Latency,
    pub gaps: u64,
    pub duplicates: u64,
    /// Messages delivered per second, from the first intended send to the last delivery.
    pub per_second: f64,
    /// Server CPU seconds per 1,000 delivered messages.
    pub cpu_per_1k: f64,
    /// Reconnect → `subscribed` (gap replayed), for the reconnect storm.
    pub resume: Latency,
    pub failed_reconnects: u64,
}

/// Runs the rooms for `seconds`; with `storm`, every agent drops its connection at that
/// offset, reconnects at once and resumes from the last seq it holds.
pub async fn drive(
    server: &Server,
    rooms: Vec<Room>,
    pace: Pace,
    seconds: f64,
    storm: Option<f64>,
) -> (Vec<Room>, Outcome) {
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(seconds);
    let storm_at = storm.map(|s| start + Duration::from_secs_f64(s));
    let refused = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(server.pid);
    let count = rooms.len();
    let mut tasks = Vec::with_capacity(count);
    for (i, room) in rooms.into_iter().enumerate() {
        let offset = match pace {
            Pace::Open(rate) => Duration::from_secs_f64(i as f64 / count as f64 / rate),
            Pace::Closed => Duration::ZERO,
        };
        let sent = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let Room {
            tenant,
            conversation,
            customer,
            agents,
        } = room;
        let sender = tokio::spawn(send(
            customer,
            conversation.clone(),
            pace,
            start + offset,
            end,
            sent.clone(),
            done.clone(),
            refused.clone(),
        ));
        let receivers: Vec<_> = agents
            .into_iter()
            .enumerate()
            .map(|(a, (who, conn))| {
                let watch = Watch {
                    sent: sent.clone(),
                    done: done.clone(),
                    end,
                    storm_at,
                };
                let source = source(i * 7 + a);
                let conversation = conversation.clone();
                let endpoint = server.endpoint.clone();
                tokio::spawn(async move {
                    receive(&endpoint, who, conn, conversation, watch, source).await
                })
            })
            .collect();
        tasks.push((tenant, conversation, sender, receivers));
    }
    let mut outcome = Outcome::default();
    let mut back = Vec::with_capacity(count);
    let mut last = start;
    for (tenant, conversation, sender, receivers) in tasks {
        let (customer, sent) = sender.await.expect("sender task");
        outcome.sent += sent;
        let mut agents = Vec::new();
        for receiver in receivers {
            let (who, conn, tracker, reconnect) = receiver.await.expect("receiver task");
            outcome.delivered += tracker.delivered;
            outcome.latency.add(&tracker.latency);
            outcome.gaps += tracker.gaps;
            outcome.duplicates += tracker.duplicates;
            if let Some(at) = tracker.last_at {
                last = last.max(at);
            }
            match reconnect {
                Some(Ok(took)) => outcome.resume.record_duration(took),
                Some(Err(_)) => outcome.failed_reconnects += 1,
                None => {}
            }
            if let Some(conn) = conn {
                agents.push((who, conn));
            }
        }
        back.push(Room {
            tenant,
            conversation,
            customer,
            agents,
        });
    }
    outcome.refused = refused.load(Ordering::Relaxed);
    let elapsed = last
        .duration_since(start)
        .as_secs_f64()
        .max(seconds.min(1.0));
    outcome.per_second = outcome.delivered as f64 / elapsed;
    outcome.cpu_per_1k =
        (cpu_seconds(server.pid) - cpu_before) / (outcome.delivered.max(1) as f64 / 1000.0);
    (back, outcome)
}

#[allow(clippy::too_many_arguments)]
async fn send(
    mut customer: Conn,
    conversation: String,
    pace: Pace,
    first: Instant,
    end: Instant,
    sent: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
) -> (Conn, u64) {
    let frame = |k: u64, at: Instant| {
        json!({"type": "send", "ref": k.to_string(), "conversation_id": conversation,
               "client_msg_id": format!("{k}-{}", micros(at)), "body": BODY})
    };
    let mut k = 0;
    match pace {
        Pace::Open(rate) => {
            let sender = customer.sender();
            // Acks and errors come back on the same connection: count the refusals.
            let (stop, mut stopped) = tokio::sync::watch::channel(false);
            let counting = refused.clone();
            let reader = tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        frame = customer.recv() => match frame {
                            Ok(f) if f["type"] == "error" => {
                                counting.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        },
                    }
                }
                customer
            });
            let interval = Duration::from_secs_f64(1.0 / rate);
            loop {
                let at = first + interval.mul_f64(k as f64);
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at).await;
                k += 1;
                if sender.send(&frame(k, at)).await.is_err() {
                    break;
                }
                sent.store(k, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
            // Let the last acks arrive, then take the connection back.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = stop.send(true);
            (reader.await.expect("ack reader"), k)
        }
        Pace::Closed => {
            tokio::time::sleep_until(first).await;
            'messages: while Instant::now() < end {
                k += 1;
                loop {
                    if customer.send(&frame(k, Instant::now())).await.is_err() {
                        break 'messages;
                    }
                    let answer = loop {
                        match customer.recv().await {
                            Ok(f) if f["type"] == "ack" || f["type"] == "error" => break f,
                            Ok(_) => continue,
                            Err(_) => break 'messages,
                        }
                    };
                    if answer["type"] == "ack" {
                        break;
                    }
                    refused.fetch_add(1, Ordering::Relaxed);
                    let wait = answer["retry_after_ms"].as_u64().unwrap_or(10);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                sent.store(k, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
            (customer, k)
        }
    }
}

/// What a receiver needs to know about its room's sender.
#[derive(Debug)]
struct Watch {
    sent: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    end: Instant,
    storm_at: Option<Instant>,
}

/// How long a receiver waits for stragglers once its sender is done and the stream is quiet.
const QUIET: Duration = Duration::from_secs(1);
/// The longest a receiver waits after the end for a server that fell behind.
const DRAIN: Duration = Duration::from_secs(20);

type Received = (Who, Option<Conn>, Tracker, Option<Result<Duration, Error>>);

async fn receive(
    server: &Endpoint,
    who: Who,
    conn: Conn,
    conversation: String,
    watch: Watch,
    source: IpAddr,
) -> Received {
    let mut tracker = Tracker::default();
    let mut conn = Some(conn);
    let mut reconnect = None;
    let mut quiet_since = Instant::now();
    loop {
        let now = Instant::now();
        if watch.done.load(Ordering::Relaxed)
            && (tracker.last_k >= watch.sent.load(Ordering::Relaxed)
                || now.duration_since(quiet_since) > QUIET
                || now > watch.end + DRAIN)
        {
            break;
        }
        if reconnect.is_none() && watch.storm_at.is_some_and(|at| now >= at) {
            drop(conn.take());
            let resumed = async {
                let mut fresh = connect(&server.for_agents(), &who, source).await?;
                subscribe(&mut fresh, &conversation, tracker.last_seq, &mut tracker).await?;
                Ok::<_, Error>(fresh)
            }
            .await;
            reconnect = Some(resumed.map(|fresh| {
                conn = Some(fresh);
                now.elapsed()
            }));
            quiet_since = Instant::now();
        }
        let Some(c) = conn.as_mut() else { break };
        match tokio::time::timeout(Duration::from_millis(50), c.recv()).await {
            Ok(Ok(frame)) => {
                tracker.on_frame(&frame);
                quiet_since = Instant::now();
            }
            Ok(Err(_)) => {
                conn = None;
            }
            Err(_) => {}
        }
    }
    (who, conn, tracker, reconnect)
}

/// Holds `n` authenticated idle connections; answers the server's resident memory per
/// connection, in KiB.
pub async fn idle(server: &Server, n: usize) -> Result<f64, Error> {
    let before = rss_kib(server.pid);
    let endpoint = &server.endpoint;
    let held: Vec<Result<Conn, Error>> = futures_util::stream::iter(0..n)
        .map(|i| async move {
            let who = Who {
                tenant: format!("bench{}", i % 8),
                role: "customer",
                subject: format!("idle-{i}"),
            };
            connect(endpoint, &who, source(i)).await
        })
        .buffer_unordered(CONNECTING)
        .collect()
        .await;
    let held: Vec<Conn> = held.into_iter().collect::<Result<_, _>>()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(server.pid);
    drop(held);
    Ok(after.saturating_sub(before) as f64 / n.max(1) as f64)
}

/// History reads: `workers` keep-alive HTTP clients each fetching the newest 50 events of
/// one room after another, closed-loop, for `seconds`. Answers reads per second and latency.
pub async fn history(
    server: &Server,
    rooms: &[Room],
    workers: usize,
    seconds: f64,
) -> Result<(f64, Latency), Error> {
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let targets: Arc<Vec<(String, Option<String>)>> = Arc::new(
        rooms
            .iter()
            .map(|r| {
                let reader = Who {
                    tenant: r.tenant.clone(),
                    role: "agent",
                    subject: "history-reader".to_owned(),
                };
                let path = format!("/v1/conversations/{}/history?limit=50", r.conversation);
                (path, server.endpoint.token(&reader).ok())
            })
            .collect(),
    );
    let mut tasks = Vec::new();
    for w in 0..workers {
        let targets = targets.clone();
        let host = server.endpoint.history;
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(host, source(w)).await?;
            let mut latency = Latency::default();
            let mut i = w;
            while Instant::now() < end {
                let (path, token) = &targets[i % targets.len()];
                let at = Instant::now();
                let (status, _) = http.get(path, token.as_deref()).await?;
                if status != 200 {
                    return Err(format!("history answered {status}").into());
                }
                latency.record_duration(at.elapsed());
                i += workers;
            }
            Ok::<_, Error>(latency)
        }));
    }
    let mut latency = Latency::default();
    for task in tasks {
        latency.add(&task.await??);
    }
    Ok((latency.len() as f64 / seconds, latency))
}

/// Short conversations, for the memory of a long run: `workers` customers, each opening a
/// conversation, posting one message and resolving it, again and again for `seconds`, closed
/// loop. Every `sample` the server's RSS and the conversations resolved so far go to stderr.
/// Returns the samples: (seconds since start, conversations resolved, RSS KiB).
pub async fn churn(
    server: &Server,
    workers: usize,
    tenants: usize,
    seconds: f64,
    sample: Duration,
) -> Result<Vec<(f64, u64, u64)>, Error> {
    let endpoint = &server.endpoint;
    let resolved = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(workers);
    for i in 0..workers {
        let who = Who {
            tenant: format!("bench{}", i % tenants),
            role: "customer",
            subject: format!("churn-{i}"),
        };
        let mut conn = connect(endpoint, &who, source(i)).await?;
        let (resolved, failed) = (resolved.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 0u64;
            while Instant::now() < deadline {
                k += 1;
                match short_conversation(&mut conn, k).await {
                    Ok(()) => resolved.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let mut samples = vec![(0.0, 0, rss_kib(server.pid))];
    while Instant::now() < deadline {
        tokio::time::sleep(sample.min(deadline - Instant::now())).await;
        let at = started.elapsed().as_secs_f64();
        let (done, rss) = (resolved.load(Ordering::Relaxed), rss_kib(server.pid));
        let failures = failed.load(Ordering::Relaxed);
        eprintln!("  churn {at:>5.0} s: {done} resolved, {failures} failed, rss {rss} KiB");
        samples.push((at, done, rss));
    }
    for task in tasks {
        task.await?;
    }
    Ok(samples)
}

/// Open, one message, resolve: each answered by its `ack`.
async fn short_conversation(conn: &mut Conn, k: u64) -> Result<(), Error> {
    conn.send(&json!({"type": "open", "ref": format!("o{k}")}))
        .await?;
    let conversation = conn.expect("ack").await?["conversation_id"]
        .as_str()
        .ok_or("ack without conversation_id")?
        .to_owned();
    conn.send(
        &json!({"type": "send", "ref": format!("s{k}"), "conversation_id": conversation,
                      "client_msg_id": format!("c{k}"), "body": BODY}),
    )
    .await?;
    conn.expect("ack").await?;
    conn.send(&json!({"type": "resolve", "ref": format!("r{k}"), "conversation_id": conversation}))
        .await?;
    conn.expect("ack").await?;
    Ok(())
}
