//! A client that pipelines its sends (several in flight on one connection, no wait for each
//! ack) gets seqs in the order it sent them, and so does every subscriber.

mod support;

use std::collections::HashMap;

use serde_json::json;
use support::client::connect;
use support::{Backends, edge, principal, token};
use switchboard_edge::{EdgeConfig, Rate};
use switchboard_events::principal::Role;

const PIPELINED: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_to_one_conversation_are_sequenced_in_the_order_sent() {
    let backends = Backends::embedded().await;
    let roomy = Rate {
        per_second: 1000.0,
        burst: 1000.0,
    };
    let config = EdgeConfig {
        connection_rate: roomy,
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let mut customer = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let mut agent = connect(
        &edge.url(),
        &token(&principal("acme", Role::Agent, "agent-1")),
    )
    .await;
    let conversation = customer.open().await;
    let other = customer.open().await;
    agent.subscribe(&conversation, 0).await;

    // Two conversations interleaved, every frame sent before any ack is read.
    for i in 0..PIPELINED {
        for (c, to) in [("a", &conversation), ("b", &other)] {
            let id = format!("{c}{i}");
            customer.send(json!({"type": "send", "ref": id, "conversation_id": to, "client_msg_id": id, "body": id})).await;
        }
    }
    let mut seqs = HashMap::new();
    while seqs.len() < 2 * PIPELINED {
        let ack = customer.expect("ack").await;
        seqs.insert(
            ack["ref"].as_str().unwrap().to_owned(),
            ack["seq"].as_u64().unwrap(),
        );
    }
    for c in ["a", "b"] {
        let in_send_order: Vec<u64> = (0..PIPELINED).map(|i| seqs[&format!("{c}{i}")]).collect();
        let expected: Vec<u64> = (2..2 + PIPELINED as u64).collect();
        assert_eq!(
            in_send_order, expected,
            "conversation {c}: seqs follow the sends"
        );
    }

    let mut bodies = Vec::new();
    while bodies.len() < PIPELINED {
        let event = agent.expect("event").await;
        if event["kind"] == "message_posted" {
            bodies.push(event["data"]["body"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..PIPELINED).map(|i| format!("a{i}")).collect();
    assert_eq!(
        bodies, expected,
        "the subscriber hears them in the order sent"
    );
}
