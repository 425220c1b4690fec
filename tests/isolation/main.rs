//! The isolation matrix: every operation of every public surface — the query service's HTTP
//! routes and gRPC methods, ingest's gRPC commands and HTTP routes, the edge's WebSocket
//! handshake and client frames — × {own tenant, other tenant} × every role × {valid, expired,
//! foreign-issuer token}, against one running `serve`, each cell compared with the one
//! expected table of `table.rs`. A cell that differs is reported with its coordinates.
//!
//! The other tenant's principals carry the same subjects (`cust-1`, `agent-1`, ...): only the
//! tenant tells them apart. Operations that change a conversation act each on a conversation
//! of their own, so that no cell's outcome depends on another's.

#[path = "../support/mod.rs"]
mod support;

mod commands;
mod edge;
mod query;
mod table;

use std::collections::BTreeSet;
use std::fmt;

use commands::Part;
use support::Server;
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{TokenIssuer, now_seconds};

/// What a caller got: see `table.rs`. `Other` is anything the table never expects (a 500, a
/// `failed_precondition`, no answer), with what it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Blind,
    Forbidden,
    Refused,
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tenant {
    Own,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Valid,
    Expired,
    ForeignIssuer,
}

pub const ROLES: [Role; 5] = [
    Role::Customer,
    Role::Agent,
    Role::Supervisor,
    Role::Auditor,
    Role::Service,
];

pub const TENANTS: [Tenant; 2] = [Tenant::Own, Tenant::Other];

/// The own tenant's cells with a valid token come last for each operation: they may change
/// the conversation the others were asked about.
pub const KINDS: [TokenKind; 3] = [
    TokenKind::Expired,
    TokenKind::ForeignIssuer,
    TokenKind::Valid,
];

pub fn subject(role: Role) -> &'static str {
    match role {
        Role::Customer => "cust-1",
        Role::Agent => "agent-1",
        Role::Supervisor => "sup-1",
        Role::Auditor => "audit-1",
        Role::Service => "svc-1",
    }
}

pub fn tenant_id(tenant: Tenant) -> &'static str {
    match tenant {
        Tenant::Own => "acme",
        Tenant::Other => "globex",
    }
}

struct Tokens {
    own: TokenIssuer,
    foreign: TokenIssuer,
}

impl Tokens {
    pub fn mint(&self, role: Role, tenant: Tenant, kind: TokenKind) -> String {
        let tenant = TenantId::new(tenant_id(tenant)).unwrap();
        let principal = Principal::new(tenant, role, PrincipalId::new(subject(role)).unwrap());
        let (issuer, exp) = match kind {
            TokenKind::Valid => (&self.own, now_seconds() + 600),
            // Past the verifier's leeway.
            TokenKind::Expired => (&self.own, now_seconds() - 600),
            TokenKind::ForeignIssuer => (&self.foreign, now_seconds() + 600),
        };
        issuer.issue(&principal, exp).unwrap()
    }

    /// A valid token of the own tenant.
    pub fn own(&self, role: Role) -> String {
        self.mint(role, Tenant::Own, TokenKind::Valid)
    }
}

/// One cell's coordinates.
#[derive(Clone, Debug)]
pub struct Cell {
    pub surface: &'static str,
    pub op: &'static str,
    pub role: usize,
    pub tenant: Tenant,
    pub kind: TokenKind,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {:?} {:?} {:?}",
            self.surface, self.op, ROLES[self.role], self.tenant, self.kind
        )
    }
}

/// Every cell of `ops`, in the order they are asked: per operation and role, the own tenant's
/// valid token last.
pub fn cells(surface: &'static str, ops: &[&'static str]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &op in ops {
        for role in 0..ROLES.len() {
            for tenant in [Tenant::Other, Tenant::Own] {
                for kind in KINDS {
                    cells.push(Cell {
                        surface,
                        op,
                        role,
                        tenant,
                        kind,
                    });
                }
            }
        }
    }
    cells
}

/// The outcomes asked so far, and those that differ from the table.
#[derive(Debug, Default)]
pub struct Verdicts {
    pub asked: usize,
    pub wrong: Vec<String>,
}

