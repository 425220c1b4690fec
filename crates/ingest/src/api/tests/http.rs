use std::net::SocketAddr;

use serde_json::{Value, json};
use switchboard_events::conversation::{AssignmentPolicy, TransferTarget};
use switchboard_events::id::{AgentId, TeamId};
use switchboard_events::principal::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BOSS, CRM, Call, EDGE, Harness, every_error, principal};
use crate::command::{AgentCommand, ConversationCommand};

pub(super) struct Answer {
    pub(super) status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The `{code, message}` of an error answer, checked for its shape.
    pub(super) fn error(&self) -> (String, String) {
        let body = self.json();
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{body}"
        );
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 2, "{body}");
        (
            object["code"].as_str().unwrap().to_owned(),
            object["message"].as_str().unwrap().to_owned(),
        )
    }
}

/// One HTTP/1.1 exchange on its own connection: `head` is the request line and headers
/// (without the final blank line), `body` is sent as is.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{head}\r\nhost: {addr}\r\nconnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head,
        body: response[split + 4..].to_vec(),
    }
}

async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: {}",
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("\r\nauthorization: Bearer {token}"));
    }
    exchange(addr, &head, body).await
}

pub(super) async fn post_json(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Answer {
    post(addr, path, token, body.to_string().as_bytes()).await
}

pub(super) fn message() -> Value {
    json!({"type": "post_message", "client_msg_id": "c-1", "body": "hello"})
}

#[tokio::test]
async fn health_answers_ok() {
    let h = Harness::start().await;
    let answer = exchange(h.http, "GET /healthz HTTP/1.1", b"").await;
    assert_eq!((answer.status, &answer.body[..]), (200, &b"ok"[..]));
    h.stop().await;
}

#[tokio::test]
async fn an_open_answers_created_with_the_new_conversation_and_ok_for_a_retry() {
    let h = Harness::start().await;
    let open = json!({"customer_id": "cust-1", "channel": "web", "attributes": {"plan": "pro"}});
    let answer = post_json(h.http, "/v1/conversations", Some(BOSS), open.clone()).await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        answer.json(),
        json!({"conversation_id": "conv-new", "seq": 1, "unchanged": false})
    );

    let mut retry = open;
    retry["conversation_id"] = json!("retry");
    let answer = post_json(h.http, "/v1/conversations", Some(BOSS), retry).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["unchanged"], json!(true));
    h.stop().await;
}

