//! `switchboard serve` killed with SIGKILL under chat load while an agent follows the
//! conversation live, and restarted on the same data directory. The follower resubscribes
//! right after each restart, when the projector is still folding what was written before the
//! crash: it must get every event once and in order, and every acknowledged message must be
//! in the history exactly once.
//!
//! Rounds: `SWITCHBOARD_TEST_CRASH_ROUNDS` (3 by default; `ops/crash-loop.sh` runs 50).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, WsClient, request, token, try_request};

/// What the sender thread shares: where the server is now, and what it acknowledged.
struct Load {
    http: Mutex<String>,
    acked: Mutex<Vec<(String, u64)>>,
    stop: AtomicBool,
}

/// Posts messages one after another; a send that fails (the server is down) is retried with
/// the same `client_msg_id` until it is acknowledged.
fn send_until_stopped(load: &Load, customer: &str, conversation: &str) {
    let path = format!("/v1/conversations/{conversation}/commands");
    let mut n = 0u64;
    while !load.stop.load(Ordering::Relaxed) {
        let id = format!("m-{n}");
        let body =
            json!({"type": "post_message", "client_msg_id": id, "body": format!("message {n}")});
        let http = load.http.lock().unwrap().clone();
        match try_request(&http, "POST", &path, Some(customer), &body.to_string()) {
            Some((200, ack)) => {
                let seq = ack["seq"].as_u64().expect("an ack has a seq");
                load.acked.lock().unwrap().push((id, seq));
                n += 1;
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Follows the conversation from `since` until the connection drops or `until` passes,
/// checking each event continues the sequence. Returns the last seq seen.
async fn follow(edge: &str, agent: &str, conversation: &str, since: u64, until: Instant) -> u64 {
    let mut last = since;
    let Some(mut ws) = WsClient::connect(edge, agent).await else {
        return last;
    };
    let subscribe = json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": since});
    if ws.send(subscribe.clone()).await.is_none() {
        return last;
    }
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return last,
        };
        match frame["type"].as_str() {
            Some("event") => {
                let seq = frame["seq"].as_u64().unwrap();
                assert_eq!(
                    seq,
                    last + 1,
                    "the follower got seq {seq} after {last}: seqs {}..{} were lost at the seam",
                    last + 1,
                    seq - 1
                );
                last = seq;
            }
            Some("error") if frame["code"] == "history_unavailable" => {
                // History is catching up after the restart: ask again.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let again = json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": last});
                if ws.send(again).await.is_none() {
                    return last;
                }
            }
            Some("error") => panic!("the follower was refused: {frame}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_resubscribing_after_each_crash_misses_nothing() {
    let rounds: usize = std::env::var("SWITCHBOARD_TEST_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let data = tempfile::tempdir().unwrap();
    let customer = token(data.path(), "customer", "cust-1");
    let agent = token(data.path(), "agent", "agent-1");
    let mut server = Server::start(data.path(), &[]);
    let (status, opened) = request(
        &server.http,
        "POST",
        "/v1/conversations",
        Some(&customer),
        r#"{"customer_id":"cust-1","channel":"web"}"#,
    );
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();

    let load = Arc::new(Load {
        http: Mutex::new(server.http.clone()),
        acked: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let sender = {
        let (load, customer, conversation) = (load.clone(), customer.clone(), conversation.clone());
        std::thread::spawn(move || send_until_stopped(&load, &customer, &conversation))
    };

    let mut last = 0;
    for round in 0..rounds {
        // Follow for a while under load, then crash at a moment that varies per round.
        let crash_at = Instant::now() + Duration::from_millis(300 + 137 * (round as u64 % 5));
        last = follow(&server.edge, &agent, &conversation, last, crash_at).await;
        server.kill();
        server = Server::start(data.path(), &[]);
        *load.http.lock().unwrap() = server.http.clone();
        // Resubscribe at once: the projector is still folding the records of before the crash.
    }
    load.stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let acked = load.acked.lock().unwrap().clone();
    let newest = acked.iter().map(|(_, seq)| *seq).max().unwrap();
    assert!(
        acked.len() > 10 * rounds,
        "the load ran: {} acks",
        acked.len()
    );

    // After the last restart, follow until the newest acknowledged seq arrives.
    let deadline = Instant::now() + Duration::from_secs(30);
    while last < newest && Instant::now() < deadline {
        last = follow(
            &server.edge,
            &agent,
            &conversation,
            last,
            deadline.min(Instant::now() + Duration::from_secs(5)),
        )
        .await;
    }
    assert!(
        last >= newest,
        "the follower reached seq {last} of {newest}"
    );

    // Every acknowledged message is in the history once, at its acknowledged seq.
    let history = history(&server, &agent, &conversation);
    let mut seen = std::collections::HashMap::new();
    for event in &history {
        if event["kind"] == "switchboard.conversation.MessagePosted" {
            let id = event["event"]["client_msg_id"].as_str();
            let id = id.unwrap_or_else(|| panic!("a message has its client id: {event}"));
            let id = id.to_owned();
            let seq = event["seq"].as_u64().unwrap();
            assert!(
                seen.insert(id.clone(), seq).is_none(),
                "{id} is in the history twice"
            );
        }
    }
    for (id, seq) in &acked {
        assert_eq!(
            seen.get(id),
            Some(seq),
            "{id} was acknowledged at seq {seq}"
        );
    }
    let seqs: Vec<u64> = history.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "history is gapless"
    );
}

/// Every event of the conversation from the query service, page after page.
fn history(server: &Server, token: &str, conversation: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0u64;
    loop {
        let path = format!("/v1/conversations/{conversation}/history?after={after}&limit=200");
        let (status, page) = request(&server.query, "GET", &path, Some(token), "");
        assert_eq!(status, 200, "{page}");
        let entries = page["events"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            return events;
        }
        after = entries.last().unwrap()["seq"].as_u64().unwrap();
        events.extend(entries);
    }
}
