//! Every error frame that answers a client frame echoes its `ref`, whichever check refused
//! it: before parsing (size, rate), at parsing, at authorization, in the edge's own rules, on
//! the write side, and at authentication.

mod support;

use serde_json::{Value, json};
use support::client::{Client, connect, connect_bare};
use support::{Backends, edge, principal, token};
use switchboard_edge::{EdgeConfig, Rate};
use switchboard_events::principal::Role;

async fn who(url: &str, tenant: &str, role: Role, subject: &str) -> Client {
    connect(url, &token(&principal(tenant, role, subject))).await
}

/// Sends `frame` and returns the error that answers it.
async fn refused(client: &mut Client, frame: Value) -> Value {
    client.send(frame).await;
    client.expect("error").await
}

/// Who sends a case's frame.
enum By {
    Customer,
    Agent,
}
use By::{Agent, Customer};

fn config() -> EdgeConfig {
    EdgeConfig {
        connection_rate: Rate {
            per_second: 1000.0,
            burst: 1000.0,
        },
        history_wait: std::time::Duration::from_millis(200),
        max_subscriptions: 1,
        ..EdgeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_echoes_the_ref_of_the_frame_it_answers() {
    let backends = Backends::embedded().await;
    let edge = edge(&backends, config()).await;
    let url = edge.url();
    let mut customer = who(&url, "acme", Role::Customer, "cust-1").await;
    let mut agent = who(&url, "acme", Role::Agent, "agent-1").await;
    let c = customer.open().await;
    let other = customer.open().await;
    customer.subscribe(&c, 0).await;
    customer.say(&c, "m1", "hello").await;
    customer.expect("ack").await;

    let big = format!(
        r#"{{"type":"ping","ref":"r-big","pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let cases = [
        (
            "unknown field",
            Customer,
            json!({"type": "ping", "ref": "r1", "extra": 1}),
            "bad_frame",
        ),
        (
            "unknown type",
            Customer,
            json!({"type": "launch", "ref": "r2"}),
            "bad_frame",
        ),
        (
            "bad token in auth",
            Customer,
            json!({"type": "auth", "ref": "r3", "token": "not.a.jwt"}),
            "unauthenticated",
        ),
        (
            "unknown channel",
            Customer,
            json!({"type": "open", "ref": "r4", "channel": "fax"}),
            "invalid_argument",
        ),
        (
            "agent opens",
            Agent,
            json!({"type": "open", "ref": "r5"}),
            "forbidden",
        ),
        (
            "unreadable id, subscribe",
            Agent,
            json!({"type": "subscribe", "ref": "r6", "conversation_id": "not an id"}),
            "not_found",
        ),
        (
            "missing conversation, subscribe",
            Agent,
            json!({"type": "subscribe", "ref": "r7", "conversation_id": "c-0192f0c4-4a3b-7a9e-8f00-000000000000"}),
            "not_found",
        ),
        (
            "one subscription too many",
            Customer,
            json!({"type": "subscribe", "ref": "r8", "conversation_id": other}),
            "too_many_subscriptions",
        ),
        (
            "unreadable id, unsubscribe",
            Customer,
            json!({"type": "unsubscribe", "ref": "r9", "conversation_id": "not an id"}),
            "not_found",
        ),
        (
            "unsubscribe unsubscribed",
            Customer,
            json!({"type": "unsubscribe", "ref": "r10", "conversation_id": other}),
            "not_subscribed",
        ),
        (
            "typing unsubscribed",
            Customer,
            json!({"type": "typing", "ref": "r11", "conversation_id": other}),
            "not_subscribed",
        ),
        (
            "unreadable id, send",
            Customer,
            json!({"type": "send", "ref": "r12", "conversation_id": "not an id", "client_msg_id": "x", "body": "b"}),
            "not_found",
        ),
        (
            "invalid client_msg_id",
            Customer,
            json!({"type": "send", "ref": "r13", "conversation_id": c, "client_msg_id": "", "body": "b"}),
            "invalid_argument",
        ),
        (
            "customer posts a note",
            Customer,
            json!({"type": "send", "ref": "r14", "conversation_id": c, "client_msg_id": "n1", "body": "b", "private_note": true}),
            "forbidden",
        ),
        (
            "idempotency conflict",
            Customer,
            json!({"type": "send", "ref": "r15", "conversation_id": c, "client_msg_id": "m1", "body": "not hello"}),
            "idempotency_conflict",
        ),
        (
            "customer takes",
            Customer,
            json!({"type": "take", "ref": "r16", "conversation_id": c}),
            "forbidden",
        ),
        (
            "unreadable id, read",
            Customer,
            json!({"type": "read", "ref": "r17", "conversation_id": "not an id", "up_to_seq": 1}),
            "not_found",
        ),
        (
            "customer sets a status",
            Customer,
            json!({"type": "status", "ref": "r18", "status": "online"}),
            "forbidden",
        ),
        (
            "unknown status",
            Agent,
            json!({"type": "status", "ref": "r19", "status": "asleep"}),
            "invalid_argument",
        ),
        (
            "unreadable id, resolve",
            Agent,
            json!({"type": "resolve", "ref": "r20", "conversation_id": "not an id"}),
            "not_found",
        ),
    ];
    for (case, by, frame, code) in cases {
        let client = match by {
            Customer => &mut customer,
            Agent => &mut agent,
        };
        let reference = frame["ref"].clone();
        let error = refused(client, frame).await;
        assert_eq!(
            (&error["code"], &error["ref"]),
            (&json!(code), &reference),
            "{case}: {error}"
        );
    }

    customer.send_raw(big).await.unwrap();
    let error = customer.expect("error").await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("frame_too_large"), Some("r-big"))
    );

    // Write-side refusals echo it too: nobody takes a resolved conversation.
    customer
        .send(json!({"type": "resolve", "ref": "done", "conversation_id": c}))
        .await;
    customer.expect("ack").await;
    let take = json!({"type": "take", "ref": "r21", "conversation_id": c});
    let error = refused(&mut agent, take).await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("conversation_resolved"), Some("r21"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_errors_echo_the_ref_of_each_refused_frame() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        connection_rate: Rate {
            per_second: 0.001,
            burst: 3.0,
        },
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let mut flood = who(&edge.url(), "acme", Role::Customer, "cust-1").await;
    for i in 0..8 {
        flood
            .send(json!({"type": "ping", "ref": format!("p{i}")}))
            .await;
    }
    for i in 0..8 {
        let answer = flood.next_frame().await.unwrap();
        assert_eq!(answer["ref"], format!("p{i}"), "{answer}");
        let kind = if i < 3 { "pong" } else { "error" };
        assert_eq!(answer["type"], kind, "{answer}");
        if kind == "error" {
            assert_eq!(answer["code"], "rate_limited");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_auth_frame_and_a_history_behind_echo_the_ref() {
    let mut backends = Backends::embedded().await;
    let edge = edge(&backends, config()).await;
    let mut stranger = connect_bare(&edge.url()).await;
    stranger
        .send(json!({"type": "auth", "ref": "a1", "token": "not.a.jwt"}))
        .await;
    let error = stranger.expect("error").await;
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("unauthenticated"), Some("a1"))
    );
    assert_eq!(stranger.closed().await, Some(4001));

    // With the projector stopped, history never reaches what the live tail delivered.
    let _ = backends.stop_projector.take().unwrap().send(true);
    let mut customer = who(&edge.url(), "acme", Role::Customer, "cust-1").await;
    let mut agent = who(&edge.url(), "acme", Role::Agent, "agent-1").await;
    let c = customer.open().await;
    // The agent's subscribe is allowed once the hub has seen the opening on its tail.
    let error = loop {
        let error = refused(
            &mut agent,
            json!({"type": "subscribe", "ref": "h1", "conversation_id": c}),
        )
        .await;
        if error["code"] != "not_found" {
            break error;
        }
    };
    assert_eq!(
        (error["code"].as_str(), error["ref"].as_str()),
        (Some("history_unavailable"), Some("h1"))
    );
}
