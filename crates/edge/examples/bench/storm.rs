//! The reconnect storm of `ops/reconnect-storm.sh`: `clients` WebSocket clients (a customer
//! and an agent per conversation) chat, all drop at the same moment, all reconnect and
//! resume with `since_seq`, and chat again. Each client must end with exactly its
//! conversation's events — every seq once, in order, and the customer's messages exactly as
//! acknowledged — while the server's resident memory is sampled before, at the peak and after
//! every client has gone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Barrier, Semaphore};
use tokio::time::Instant;

use super::client::{Conn, Who, connect};
use super::scenarios::source;
use super::stats::{Latency, rss_kib};
use super::target::Server;
use crate::Error;

/// Conversations per tenant: under the tenant's default queue limit (200 waiting).
const ROOMS_PER_TENANT: usize = 100;
/// Clients connecting at once during set-up.
const CONNECTING: usize = 64;
/// How long a client waits for an event it knows was acknowledged.
const PATIENCE: Duration = Duration::from_secs(60);

/// What the storm measured.
#[derive(Debug, Default)]
pub struct StormReport {
    pub clients: usize,
    /// Messages acknowledged, before and after the drop.
    pub acked: u64,
    /// Clients whose view was not exactly their conversation's events.
    pub wrong: u64,
    /// Clients that could not reconnect and resume.
    pub failed: u64,
    /// Reconnect → `subscribed`, gap replayed.
    pub resume: Latency,
    pub rss_baseline_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_after_kib: u64,
    pub first_problem: Option<String>,
}

/// What one client saw of its conversation.
#[derive(Debug, Default)]
struct View {
    seqs: Vec<u64>,
    messages: Vec<String>,
}

impl View {
    fn last(&self) -> u64 {
        self.seqs.last().copied().unwrap_or(0)
    }

    fn on_frame(&mut self, frame: &Value) {
        if frame["type"] != "event" {
            return;
        }
        self.seqs.push(frame["seq"].as_u64().unwrap_or(0));
        if frame["kind"] == "message_posted"
            && let Some(id) = frame["data"]["client_msg_id"].as_str()
        {
            self.messages.push(id.to_owned());
        }
    }

    /// Exactly the events 1..=its last, once each, holding exactly `sent` as messages.
    fn check(&self, sent: &[String], until: u64) -> Result<(), String> {
        let expected: Vec<u64> = (1..=self.last()).collect();
        if self.seqs != expected || self.last() < until {
            return Err(format!("seqs {:?}, expected 1..={until}", self.seqs));
        }
        if self.messages != sent {
            return Err(format!("messages {:?}, sent {sent:?}", self.messages));
        }
        Ok(())
    }
}

/// One client: who it is and its connection.
struct Client {
    who: Who,
    conn: Option<Conn>,
    view: View,
}

/// Subscribes from the client's last seq; the gap's events go to its view.
async fn subscribe(client: &mut Client, conversation: &str) -> Result<(), Error> {
    let conn = client.conn.as_mut().ok_or("not connected")?;
    let since = client.view.last();
    conn.send(&json!({"type": "subscribe", "ref": "sub", "conversation_id": conversation, "since_seq": since}))
        .await?;
    loop {
        let frame = conn.recv().await?;
        match frame["type"].as_str() {
            Some("subscribed") => return Ok(()),
            Some("error") if frame["code"] == "history_unavailable" => {
                // The read models are catching up: ask again shortly, as the protocol says.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let since = client.view.last();
                conn.send(&json!({"type": "subscribe", "ref": "sub", "conversation_id": conversation, "since_seq": since}))
                    .await?;
            }
            Some("error" | "reload") => return Err(format!("subscribe: {frame}").into()),
            _ => client.view.on_frame(&frame),
        }
    }
}

/// Reads until the client has seen `seq`.
async fn until_seq(client: &mut Client, seq: u64) -> Result<(), Error> {
    let conn = client.conn.as_mut().ok_or("not connected")?;
    let deadline = Instant::now() + PATIENCE;
    while client.view.last() < seq {
        let frame = tokio::time::timeout_at(deadline, conn.recv())
            .await
            .map_err(|_| format!("seq {seq} did not arrive (at {})", client.view.last()))??;
        client.view.on_frame(&frame);
    }
    Ok(())
}

/// The customer sends `n` messages, each after the previous ack; answers the last ack's seq.
async fn chat(
    customer: &mut Client,
    conversation: &str,
    sent: &mut Vec<String>,
    n: u64,
) -> Result<u64, Error> {
    let conn = customer.conn.as_mut().ok_or("not connected")?;
    let mut seq = 0;
    for _ in 0..n {
        let id = format!("{}-{}", customer.who.subject, sent.len());
        conn.send(
            &json!({"type": "send", "ref": id, "conversation_id": conversation,
                          "client_msg_id": id, "body": "where is my order?"}),
        )
        .await?;
        loop {
            let frame = conn.recv().await?;
            match frame["type"].as_str() {
                Some("ack") => {
                    seq = frame["seq"].as_u64().ok_or("an ack without seq")?;
                    break;
                }
                Some("error") => {
                    // A rate limit: wait as told and send the same message again.
                    let wait = frame["retry_after_ms"]
                        .as_u64()
                        .ok_or_else(|| format!("refused: {frame}"))?;
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    conn.send(
                        &json!({"type": "send", "ref": id, "conversation_id": conversation,
                                      "client_msg_id": id, "body": "where is my order?"}),
                    )
                    .await?;
                }
                _ => customer.view.on_frame(&frame),
            }
        }
        sent.push(id);
    }
    Ok(seq)
}

