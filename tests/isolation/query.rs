//! The query service's cells, over HTTP and gRPC, on one conversation of `acme` opened by
//! `cust-1` (and assigned, so that it waits in no queue). A read `Sees` it when its answer
//! names it (its id, its verdict, or its tenant's count of it), is `Blind` to it with a 2xx
//! without it or a 404.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use switchboard_query::grpc::proto::{self, query_client::QueryClient};
use tonic::transport::Channel;

use super::support::{Server, request, try_request_text};
use super::{Outcome, ROLES, Tokens, Verdicts, cells, commands, table};
use switchboard_events::principal::Role;

/// Routes anyone may call, token or not.
pub const PUBLIC_ROUTES: [&str; 2] = ["/healthz", "/openapi.json"];

/// The request each route of the table is asked with (`{c}` is the conversation).
const REQUESTS: [(&str, &str); 10] = [
    ("/v1/conversations", "/v1/conversations?limit=50"),
    ("/v1/conversations/{id}", "/v1/conversations/{c}"),
    (
        "/v1/conversations/{id}/history",
        "/v1/conversations/{c}/history",
    ),
    (
        "/v1/conversations/{id}/replay",
        "/v1/conversations/{c}/replay",
    ),
    (
        "/v1/conversations/{id}/verify",
        "/v1/conversations/{c}/verify",
    ),
    (
        "/v1/conversations/{id}/export",
        "/v1/conversations/{c}/export",
    ),
    ("/v1/replay", "/v1/replay?from=0&to=9000000000000000"),
    ("/v1/export", "/v1/export?from=0&to=9000000000000000"),
    ("/v1/reports", "/v1/reports?from=2026-01-01&to=2026-12-31"),
    ("/v1/settings/replay", "/v1/settings/replay"),
];

const METHODS: [&str; 7] = [
    "History",
    "ListConversations",
    "Summary",
    "Report",
    "Replay",
    "Replay (tenant)",
    "Verify",
];

/// The methods of `query.proto`'s service, `Replay` once more for its tenant form.
pub fn grpc_methods() -> BTreeSet<String> {
    let mut methods: BTreeSet<String> =
        include_str!("../../schemas/proto/switchboard/query/v1/query.proto")
            .split("rpc ")
            .skip(1)
            .filter_map(|rest| rest.split('(').next())
            .map(|name| name.trim().to_owned())
            .collect();
    methods.insert("Replay (tenant)".to_owned());
    methods
}

pub async fn check(server: &Server, tokens: &Tokens, verdicts: &mut Verdicts) {
    let conversation = seed(server, tokens).await;
    check_reads(server, tokens, verdicts, &conversation).await;
    // Done with: `cust-1` waits in no queue with it when the opens come.
    commands::resolve(&commands::client(server).await, tokens, &conversation).await;
}

