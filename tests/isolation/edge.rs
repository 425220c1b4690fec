//! The edge's cells: the WebSocket handshake and every client frame of `docs/protocol.md`, each
//! (frame, role) on sessions of its own and a conversation of its own.
//!
//! With a valid token a cell opens a session with it and sends the frame; with an expired or
//! foreign one, the token is in the handshake (`handshake`), a fresh token for a session of
//! the same principal (`auth`), or the first frame of a session that then sends the frame at
//! once (every other frame): the frame must never be answered as if authenticated.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use super::support::{Server, WsClient};
use super::{Cell, Outcome, ROLES, TokenKind, Tokens, Verdicts, cells, commands, table};

pub use super::commands::Part;

/// The client frame types of `docs/protocol.md`'s table.
pub fn client_frames() -> BTreeSet<String> {
    let protocol = include_str!("../../docs/protocol.md");
    let table = protocol
        .split("### Client → server")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .nth(1)
        .unwrap();
    table
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect()
}

pub async fn check(server: &Server, tokens: &Tokens, verdicts: &mut Verdicts, part: Part) {
    let ops: Vec<&'static str> = table::FRAMES
        .iter()
        .map(|row| row.0)
        .filter(|op| Part::of(op) == part)
        .collect();
    let client = commands::client(server).await;
    // One task per (frame, role), each on its own conversation: refusals of a subscribe come
    // after the history wait, so they are waited for side by side.
    let all = cells("edge", &ops);
    let groups = all
        .chunks(super::TENANTS.len() * super::KINDS.len())
        .map(|group| {
            let client = client.clone();
            async move {
                let first = &group[0];
                let id = format!("iso-ws-{}-{:?}", first.op, ROLES[first.role]);
                let fixture = commands::lay(&client, tokens, id, first.op).await;
                let mut outcomes = Vec::new();
                for cell in group {
                    outcomes.push((cell.clone(), ask(server, tokens, cell, &fixture).await));
                }
                outcomes
            }
        });
    for (cell, got) in join_all(groups).await.into_iter().flatten() {
        verdicts.record(table::FRAMES, &cell, got);
    }
}

async fn ask(
    server: &Server,
    tokens: &Tokens,
    cell: &Cell,
    fixture: &commands::Fixture,
) -> Outcome {
    let role = ROLES[cell.role];
    let token = tokens.mint(role, cell.tenant, cell.kind);
    if cell.op == "handshake" {
        return match WsClient::connect(&server.edge, &token).await {
            Some(_) => Outcome::Allowed,
            None => Outcome::Refused,
        };
    }
    let valid = tokens.mint(role, cell.tenant, TokenKind::Valid);
    if cell.op == "auth" {
        let Some(mut session) = WsClient::connect(&server.edge, &valid).await else {
            return Outcome::Other("no session for a valid token".to_owned());
        };
        session
            .send(json!({"type": "auth", "ref": "f", "token": token}))
            .await;
        return outcome(answer(&mut session, "f").await);
    }
    let frame = frame(cell, fixture);
    if cell.kind != TokenKind::Valid {
        let stream = tokio::net::TcpStream::connect(&server.edge).await.unwrap();
        let Some(mut session) = WsClient::handshake(stream, &server.edge, None).await else {
            return Outcome::Other("no handshake without a token".to_owned());
        };
        session
            .send(json!({"type": "auth", "v": 1, "token": token}))
            .await;
        session.send(frame).await;
        let (frames, _) = tokio::time::timeout(Duration::from_secs(15), session.until_closed())
            .await
            .unwrap_or_default();
        return match frames.iter().find(|f| f["ref"] == "f") {
            Some(answer) => outcome(Some(answer.clone())),
            None if frames.iter().any(|f| f["code"] == "unauthenticated") => Outcome::Refused,
            None => Outcome::Other(format!("{frames:?}")),
        };
    }
    let Some(mut session) = WsClient::connect(&server.edge, &valid).await else {
        return Outcome::Other("no session for a valid token".to_owned());
    };
    let conversation = &fixture.conversation;
    if matches!(cell.op, "unsubscribe" | "typing") {
        // Subscribed first, as far as the role may.
        session
            .send(
                json!({"type": "subscribe", "ref": "s", "conversation_id": conversation,
                         "since_seq": 0}),
            )
            .await;
        answer(&mut session, "s").await;
    }
    session.send(frame).await;
    if cell.op == "typing" {
        // Typing has no answer but a refusal: a pong after it says there was none.
        session.send(json!({"type": "ping", "ref": "p"})).await;
        return loop {
            match next_answer(&mut session).await {
                Some(f) if f["ref"] == "f" => break outcome(Some(f)),
                Some(f) if f["ref"] == "p" => break Outcome::Allowed,
                Some(_) => {}
                None => break outcome(None),
            }
        };
    }
    outcome(answer(&mut session, "f").await)
}

/// The frame a cell sends, with `ref` `f`.
fn frame(cell: &Cell, fixture: &commands::Fixture) -> Value {
    let c = &fixture.conversation;
    match cell.op {
        "open" => json!({"type": "open", "ref": "f"}),
        "subscribe" => json!({"type": "subscribe", "ref": "f", "conversation_id": c,
                              "since_seq": 0}),
        "unsubscribe" => json!({"type": "unsubscribe", "ref": "f", "conversation_id": c}),
        "send" => json!({"type": "send", "ref": "f", "conversation_id": c,
                         "client_msg_id": commands::unique(cell), "body": "hello"}),
        "read" => json!({"type": "read", "ref": "f", "conversation_id": c, "up_to_seq": 1}),
        "typing" => json!({"type": "typing", "ref": "f", "conversation_id": c}),
        "status" => json!({"type": "status", "ref": "f", "status": "online"}),
        "take" => json!({"type": "take", "ref": "f", "conversation_id": c}),
        "resolve" => json!({"type": "resolve", "ref": "f", "conversation_id": c}),
        "ping" => json!({"type": "ping", "ref": "f"}),
        other => panic!("{other} is no frame of the matrix"),
    }
}

/// The next frame that answers one of the client's (it has a `ref`), skipping events,
/// queue positions, presence and typing of others.
async fn next_answer(session: &mut WsClient) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), session.next())
            .await
            .ok()??;
        if frame.get("ref").is_some() {
            return Some(frame);
        }
    }
}

/// The answer to the frame with `reference`.
async fn answer(session: &mut WsClient, reference: &str) -> Option<Value> {
    loop {
        let frame = next_answer(session).await?;
        if frame["ref"] == reference {
            return Some(frame);
        }
    }
}

fn outcome(answer: Option<Value>) -> Outcome {
    let Some(answer) = answer else {
        return Outcome::Other("no answer".to_owned());
    };
    match (answer["type"].as_str(), answer["code"].as_str()) {
        (Some("ack" | "subscribed" | "unsubscribed" | "pong" | "reauthenticated"), _) => {
            Outcome::Allowed
        }
        (Some("error"), Some("not_found" | "not_subscribed")) => Outcome::Blind,
        (Some("error"), Some("forbidden")) => Outcome::Forbidden,
        (Some("error"), Some("unauthenticated")) => Outcome::Refused,
        _ => Outcome::Other(answer.to_string()),
    }
}