#[tokio::test]
async fn conversation_commands_are_tagged_by_type() {
    let h = Harness::start().await;
    let path = "/v1/conversations/conv-1/commands";
    let answer = post_json(h.http, path, Some(BOSS), message()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"conversation_id": "conv-1", "seq": 2, "unchanged": false, "message_id": "m-1"})
    );
    let commands = [
        json!({"type": "assign", "agent_id": "agent-1", "policy": "least_busy"}),
        json!({"type": "transfer", "team_id": "tier-2", "reason": "expert"}),
        json!({"type": "resolve"}),
    ];
    for command in commands {
        let answer = post_json(h.http, path, Some(BOSS), command).await;
        assert_eq!(answer.status, 200, "{}", answer.json());
    }
    let commands: Vec<_> = h
        .fake
        .calls()
        .into_iter()
        .skip(1)
        .map(|call| match call {
            Call::Conversation { command, .. } => command,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        commands,
        [
            ConversationCommand::Assign {
                agent_id: AgentId::new("agent-1").unwrap(),
                policy: AssignmentPolicy::LeastBusy,
            },
            ConversationCommand::Transfer {
                to: TransferTarget::Team {
                    team_id: TeamId::new("tier-2").unwrap()
                },
                reason: Some("expert".into()),
            },
            ConversationCommand::Resolve,
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn agent_commands_are_served() {
    let h = Harness::start().await;
    let body = json!({"type": "set_status", "status": "away"});
    let answer = post_json(h.http, "/v1/agents/agent-7/commands", Some(BOSS), body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({"agent_id": "agent-7", "seq": 1, "unchanged": false})
    );
    assert!(matches!(
        &h.fake.calls()[..],
        [Call::Agent {
            command: AgentCommand::SetStatus { .. },
            ..
        }]
    ));
    h.stop().await;
}

#[tokio::test]
async fn every_refusal_keeps_its_code_status_and_message() {
    let h = Harness::start().await;
    for err in every_error() {
        let path = format!("/v1/conversations/{}/commands", err.code());
        let answer = post_json(h.http, &path, Some(BOSS), message()).await;
        assert_eq!(answer.status, err.status().http(), "{err}");
        assert_eq!(answer.error(), (err.code().to_owned(), err.to_string()));
    }
    h.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_clear_json_error() {
    let h = Harness::start().await;
    let path = "/v1/conversations/conv-1/commands";
    let cases: [(&str, &[u8], &str); 7] = [
        (
            path,
            b"{\"type\": \"post_message\",",
            "malformed JSON body: EOF while parsing",
        ),
        (path, b"", "malformed JSON body: EOF while parsing"),
        (
            path,
            br#"{"type": "shout"}"#,
            "malformed JSON body: unknown variant `shout`",
        ),
        (
            path,
            br#"{"type": "tag", "tag": "vip", "colour": "red"}"#,
            "malformed JSON body: unknown field `colour`",
        ),
        (
            path,
            br#"{"type": "transfer", "agent_id": "a", "team_id": "t"}"#,
            "invalid transfer: give either agent_id or team_id, not both",
        ),
        (
            "/v1/conversations/conv%201/commands",
            br#"{"type": "resolve"}"#,
            "invalid conversation_id: conversation id contains ' '",
        ),
        (
            "/v1/conversations",
            br#"{"customer_id": "cust-1", "channel": "pigeon"}"#,
            "malformed JSON body: unknown variant `pigeon`",
        ),
    ];
    for (path, body, expected) in cases {
        let answer = post(h.http, path, Some(BOSS), body).await;
        let (code, message) = answer.error();
        assert_eq!(
            (answer.status, code.as_str()),
            (400, "invalid_argument"),
            "{message}"
        );
        assert!(
            message.starts_with(expected),
            "expected {expected:?}, got {message:?}"
        );
    }
    assert!(h.fake.calls().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let h = Harness::start().await;
    let answer = post_json(h.http, "/v1/nothing", Some(BOSS), json!({})).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.error().0, "not_found");
    let answer = exchange(h.http, "GET /v1/conversations HTTP/1.1", b"").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.error().0, "method_not_allowed");
    h.stop().await;
}

#[tokio::test]
async fn callers_without_a_valid_token_are_unauthenticated() {
    let h = Harness::start().await;
    let path = "/v1/conversations/conv-1/commands";
    let body = message().to_string();
    for token in [None, Some("not-a-known-token-at-all")] {
        let answer = post(h.http, path, token, body.as_bytes()).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.error().0, "unauthenticated");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    let head = format!(
        "POST {path} HTTP/1.1\r\nauthorization: Basic Ym9zczpzZWNyZXQ=\r\ncontent-length: {}",
        body.len()
    );
    let answer = exchange(h.http, &head, body.as_bytes()).await;
    assert_eq!(
        (answer.status, answer.error().0.as_str()),
        (401, "unauthenticated")
    );
    assert!(h.fake.calls().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn only_services_act_on_behalf_of_others_within_their_tenants() {
    let h = Harness::start().await;
    let path = "/v1/conversations/conv-1/commands";
    let as_customer_of = |tenant: &str| {
        let mut body = message();
        body["on_behalf_of"] =
            json!({"tenant_id": tenant, "role": "customer", "subject": "cust-1"});
        body
    };
    let answer = post_json(h.http, path, Some(CRM), as_customer_of("acme")).await;
    assert_eq!(answer.status, 200);
    let answer = post_json(h.http, path, Some(EDGE), as_customer_of("globex")).await;
    assert_eq!(answer.status, 200);
    let principals: Vec<_> = h
        .fake
        .calls()
        .into_iter()
        .map(|call| match call {
            Call::Conversation { principal, .. } | Call::Agent { principal, .. } => principal,
        })
        .collect();
    assert_eq!(
        principals,
        [
            principal("acme", Role::Customer, "cust-1"),
            principal("globex", Role::Customer, "cust-1"),
        ]
    );
    for (token, tenant, expected) in [
        (
            CRM,
            "globex",
            "a service of tenant acme may not act on behalf of a principal of tenant globex",
        ),
        (
            BOSS,
            "acme",
            "a supervisor may not act on behalf of another principal",
        ),
    ] {
        let answer = post_json(h.http, path, Some(token), as_customer_of(tenant)).await;
        assert_eq!(answer.status, 403);
        assert_eq!(
            answer.error(),
            ("forbidden".to_owned(), expected.to_owned())
        );
    }
    assert_eq!(h.fake.calls().len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_too_large() {
    let h = Harness::start_with_limit(1024).await;
    let path = "/v1/conversations/conv-1/commands";

    // Announced too large: refused before a byte of the body is read (none is sent).
    let head =
        format!("POST {path} HTTP/1.1\r\nauthorization: Bearer {BOSS}\r\ncontent-length: 100000");
    let answer = exchange(h.http, &head, b"").await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.error(),
        (
            "too_large".to_owned(),
            "the request body is 100000 bytes, the limit is 1024".to_owned()
        )
    );

    // Streamed without a length: refused once the limit is passed.
    let mut body = message();
    body["body"] = json!("x".repeat(2000));
    let body = body.to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nauthorization: Bearer {BOSS}\r\ntransfer-encoding: chunked"
    );
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let answer = exchange(h.http, &head, chunked.as_bytes()).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.error().0, "too_large");
    assert!(h.fake.calls().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_command_under_way_finish() {
    let h = Harness::start().await;
    let (addr, fake) = (h.http, std::sync::Arc::clone(&h.fake));
    let under_way = tokio::spawn(async move {
        post_json(
            addr,
            "/v1/conversations/slow/commands",
            Some(BOSS),
            message(),
        )
        .await
    });
    fake.entered.notified().await;
    h.stop.send(()).unwrap();
    fake.release.notify_one();
    assert_eq!(under_way.await.unwrap().status, 200);
    h.server.await.unwrap().unwrap();
}