impl Verdicts {
    pub fn record(&mut self, table: &'static [table::Row], cell: &Cell, got: Outcome) {
        let want = table::expected(table, cell.op, cell.role, cell.tenant, cell.kind);
        self.asked += 1;
        if got != want {
            self.wrong
                .push(format!("{cell}: got {got:?}, expected {want:?}"));
        }
    }
}

fn names(table: &[table::Row]) -> BTreeSet<String> {
    table.iter().map(|row| row.0.to_owned()).collect()
}

/// What the sources declare: a route, method, command or frame added there and not to the
/// table fails here.
#[test]
fn the_table_names_every_route_method_command_and_frame() {
    let routes: BTreeSet<String> = include_str!("../../crates/query/src/http.rs")
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|route| !query::PUBLIC_ROUTES.contains(route))
        .map(str::to_owned)
        .collect();
    let methods = query::grpc_methods();
    let table = names(table::QUERY);
    assert_eq!(
        table,
        routes.union(&methods).cloned().collect(),
        "the query table names every HTTP route and gRPC method"
    );
    assert_eq!(
        commands::wire_commands(),
        table::COMMANDS
            .iter()
            .map(|row| commands::wire(row.0).to_owned())
            .collect(),
        "the command table names every command of ingest.proto"
    );
    let mut frames = edge::client_frames();
    frames.insert("handshake".to_owned());
    assert_eq!(
        frames,
        names(table::FRAMES),
        "the frame table names every client frame of docs/protocol.md"
    );
}

#[test]
fn the_docs_mirror_the_table() {
    let docs = include_str!("../../docs/reliability.md");
    for (name, rows) in [
        ("query", table::QUERY),
        ("commands", table::COMMANDS),
        ("frames", table::FRAMES),
    ] {
        let markdown = table::markdown(rows);
        assert!(
            docs.contains(&markdown),
            "docs/reliability.md has the {name} table as it is in the test:\n{markdown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_allowed_cells_succeed() {
    let data = tempfile::tempdir().unwrap();
    // The matrix asks thousands of questions in seconds: rate limits are not what it checks.
    let mut flags = Vec::new();
    for (section, roles) in [
        ("query.read_limits", ["customer", "staff", "service"]),
        ("ingest.admission", ["customer", "staff", "service"]),
    ] {
        for role in roles {
            for field in ["per_second", "burst"] {
                flags.push("--set".to_owned());
                flags.push(format!("{section}.{role}.{field}=1000000.0"));
            }
        }
    }
    // A shared secret beside the instance's keys (made at start), so the test signs its tokens.
    let secret_file = data.path().join("secrets/jwt-hs256.key");
    flags.push("--set".to_owned());
    flags.push(format!("auth.jwt_secret_file={}", secret_file.display()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(data.path(), &flags);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    let tokens = Tokens {
        own: TokenIssuer::hs256(secret.trim().as_bytes(), "switchboard", "switchboard"),
        foreign: TokenIssuer::hs256(&[0x5a; 32], "elsewhere", "switchboard"),
    };

    commands::agent_online(&commands::client(&server).await, &tokens).await;
    let mut verdicts = Verdicts::default();
    // The reads first, while the own tenant has exactly one conversation (the reports count it).
    query::check(&server, &tokens, &mut verdicts).await;
    for part in [Part::Opens, Part::Rest, Part::Erasures, Part::Tenants] {
        commands::check(&server, &tokens, &mut verdicts, part).await;
        edge::check(&server, &tokens, &mut verdicts, part).await;
    }

    let per_op = ROLES.len() * TENANTS.len() * KINDS.len();
    assert_eq!(
        verdicts.asked,
        per_op * (table::QUERY.len() + 2 * table::COMMANDS.len() + table::FRAMES.len()),
        "every cell of the table was asked"
    );
    assert!(
        verdicts.wrong.is_empty(),
        "{} of {} cells differ from the table:\n{}",
        verdicts.wrong.len(),
        verdicts.asked,
        verdicts.wrong.join("\n")
    );
}
