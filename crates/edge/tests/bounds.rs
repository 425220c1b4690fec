//! The hub remembers a bounded number of conversations without subscribers: past the bound it
//! forgets the least recently used, never one with subscribers, and a forgotten conversation
//! still resumes without gap or duplicate.

mod support;

use serde_json::json;
use support::client::{Client, connect};
use support::{Backends, edge, principal, token};
use switchboard_edge::{EdgeConfig, Rate};
use switchboard_events::principal::Role;

const BOUND: usize = 3;

/// A series of the edge's metrics, as the admin listener would serve them.
fn metric(name: &str) -> u64 {
    let mut page = String::new();
    switchboard_edge::metrics::render(&mut page);
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap()
}

/// Says something in a conversation while subscribed, so that the hub has delivered it when
/// this returns, then leaves it idle.
async fn say(customer: &mut Client, conversation: &str, since: u64, what: &str) {
    customer.subscribe(conversation, since).await;
    customer.say(conversation, what, what).await;
    customer.expect("ack").await;
    customer.expect("event").await;
    customer
        .send(json!({"type": "unsubscribe", "ref": "u", "conversation_id": conversation}))
        .await;
    customer.expect("unsubscribed").await;
}

/// Opens a conversation and says one thing in it.
async fn chat(customer: &mut Client) -> String {
    let conversation = customer.open().await;
    say(customer, &conversation, 1, "hello").await;
    conversation
}

/// The seqs of the `n` next events.
async fn seqs(client: &mut Client, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.len() < n {
        seqs.push(client.expect("event").await["seq"].as_u64().unwrap());
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_forgets_idle_conversations_past_its_bound_and_they_still_resume() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        hub_idle_conversations: BOUND,
        connection_rate: Rate {
            per_second: 1000.0,
            burst: 1000.0,
        },
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let url = edge.url();
    let agent_token = token(&principal("acme", Role::Agent, "agent-1"));
    let mut customer = connect(&url, &token(&principal("acme", Role::Customer, "cust-1"))).await;
    let mut watcher = connect(&url, &agent_token).await;

    // Watched throughout, and one the agent follows for a while, then leaves.
    let watched = chat(&mut customer).await;
    watcher.subscribe(&watched, 0).await;
    let left = chat(&mut customer).await;
    let mut agent = connect(&url, &agent_token).await;
    agent.subscribe(&left, 0).await;
    assert_eq!(seqs(&mut agent, 2).await, [1, 2]);
    drop(agent);

    // While the agent is away, its conversation goes on, then many others come and go.
    say(&mut customer, &left, 2, "more").await;
    let churn = 12;
    for _ in 0..churn {
        chat(&mut customer).await;
    }
    customer.say(&watched, "ping", "ping").await;
    assert_eq!(seqs(&mut watcher, 3).await, [1, 2, 3]);
    let forgotten = metric("switchboard_edge_forgotten_conversations_total ");
    let remembered = metric("switchboard_edge_remembered_conversations ");
    assert_eq!(
        (remembered, forgotten),
        (BOUND as u64 + 1, churn as u64 + 1 - BOUND as u64),
        "the bound of idle ones and the watched one; the rest forgotten"
    );

    // The watched conversation is live as ever.
    customer.say(&watched, "again", "again").await;
    assert_eq!(seqs(&mut watcher, 1).await, [4]);

    // The agent resumes the forgotten conversation from what it holds: the gap, then live.
    let mut agent = connect(&url, &agent_token).await;
    let resumed = agent.subscribe(&left, 2).await;
    assert_eq!(resumed["seq"], 3);
    assert_eq!(seqs(&mut agent, 1).await, [3]);
    customer.say(&left, "live", "live").await;
    assert_eq!(
        seqs(&mut agent, 1).await,
        [4],
        "live after the gap, nothing twice"
    );

    // Its customer, on a connection that did not open it, still finds it.
    let mut elsewhere = connect(&url, &token(&principal("acme", Role::Customer, "cust-1"))).await;
    assert_eq!(elsewhere.subscribe(&left, 0).await["seq"], 4);
}
