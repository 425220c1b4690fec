//! Reconnecting in the middle of a burst loses nothing and repeats nothing; a gap above the
//! limit answers `reload`.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use support::client::connect;
use support::{Backends, edge, principal, stack, token};
use switchboard_edge::EdgeConfig;
use switchboard_events::id::{ClientMsgId, ConversationId, CorrelationId};
use switchboard_events::principal::Role;
use switchboard_ingest::ConversationCommand;
use switchboard_ingest::api::CommandHandler;
use switchboard_ingest::command::PostMessage;
use switchboard_ingest::writer::Writer;

const BURST: usize = 300;

/// Posts `n` messages as the customer, straight to the writer, one after the other.
fn burst(
    writer: Arc<Writer>,
    conversation: ConversationId,
    n: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let customer = principal("acme", Role::Customer, "cust-1");
        for i in 0..n {
            let post = PostMessage {
                client_msg_id: ClientMsgId::new(format!("b{i}")).unwrap(),
                body: format!("burst {i}"),
                attachments: vec![],
                private_note: false,
            };
            writer
                .conversation(
                    customer.clone(),
                    Some(conversation.clone()),
                    ConversationCommand::PostMessage(post),
                    CorrelationId(uuid::Uuid::now_v7()),
                )
                .await
                .unwrap();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_in_the_middle_of_a_burst_has_no_gap_and_no_duplicate() {
    let (backends, edge) = stack().await;
    let agent_token = token(&principal("acme", Role::Agent, "agent-1"));
    let mut customer = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let conversation = customer.open().await;

    let mut agent = connect(&edge.url(), &agent_token).await;
    agent.subscribe(&conversation, 0).await;
    assert_eq!(agent.expect("event").await["kind"], "opened");
    let sending = burst(
        backends.writer.clone(),
        conversation.parse().unwrap(),
        BURST,
    );

    let mut seqs = vec![1u64];
    let mut bodies = BTreeSet::new();
    // Several disconnects while the burst runs; each reconnect resumes from the last seq held.
    for round in 0..4 {
        let mut received = 0;
        while received < 40 {
            let event = agent.expect("event").await;
            seqs.push(event["seq"].as_u64().unwrap());
            assert!(
                bodies.insert(event["data"]["body"].as_str().unwrap().to_owned()),
                "duplicate in round {round}"
            );
            received += 1;
        }
        drop(agent);
        agent = connect(&edge.url(), &agent_token).await;
        let last = *seqs.last().unwrap();
        agent
            .send(json!({"type": "subscribe", "conversation_id": conversation, "since_seq": last}))
            .await;
    }
    while bodies.len() < BURST {
        let event = agent.expect("event").await;
        seqs.push(event["seq"].as_u64().unwrap());
        assert!(
            bodies.insert(event["data"]["body"].as_str().unwrap().to_owned()),
            "duplicate after the last resume"
        );
    }
    sending.await.unwrap();
    let expected: Vec<u64> = (1..=(BURST as u64 + 1)).collect();
    assert_eq!(seqs, expected, "every seq once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_above_the_limit_answers_reload() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        max_gap: 10,
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let mut customer = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let conversation = customer.open().await;
    customer.subscribe(&conversation, 0).await;
    burst(backends.writer.clone(), conversation.parse().unwrap(), 20)
        .await
        .unwrap();
    // The customer has seen every event live, so the hub knows the latest seq.
    let mut last = 0;
    while last < 21 {
        last = customer.expect("event").await["seq"].as_u64().unwrap();
    }
    let mut late = connect(
        &edge.url(),
        &token(&principal("acme", Role::Agent, "agent-1")),
    )
    .await;
    late.send(
        json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": 0}),
    )
    .await;
    let reload = late.expect("reload").await;
    assert_eq!(
        (reload["reason"].as_str(), reload["latest_seq"].as_u64()),
        (Some("gap_too_large"), Some(21))
    );
    let fine = late.subscribe(&conversation, 15).await;
    assert_eq!(fine["seq"], 21);
}
