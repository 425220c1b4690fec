//! A customer and an agent talk through one edge: open, subscribe, send → ack, live delivery
//! to both, private notes only to staff, read marks and typing.

mod support;

use serde_json::json;
use support::client::connect;
use support::{principal, stack, token};
use switchboard_events::principal::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_and_an_agent_talk() {
    let (_backends, edge) = stack().await;
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
    customer.subscribe(&conversation, 0).await;
    let joined = agent.subscribe(&conversation, 0).await;
    assert_eq!(joined["seq"], 1, "the agent's gap holds the opening");

    agent
        .send(json!({"type": "take", "ref": "t", "conversation_id": conversation}))
        .await;
    assert_eq!(agent.expect("ack").await["seq"], 2);

    customer
        .say(&conversation, "m1", "hello, my order is late")
        .await;
    let ack = customer.expect("ack").await;
    assert_eq!(
        (ack["ref"].as_str(), ack["seq"].as_u64()),
        (Some("m1"), Some(3))
    );
    let heard = loop {
        let event = agent.expect("event").await;
        if event["kind"] == "message_posted" {
            break event;
        }
    };
    assert_eq!(heard["seq"], 3);
    assert_eq!(heard["data"]["body"], "hello, my order is late");
    assert_eq!(heard["actor"]["kind"], "customer");

    agent.send(json!({"type": "send", "ref": "n", "conversation_id": conversation, "client_msg_id": "n1", "body": "vip, be nice", "private_note": true})).await;
    agent.expect("ack").await;
    agent.say(&conversation, "r1", "on its way!").await;
    agent.expect("ack").await;

    // The customer sees its own message, then the reply; never the note.
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        let event = customer.expect("event").await;
        if event["kind"] == "message_posted" {
            bodies.push(event["data"]["body"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(bodies, ["hello, my order is late", "on its way!"]);

    customer
        .send(json!({"type": "typing", "conversation_id": conversation}))
        .await;
    let typing = agent.expect("typing").await;
    assert_eq!(
        (typing["role"].as_str(), typing["subject"].as_str()),
        (Some("customer"), Some("cust-1"))
    );

    customer
        .send(json!({"type": "read", "ref": "rd", "conversation_id": conversation, "up_to_seq": 5}))
        .await;
    let read = customer.expect("ack").await;
    assert_eq!(read["ref"], "rd");
    let event = customer.expect("event").await;
    assert_eq!(
        (event["kind"].as_str(), event["seq"].as_u64()),
        (Some("participant_read"), Some(6))
    );

    // A retried send answers with the original seq.
    customer
        .say(&conversation, "m1", "hello, my order is late")
        .await;
    let again = customer.expect("ack").await;
    assert_eq!(
        (again["seq"].as_u64(), again["duplicate"].as_bool()),
        (Some(3), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_history_without_private_notes() {
    let (_backends, edge) = stack().await;
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
    agent.send(json!({"type": "send", "ref": "n", "conversation_id": conversation, "client_msg_id": "n1", "body": "secret", "private_note": true})).await;
    assert_eq!(agent.expect("ack").await["seq"], 2);
    customer.say(&conversation, "m1", "anyone?").await;
    assert_eq!(customer.expect("ack").await["seq"], 3);

    customer.send(json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": 0})).await;
    let mut seqs = Vec::new();
    loop {
        let frame = customer.next_frame().await.unwrap();
        match frame["type"].as_str() {
            Some("event") => {
                assert_ne!(frame["data"]["body"], "secret");
                seqs.push(frame["seq"].as_u64().unwrap());
            }
            Some("subscribed") => {
                assert_eq!(frame["seq"], 3);
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seqs, [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_see_each_other_come_and_go_and_customers_do_not() {
    let (_backends, edge) = stack().await;
    let mut watcher = connect(
        &edge.url(),
        &token(&principal("acme", Role::Supervisor, "sup-1")),
    )
    .await;
    let mut customer = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let agent = connect(
        &edge.url(),
        &token(&principal("acme", Role::Agent, "agent-2")),
    )
    .await;
    let seen = watcher.expect("presence").await;
    assert_eq!(
        (seen["agent_id"].as_str(), seen["online"].as_bool()),
        (Some("agent-2"), Some(true))
    );
    drop(agent);
    let gone = watcher.expect("presence").await;
    assert_eq!(
        (gone["agent_id"].as_str(), gone["online"].as_bool()),
        (Some("agent-2"), Some(false))
    );

    customer.send(json!({"type": "ping", "ref": "p"})).await;
    loop {
        let frame = customer.next_frame().await.unwrap();
        assert_ne!(frame["type"], "presence");
        if frame["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_customer_hears_its_queue_position() {
    use std::sync::Arc;
    use std::time::Duration;
    use switchboard_edge::{EdgeConfig, MemoryBus};
    use switchboard_events::id::TenantId;
    use switchboard_ingest::routing::{QueueEntry, QueueSignal};

    let backends = support::Backends::embedded().await;
    let (router, queue) = tokio::sync::broadcast::channel(16);
    let edge = support::edge_full(
        &backends,
        EdgeConfig::default(),
        Arc::new(MemoryBus::default()),
        Some(queue),
    )
    .await;
    let mut customer = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let conversation = customer.open().await;
    customer.subscribe(&conversation, 0).await;
    let entry = QueueEntry {
        conversation: conversation.parse().unwrap(),
        position: 3,
        queue_length: 5,
        estimated_wait: Some(Duration::from_secs(90)),
    };
    router
        .send(QueueSignal::Waiting {
            tenant: TenantId::new("acme").unwrap(),
            entry,
        })
        .unwrap();
    let queued = customer.expect("queue").await;
    assert_eq!(
        (
            queued["position"].as_u64(),
            queued["estimated_wait_s"].as_u64()
        ),
        (Some(3), Some(90))
    );
    router
        .send(QueueSignal::Left {
            tenant: TenantId::new("acme").unwrap(),
            conversation: conversation.parse().unwrap(),
        })
        .unwrap();
    let left = customer.expect("queue").await;
    assert!(left.get("position").is_none());
}