/// What one room reports: acked messages, resume times, and the problem of each client.
type RoomOutcome = (u64, Vec<Duration>, Vec<String>, u64);

/// One conversation through the storm: set up, chat, wait for everyone, drop, wait for
/// everyone, resume, chat, check.
async fn room(
    server: Arc<Server>,
    i: usize,
    tenants: usize,
    messages: u64,
    setting_up: Arc<Semaphore>,
    dropped: Arc<Barrier>,
    resumed: Arc<Barrier>,
) -> RoomOutcome {
    let tenant = format!("storm{}", i % tenants);
    let who = |role, subject: String| Who {
        tenant: tenant.clone(),
        role,
        subject,
    };
    let mut clients = [
        Client {
            who: who("customer", format!("cust-{i}")),
            conn: None,
            view: View::default(),
        },
        Client {
            who: who("agent", format!("agent-{i}")),
            conn: None,
            view: View::default(),
        },
    ];
    let mut sent = Vec::new();
    let mut problems = Vec::new();
    let mut resumes = Vec::new();
    let mut failed = 0;
    let endpoint = &server.endpoint;
    let first = async {
        let _turn = setting_up.acquire().await?;
        for c in clients.iter_mut() {
            c.conn = Some(connect(endpoint, &c.who, source(i)).await?);
        }
        let customer = clients[0].conn.as_mut().ok_or("not connected")?;
        customer
            .send(&json!({"type": "open", "ref": "open"}))
            .await?;
        let conversation = customer.expect("ack").await?["conversation_id"]
            .as_str()
            .ok_or("ack without conversation_id")?
            .to_owned();
        for c in clients.iter_mut() {
            subscribe(c, &conversation).await?;
        }
        let seq = chat(&mut clients[0], &conversation, &mut sent, messages).await?;
        for c in clients.iter_mut() {
            until_seq(c, seq).await?;
        }
        Ok::<_, Error>(conversation)
    }
    .await;
    // Every room drops at the same moment, and nobody reconnects before all have dropped.
    dropped.wait().await;
    for c in clients.iter_mut() {
        c.conn = None;
    }
    resumed.wait().await;
    let conversation = match first {
        Ok(conversation) => conversation,
        Err(e) => return (0, resumes, vec![format!("set-up: {e}")], 2),
    };
    for c in clients.iter_mut() {
        let at = Instant::now();
        let again = async {
            c.conn = Some(connect(endpoint, &c.who, source(i)).await?);
            subscribe(c, &conversation).await
        }
        .await;
        match again {
            Ok(()) => resumes.push(at.elapsed()),
            Err(e) => {
                failed += 1;
                problems.push(format!("{}: resume: {e}", c.who.subject));
            }
        }
    }
    if failed > 0 {
        return (sent.len() as u64, resumes, problems, failed);
    }
    let last = match chat(&mut clients[0], &conversation, &mut sent, messages).await {
        Ok(seq) => seq,
        Err(e) => return (sent.len() as u64, resumes, vec![format!("chat: {e}")], 2),
    };
    for c in clients.iter_mut() {
        let seen = until_seq(c, last).await.map_err(|e| e.to_string());
        if let Err(e) = seen.and_then(|()| c.view.check(&sent, last)) {
            problems.push(format!("{} in {conversation}: {e}", c.who.subject));
        }
    }
    (sent.len() as u64, resumes, problems, 0)
}

/// Runs the storm with `clients` clients (rounded down to pairs), `messages` before and after
/// the drop from each customer.
pub async fn storm(server: Arc<Server>, clients: usize, messages: u64) -> StormReport {
    let rooms = (clients / 2).max(1);
    let tenants = rooms.div_ceil(ROOMS_PER_TENANT);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut report = StormReport {
        clients: rooms * 2,
        rss_baseline_kib: rss_kib(server.pid),
        ..StormReport::default()
    };
    let dropped = Arc::new(Barrier::new(rooms + 1));
    let resumed = Arc::new(Barrier::new(rooms + 1));
    // Set-up is paced (CONNECTING rooms at once); the rooms then wait at the barrier together.
    let setting_up = Arc::new(Semaphore::new(CONNECTING));
    let tasks: Vec<_> = (0..rooms)
        .map(|i| {
            let (up, dropped, resumed) = (setting_up.clone(), dropped.clone(), resumed.clone());
            tokio::spawn(room(
                server.clone(),
                i,
                tenants,
                messages,
                up,
                dropped,
                resumed,
            ))
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn({
        let (server, done) = (server.clone(), done.clone());
        async move {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(server.pid));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            peak
        }
    });
    dropped.wait().await;
    report.rss_connected_kib = rss_kib(server.pid);
    eprintln!(
        "  storm: {} clients connected, dropping all",
        report.clients
    );
    resumed.wait().await;
    for task in tasks {
        let (acked, resumes, problems, failed) = task.await.expect("room task");
        report.acked += acked;
        report.failed += failed;
        for took in resumes {
            report.resume.record_duration(took);
        }
        report.wrong += problems.len() as u64;
        if report.first_problem.is_none() {
            report.first_problem = problems.into_iter().next();
        }
    }
    done.store(true, Ordering::Relaxed);
    let peak = watch.await.unwrap_or(0);
    report.rss_connected_kib = report.rss_connected_kib.max(peak);
    // Every client is gone: give the server a moment to let go of their state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    report.rss_after_kib = rss_kib(server.pid);
    report
}
