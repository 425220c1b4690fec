//! The isolation matrix: every HTTP route of the query service × {own tenant, other tenant} ×
//! every role × {valid, expired, foreign-issuer token}, against one running `serve`, checked
//! against one expected table. Every command route of ingest's HTTP API and the WebSocket
//! handshake are checked to refuse the expired and the foreign token.
//!
//! A cell's outcome is what the caller learns of one conversation of tenant `acme`, opened by
//! the customer `cust-1`: it `Sees` it (2xx naming it, or its verdict, or its tenant's count
//! of it), is `Blind` to it (2xx without it, or the 404 of a missing one), is `Forbidden`
//! (403: the role may not) or `Refused` (401). The other tenant's principals carry the same
//! subjects (`cust-1` too): only the tenant tells them apart.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{Server, WsClient, request, try_request_text};
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{TokenIssuer, now_seconds};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Sees,
    Blind,
    Forbidden,
    Refused,
}
use Outcome::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tenant {
    Own,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Valid,
    Expired,
    ForeignIssuer,
}

const ROLES: [Role; 5] = [
    Role::Customer,
    Role::Agent,
    Role::Supervisor,
    Role::Auditor,
    Role::Service,
];

/// Every route of the query service's `http::router`, as written there, with the request
/// the matrix makes of it (`{c}` is the conversation).
const QUERY_ROUTES: [(&str, &str); 9] = [
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
];

/// Routes anyone may call, token or not.
const PUBLIC_ROUTES: [&str; 2] = ["/healthz", "/openapi.json"];

/// The one expected table.
fn expected(route: &str, role: Role, tenant: Tenant, token: TokenKind) -> Outcome {
    if token != TokenKind::Valid {
        return Refused;
    }
    let own = match route {
        "/v1/conversations" | "/v1/conversations/{id}" | "/v1/conversations/{id}/history" => Sees,
        "/v1/conversations/{id}/replay" | "/v1/conversations/{id}/verify" | "/v1/replay" => {
            match role {
                Role::Auditor | Role::Service => Sees,
                _ => Forbidden,
            }
        }
        "/v1/conversations/{id}/export" | "/v1/export" => match role {
            Role::Auditor | Role::Supervisor | Role::Service => Sees,
            _ => Forbidden,
        },
        "/v1/reports" => match role {
            Role::Supervisor | Role::Auditor | Role::Service => Sees,
            _ => Forbidden,
        },
        other => panic!("route {other} is not in the matrix"),
    };
    match (tenant, own) {
        // Another tenant's conversation reads exactly like a missing one.
        (Tenant::Other, Sees) => Blind,
        (_, outcome) => outcome,
    }
}

/// What in an answer shows the caller learned of the conversation: its id, or for the two
/// routes whose answers name none, its verdict and its tenant's count of it.
fn evidence(route: &str, conversation: &str) -> String {
    match route {
        "/v1/conversations/{id}/verify" => r#""verdict":"intact""#.to_owned(),
        "/v1/reports" => r#""conversations_opened":1"#.to_owned(),
        _ => conversation.to_owned(),
    }
}

fn observe(status: u16, body: &str, evidence: &str) -> Outcome {
    match status {
        200..=299 if body.contains(evidence) => Sees,
        200..=299 | 404 => Blind,
        403 => Forbidden,
        401 => Refused,
        other => panic!("unexpected status {other}: {body}"),
    }
}

fn subject(role: Role) -> &'static str {
    match role {
        Role::Customer => "cust-1",
        Role::Agent => "agent-1",
        Role::Supervisor => "sup-1",
        Role::Auditor => "audit-1",
        Role::Service => "svc-1",
    }
}

struct Tokens {
    own: TokenIssuer,
    foreign: TokenIssuer,
}

impl Tokens {
    fn mint(&self, role: Role, tenant: Tenant, kind: TokenKind) -> String {
        let tenant = TenantId::new(match tenant {
            Tenant::Own => "acme",
            Tenant::Other => "globex",
        })
        .unwrap();
        let principal = Principal::new(tenant, role, PrincipalId::new(subject(role)).unwrap());
        let (issuer, exp) = match kind {
            TokenKind::Valid => (&self.own, now_seconds() + 600),
            // Past the verifier's leeway.
            TokenKind::Expired => (&self.own, now_seconds() - 600),
            TokenKind::ForeignIssuer => (&self.foreign, now_seconds() + 600),
        };
        issuer.issue(&principal, exp).unwrap()
    }
}

