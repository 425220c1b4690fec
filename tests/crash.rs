//! `switchboard serve` killed with SIGKILL under chat load while an agent follows the
//! conversation live, and restarted on the same data directory. The follower resubscribes
//! right after each restart, when the projector is still folding what was written before the
//! crash: it must get every event once and in order, and every acknowledged message must be
//! in the history exactly once.
//!
//! Rounds: `SWITCHBOARD_TEST_CRASH_ROUNDS` (3 by default; `ops/crash-loop.sh` runs 50).

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::{Load, Server, assert_every_ack_once_in_order, follow, history, request, token};

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

    let load = Arc::new(Load::new(&server.http));
    let sender = {
        let (load, customer, conversation) = (load.clone(), customer.clone(), conversation.clone());
        std::thread::spawn(move || load.send_until_stopped(&customer, &conversation))
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
    let acked = load.acked();
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
    let history = history(&server.query, &agent, &conversation);
    assert_every_ack_once_in_order(&history, &acked);
}
