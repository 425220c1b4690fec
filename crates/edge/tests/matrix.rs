//! Authorization on every frame type: for each frame, who may and who may not — across
//! tenants and roles. A refusal never reveals that another tenant's conversation exists.

mod support;

use serde_json::{Value, json};
use support::client::{Client, connect};
use support::{principal, stack, token};
use switchboard_events::principal::Role;

async fn who(url: &str, tenant: &str, role: Role, subject: &str) -> Client {
    connect(url, &token(&principal(tenant, role, subject))).await
}

/// Sends `frame` and returns the answer of type `ack`, `subscribed`, `unsubscribed` or `error`.
async fn answer(client: &mut Client, frame: Value) -> Value {
    client.send(frame).await;
    loop {
        let f = client.next_frame().await.unwrap();
        if ["ack", "subscribed", "unsubscribed", "error", "reload"]
            .contains(&f["type"].as_str().unwrap())
        {
            return f;
        }
    }
}

fn code(answer: &Value) -> &str {
    if answer["type"] == "error" {
        answer["code"].as_str().unwrap()
    } else {
        "ok"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_type_is_authorized_by_tenant_and_role() {
    let (_backends, edge) = stack().await;
    let url = edge.url();
    let mut owner = who(&url, "acme", Role::Customer, "cust-1").await;
    let mut other_customer = who(&url, "acme", Role::Customer, "cust-2").await;
    let mut agent = who(&url, "acme", Role::Agent, "agent-1").await;
    let mut foreign_agent = who(&url, "globex", Role::Agent, "agent-1").await;
    let mut foreign_customer = who(&url, "globex", Role::Customer, "cust-1").await;
    let mut auditor = who(&url, "acme", Role::Auditor, "audit-1").await;
    let c = owner.open().await;

    let subscribe = json!({"type": "subscribe", "conversation_id": c, "since_seq": 0});
    let send = json!({"type": "send", "conversation_id": c, "client_msg_id": "x1", "body": "hi"});
    let note = json!({"type": "send", "conversation_id": c, "client_msg_id": "x2", "body": "note", "private_note": true});
    let read = json!({"type": "read", "conversation_id": c, "up_to_seq": 1});
    let take = json!({"type": "take", "conversation_id": c});
    let resolve = json!({"type": "resolve", "conversation_id": c});
    let typing = json!({"type": "typing", "conversation_id": c});
    let unsubscribe = json!({"type": "unsubscribe", "conversation_id": c});
    let status = json!({"type": "status", "status": "online"});
    let open = json!({"type": "open"});

    let expect = [
        ("foreign agent subscribes", "not_found"),
        ("foreign customer subscribes", "not_found"),
        ("other customer subscribes", "not_found"),
        ("foreign agent sends", "not_found"),
        ("other customer sends", "not_found"),
        ("foreign agent takes", "not_found"),
        ("foreign customer reads", "not_found"),
        ("customer posts a private note", "forbidden"),
        ("customer takes", "forbidden"),
        ("customer sets a status", "forbidden"),
        ("agent opens", "forbidden"),
        ("auditor sends", "forbidden"),
        ("foreign agent types unsubscribed", "not_subscribed"),
        ("foreign agent unsubscribes", "not_subscribed"),
        ("owner subscribes", "ok"),
        ("agent subscribes", "ok"),
        ("auditor subscribes", "ok"),
        ("owner sends", "ok"),
        ("owner reads", "ok"),
        ("agent sets a status", "ok"),
        ("agent takes", "ok"),
        ("agent posts a note", "ok"),
        ("agent resolves", "ok"),
        ("owner unsubscribes", "ok"),
    ];
    let mut got = Vec::new();
    got.push(code(&answer(&mut foreign_agent, subscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut foreign_customer, subscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut other_customer, subscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut foreign_agent, send.clone()).await).to_owned());
    got.push(code(&answer(&mut other_customer, send.clone()).await).to_owned());
    got.push(code(&answer(&mut foreign_agent, take.clone()).await).to_owned());
    got.push(code(&answer(&mut foreign_customer, read.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, note.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, take.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, status.clone()).await).to_owned());
    got.push(code(&answer(&mut agent, open.clone()).await).to_owned());
    got.push(code(&answer(&mut auditor, send.clone()).await).to_owned());
    got.push(code(&answer(&mut foreign_agent, typing.clone()).await).to_owned());
    got.push(code(&answer(&mut foreign_agent, unsubscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, subscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut agent, subscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut auditor, subscribe.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, send.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, read.clone()).await).to_owned());
    got.push(code(&answer(&mut agent, status.clone()).await).to_owned());
    got.push(code(&answer(&mut agent, take.clone()).await).to_owned());
    got.push(code(&answer(&mut agent, note.clone()).await).to_owned());
    got.push(code(&answer(&mut agent, resolve.clone()).await).to_owned());
    got.push(code(&answer(&mut owner, unsubscribe.clone()).await).to_owned());
    let got: Vec<(&str, &str)> = expect
        .iter()
        .zip(&got)
        .map(|((case, _), code)| (*case, code.as_str()))
        .collect();
    assert_eq!(got, expect);

    // The foreign tenant's connections received nothing of acme's conversation.
    for client in [
        &mut foreign_agent,
        &mut foreign_customer,
        &mut other_customer,
    ] {
        client.send(json!({"type": "ping", "ref": "last"})).await;
        loop {
            let f = client.next_frame().await.unwrap();
            assert_ne!(f["type"], "event", "{f}");
            assert_ne!(f["type"], "typing", "{f}");
            if f["type"] == "pong" {
                break;
            }
        }
    }
}

/// Current-thread and paused once the stack is up, so that the clock moves only by timers:
/// the time a refusal takes is then exact.
#[tokio::test]
async fn a_refused_subscribe_takes_the_same_time_whatever_the_reason() {
    let (_backends, edge) = stack().await;
    let url = edge.url();
    let mut owner = who(&url, "acme", Role::Customer, "cust-1").await;
    let c = owner.open().await;
    // Just opened on another connection: the owner finds it at once.
    let mut owner_elsewhere = who(&url, "acme", Role::Customer, "cust-1").await;
    let subscribe = |conversation: &str| json!({"type": "subscribe", "conversation_id": conversation, "since_seq": 0});
    assert_eq!(
        code(&answer(&mut owner_elsewhere, subscribe(&c)).await),
        "ok"
    );
    let mut other_customer = who(&url, "acme", Role::Customer, "cust-2").await;
    let mut foreign_customer = who(&url, "globex", Role::Customer, "cust-1").await;
    let mut foreign_agent = who(&url, "globex", Role::Agent, "agent-1").await;
    let mut agent = who(&url, "acme", Role::Agent, "agent-1").await;
    let mut supervisor = who(&url, "acme", Role::Supervisor, "sup-1").await;

    tokio::time::pause();
    let wait = switchboard_edge::EdgeConfig::default().history_wait;
    let missing = "c-0192f0c4-4a3b-7a9e-8f00-000000000000";
    let cases = [
        ("another customer's", &mut other_customer, c.as_str()),
        (
            "another tenant's, as its customer",
            &mut foreign_customer,
            c.as_str(),
        ),
        (
            "another tenant's, as its agent",
            &mut foreign_agent,
            c.as_str(),
        ),
        ("a missing one, as a customer", &mut owner, missing),
        ("a missing one, as an agent", &mut agent, missing),
        ("an unreadable id", &mut supervisor, "not an id"),
    ];
    for (case, client, conversation) in cases {
        let started = tokio::time::Instant::now();
        let refused = answer(client, subscribe(conversation)).await;
        let took = started.elapsed();
        assert_eq!(code(&refused), "not_found", "{case}");
        assert!(
            took >= wait && took <= wait + std::time::Duration::from_millis(5),
            "{case}: answered after {took:?}, not after {wait:?}"
        );
    }
}