async fn check_reads(
    server: &Server,
    tokens: &Tokens,
    verdicts: &mut Verdicts,
    conversation: &str,
) {
    let conversation = conversation.to_owned();

    for cell in cells("query HTTP", &REQUESTS.map(|(route, _)| route)) {
        let path = REQUESTS
            .iter()
            .find(|(route, _)| *route == cell.op)
            .unwrap()
            .1
            .replace("{c}", &conversation);
        let token = tokens.mint(ROLES[cell.role], cell.tenant, cell.kind);
        let got = match try_request_text(&server.query, "GET", &path, Some(&token), "") {
            Some((status, body)) => observe(status, &body, &evidence(cell.op, &conversation)),
            None => Outcome::Other("no answer".to_owned()),
        };
        verdicts.record(table::QUERY, &cell, got);
    }
    for route in PUBLIC_ROUTES {
        assert_eq!(
            request(&server.query, "GET", route, None, "").0,
            200,
            "{route}"
        );
    }

    let channel = Channel::from_shared(format!("http://{}", server.query_grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for cell in cells("query gRPC", &METHODS) {
        let token = tokens.mint(ROLES[cell.role], cell.tenant, cell.kind);
        let got = grpc(
            QueryClient::new(channel.clone()),
            cell.op,
            &token,
            &conversation,
        )
        .await;
        verdicts.record(table::QUERY, &cell, got);
    }
}

/// `cust-1` opens a conversation and writes in it, a service assigns it; then it waits until
/// the read models have it.
async fn seed(server: &Server, tokens: &Tokens) -> String {
    let customer = tokens.own(Role::Customer);
    let (status, opened) = request(
        &server.http,
        "POST",
        "/v1/conversations",
        Some(&customer),
        r#"{"customer_id":"cust-1","channel":"web"}"#,
    );
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    let commands = format!("/v1/conversations/{conversation}/commands");
    let send = r#"{"type":"post_message","client_msg_id":"m1","body":"hello"}"#;
    let (status, body) = request(&server.http, "POST", &commands, Some(&customer), send);
    assert_eq!(status, 200, "{body}");
    let assign = r#"{"type":"assign","agent_id":"agent-1"}"#;
    let service = tokens.own(Role::Service);
    let (status, body) = request(&server.http, "POST", &commands, Some(&service), assign);
    assert_eq!(status, 200, "{body}");
    // The summary is there once the owner can read it.
    let summary = format!("/v1/conversations/{conversation}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(&server.query, "GET", &summary, Some(&customer), "").0 != 200 {
        assert!(Instant::now() < deadline, "the conversation is projected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conversation
}

/// What in an HTTP answer shows the caller learned of the conversation: its id, or for the
/// two routes whose answers name none, its verdict and its tenant's count of it.
fn evidence(route: &str, conversation: &str) -> String {
    match route {
        "/v1/conversations/{id}/verify" => r#""verdict":"intact""#.to_owned(),
        "/v1/reports" => r#""conversations_opened":1"#.to_owned(),
        _ => conversation.to_owned(),
    }
}

fn observe(status: u16, body: &str, evidence: &str) -> Outcome {
    match status {
        200..=299 if body.contains(evidence) => Outcome::Allowed,
        200..=299 | 404 => Outcome::Blind,
        403 => Outcome::Forbidden,
        401 => Outcome::Refused,
        other => Outcome::Other(format!("{other} {body}")),
    }
}

/// The answer of a gRPC call: `Allowed` when it shows the conversation.
pub fn status(status: &tonic::Status) -> Outcome {
    match status.code() {
        tonic::Code::NotFound => Outcome::Blind,
        tonic::Code::PermissionDenied => Outcome::Forbidden,
        tonic::Code::Unauthenticated => Outcome::Refused,
        code => Outcome::Other(format!("{code:?} {}", status.message())),
    }
}

fn sees(shown: bool) -> Outcome {
    if shown {
        Outcome::Allowed
    } else {
        Outcome::Blind
    }
}

async fn grpc(
    mut client: QueryClient<Channel>,
    method: &str,
    token: &str,
    conversation: &str,
) -> Outcome {
    let id = conversation.to_owned();
    let result = match method {
        "History" => client
            .history(commands::authorized(
                proto::HistoryRequest {
                    conversation_id: id,
                    limit: 50,
                    from: Some(proto::history_request::From::Oldest(true)),
                },
                token,
            ))
            .await
            .map(|page| {
                sees(
                    page.get_ref()
                        .events
                        .iter()
                        .any(|e| e.conversation_id == conversation),
                )
            }),
        "ListConversations" => client
            .list_conversations(commands::authorized(
                proto::ListRequest {
                    limit: 50,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|page| {
                sees(
                    page.get_ref()
                        .conversations
                        .iter()
                        .any(|c| c.conversation_id == conversation),
                )
            }),
        "Summary" => client
            .summary(commands::authorized(
                proto::SummaryRequest {
                    conversation_id: id,
                },
                token,
            ))
            .await
            .map(|summary| sees(summary.get_ref().conversation_id == conversation)),
        "Report" => {
            let today = (switchboard_events::token::now_seconds() / 86_400) as i32;
            client
                .report(commands::authorized(
                    proto::ReportRequest {
                        agent_id: String::new(),
                        from_day: today - 1,
                        to_day: today + 1,
                    },
                    token,
                ))
                .await
                .map(|reply| {
                    let opened: u64 = reply
                        .get_ref()
                        .days
                        .iter()
                        .map(|d| d.conversations_opened)
                        .sum();
                    sees(opened == 1)
                })
        }
        "Replay" | "Replay (tenant)" => {
            let request = if method == "Replay" {
                proto::ReplayRequest {
                    conversation_id: id,
                    ..Default::default()
                }
            } else {
                proto::ReplayRequest {
                    conversation_id: String::new(),
                    from_micros: 0,
                    to_micros: 9_000_000_000_000_000,
                }
            };
            match client.replay(commands::authorized(request, token)).await {
                Ok(stream) => {
                    let mut stream = stream.into_inner();
                    let mut shown = false;
                    loop {
                        match stream.message().await {
                            Ok(Some(event)) => shown |= event.conversation_id == conversation,
                            Ok(None) => break Ok(sees(shown)),
                            Err(refused) => break Err(refused),
                        }
                    }
                }
                Err(refused) => Err(refused),
            }
        }
        "Verify" => client
            .verify(commands::authorized(
                proto::VerifyRequest {
                    conversation_id: id,
                },
                token,
            ))
            .await
            .map(|verdict| sees(verdict.get_ref().intact && verdict.get_ref().events > 0)),
        other => panic!("{other} is no method of the matrix"),
    };
    result.unwrap_or_else(|refused| status(&refused))
}