/// The routes `http::router` declares, read from its source: a route added there and not
/// to the matrix fails this test.
fn declared_query_routes() -> BTreeSet<String> {
    let source = include_str!("../crates/query/src/http.rs");
    source
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_matrix_names_every_route_of_the_query_service() {
    let covered: BTreeSet<String> = QUERY_ROUTES
        .iter()
        .map(|(route, _)| route.to_string())
        .chain(PUBLIC_ROUTES.iter().map(|r| r.to_string()))
        .collect();
    assert_eq!(declared_query_routes(), covered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_allowed_cells_succeed() {
    let data = tempfile::tempdir().unwrap();
    // The matrix asks hundreds of questions a second: rate limits are not what it checks.
    let mut unlimited = Vec::new();
    for role in ["customer", "staff", "service"] {
        for field in ["per_second", "burst"] {
            unlimited.push("--set".to_owned());
            unlimited.push(format!("query.read_limits.{role}.{field}=1000000.0"));
        }
    }
    // A shared secret beside the instance's keys (made at start), so the test signs its tokens.
    let secret_file = data.path().join("secrets/jwt-hs256.key");
    unlimited.push("--set".to_owned());
    unlimited.push(format!("auth.jwt_secret_file={}", secret_file.display()));
    let unlimited: Vec<&str> = unlimited.iter().map(String::as_str).collect();
    let server = Server::start(data.path(), &unlimited);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let tokens = Tokens {
        own: TokenIssuer::hs256(secret.trim().as_bytes(), "switchboard", "switchboard"),
        foreign: TokenIssuer::hs256(&[0x5a; 32], "elsewhere", "switchboard"),
    };

    let customer = tokens.mint(Role::Customer, Tenant::Own, TokenKind::Valid);
    let (status, opened) = request(
        &server.http,
        "POST",
        "/v1/conversations",
        Some(&customer),
        r#"{"customer_id":"cust-1","channel":"web"}"#,
    );
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    let send = r#"{"type":"post_message","client_msg_id":"m1","body":"hello"}"#;
    let commands = format!("/v1/conversations/{conversation}/commands");
    let (status, body) = request(&server.http, "POST", &commands, Some(&customer), send);
    assert_eq!(status, 200, "{body}");
    // Wait for the projector: the summary is there once the owner can read it.
    let summary = format!("/v1/conversations/{conversation}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while request(&server.query, "GET", &summary, Some(&customer), "").0 != 200 {
        assert!(Instant::now() < deadline, "the conversation is projected");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut wrong = Vec::new();
    let mut cells = 0;
    for (route, path) in QUERY_ROUTES {
        let path = path.replace("{c}", &conversation);
        for role in ROLES {
            for tenant in [Tenant::Own, Tenant::Other] {
                for kind in [
                    TokenKind::Valid,
                    TokenKind::Expired,
                    TokenKind::ForeignIssuer,
                ] {
                    let token = tokens.mint(role, tenant, kind);
                    let (status, body) =
                        try_request_text(&server.query, "GET", &path, Some(&token), "")
                            .expect("the query service answers");
                    let got = observe(status, &body, &evidence(route, &conversation));
                    let want = expected(route, role, tenant, kind);
                    cells += 1;
                    if got != want {
                        wrong.push(format!(
                            "{route} {role:?} {tenant:?} {kind:?}: got {got:?}, expected {want:?} ({status})"
                        ));
                    }
                }
            }
        }
    }
    assert_eq!(cells, QUERY_ROUTES.len() * ROLES.len() * 2 * 3);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    for route in PUBLIC_ROUTES {
        assert_eq!(
            request(&server.query, "GET", route, None, "").0,
            200,
            "{route}"
        );
    }

    // Ingest's command routes and the edge's handshake refuse every token that is not valid.
    let ingest = [
        (
            "/v1/conversations".to_owned(),
            r#"{"customer_id":"cust-1","channel":"web"}"#,
        ),
        (commands.clone(), send),
        (
            "/v1/agents/agent-1/commands".to_owned(),
            r#"{"type":"set_status","status":"online"}"#,
        ),
    ];
    for role in ROLES {
        for tenant in [Tenant::Own, Tenant::Other] {
            for kind in [TokenKind::Expired, TokenKind::ForeignIssuer] {
                let token = tokens.mint(role, tenant, kind);
                for (path, body) in &ingest {
                    let (status, answer) = request(&server.http, "POST", path, Some(&token), body);
                    assert_eq!(
                        (status, answer["code"].as_str()),
                        (401, Some("unauthenticated")),
                        "{path} {role:?} {tenant:?} {kind:?}"
                    );
                }
                assert!(
                    WsClient::connect(&server.edge, &token).await.is_none(),
                    "the edge welcomes no {kind:?} token ({role:?} {tenant:?})"
                );
            }
            // Every valid role is welcomed; what it may do is decided per frame.
            let valid = tokens.mint(role, tenant, TokenKind::Valid);
            assert!(
                WsClient::connect(&server.edge, &valid).await.is_some(),
                "the edge welcomes a valid token ({role:?} {tenant:?})"
            );
        }
    }
}
