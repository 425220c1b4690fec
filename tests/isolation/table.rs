//! The one expected table, written from the rules (`crates/ingest/src/conversation/rules.md`,
//! `crates/query/src/access.rs`, `docs/protocol.md`) and mirrored in `docs/reliability.md`.
//!
//! Each row names an operation and what each role gets with a valid token, in the columns of
//! [`ROLES`](super::ROLES) — customer, agent, supervisor, auditor, service — first of the own
//! tenant's conversation, then as a principal of the other tenant. An expired or
//! foreign-issuer token gets `R` (refused) everywhere.
//!
//! `Y` the operation succeeds (a read shows the conversation), `B` blind (the conversation is
//! not there for the caller: 404, `NOT_FOUND`, `not_found`, or a 2xx without it), `F` forbidden
//! (the role may not, whichever conversation it names), `R` refused (401, `UNAUTHENTICATED`,
//! `unauthenticated`).

use super::{Outcome, Tenant, TokenKind};

const Y: Outcome = Outcome::Allowed;
const B: Outcome = Outcome::Blind;
const F: Outcome = Outcome::Forbidden;

/// One operation: what each role gets in the own tenant and as the other tenant.
pub type Row = (&'static str, [Outcome; 5], [Outcome; 5]);

/// The query service, HTTP routes and gRPC methods, on one conversation of the own tenant
/// opened by `cust-1`. Customers read their own conversations; reports are for supervisors,
/// auditors and services; export adds supervisors to replay and verify, which are the
/// auditors' and services'. Another tenant's principals see nothing of it. The settings
/// replay is the auditors' and names no conversation: blind to it in either tenant.
#[rustfmt::skip]
pub const QUERY: &[Row] = &[
    // (operation, own tenant [C, A, S, U, V], other tenant [C, A, S, U, V])
    ("/v1/conversations",              [Y, Y, Y, Y, Y],   [B, B, B, B, B]),
    ("/v1/conversations/{id}",         [Y, Y, Y, Y, Y],   [B, B, B, B, B]),
    ("/v1/conversations/{id}/history", [Y, Y, Y, Y, Y],   [B, B, B, B, B]),
    ("/v1/conversations/{id}/replay",  [F, F, F, Y, Y],   [F, F, F, B, B]),
    ("/v1/conversations/{id}/verify",  [F, F, F, Y, Y],   [F, F, F, B, B]),
    ("/v1/conversations/{id}/export",  [F, F, Y, Y, Y],   [F, F, B, B, B]),
    ("/v1/replay",                     [F, F, F, Y, Y],   [F, F, F, B, B]),
    ("/v1/export",                     [F, F, Y, Y, Y],   [F, F, B, B, B]),
    ("/v1/reports",                    [F, F, Y, Y, Y],   [F, F, B, B, B]),
    ("/v1/settings/replay",            [F, F, F, B, B],   [F, F, F, B, B]),
    ("History",                        [Y, Y, Y, Y, Y],   [B, B, B, B, B]),
    ("ListConversations",              [Y, Y, Y, Y, Y],   [B, B, B, B, B]),
    ("Summary",                        [Y, Y, Y, Y, Y],   [B, B, B, B, B]),
    ("Report",                         [F, F, Y, Y, Y],   [F, F, B, B, B]),
    ("Replay",                         [F, F, F, Y, Y],   [F, F, F, B, B]),
    ("Replay (tenant)",                [F, F, F, Y, Y],   [F, F, F, B, B]),
    ("Verify",                         [F, F, F, Y, Y],   [F, F, F, B, B]),
];

/// The commands of ingest (gRPC `Execute`/`ExecuteAgent`, and the HTTP routes), each on a
/// conversation of its own: `cust-1`'s, assigned to `agent-1` (unassigned for `open`, which
/// names a fresh id; resolved for `reopen` and `rate`), holding a message of `cust-1`'s.
///
/// Another tenant's conversation does not exist for the caller (`B`); a refusal that does not
/// depend on the conversation — auditors never write, only services act on behalf of others
/// and then only within their tenant — reads the same for any id (`F`). `open` names the own
/// tenant's id from the other tenant: ids are scoped by tenant, so it opens a fresh
/// conversation there. An agent id names an agent of the caller's own tenant, so the agent
/// commands act on the other tenant's own `agent-1`, and `configure_tenant` (a change of the
/// settings; tenant admins and the operator only) on the caller's own tenant, as the gRPC
/// command always does.
#[rustfmt::skip]
pub const COMMANDS: &[Row] = &[
    // (operation, own tenant [C, A, S, U, V], other tenant [C, A, S, U, V])
    ("open",                       [Y, Y, Y, F, Y],   [Y, Y, Y, F, Y]),
    ("post_message",               [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("post_private_note",          [F, Y, Y, F, Y],   [B, B, B, F, B]),
    ("post_on_behalf_of_customer", [F, F, F, F, Y],   [F, F, F, F, F]),
    ("edit_message",               [Y, F, F, F, F],   [B, B, B, F, B]),
    ("redact_message",             [Y, F, Y, F, Y],   [B, B, B, F, B]),
    ("mark_read",                  [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("assign",                     [F, F, Y, F, Y],   [B, B, B, F, B]),
    ("transfer",                   [F, Y, Y, F, Y],   [B, B, B, F, B]),
    ("queue",                      [F, F, Y, F, Y],   [B, B, B, F, B]),
    ("tag",                        [F, Y, Y, F, Y],   [B, B, B, F, B]),
    ("untag",                      [F, Y, Y, F, Y],   [B, B, B, F, B]),
    ("set_priority",               [F, Y, Y, F, Y],   [B, B, B, F, B]),
    ("snooze",                     [F, Y, Y, F, Y],   [B, B, B, F, B]),
    ("resolve",                    [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("reopen",                     [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("rate",                       [Y, F, F, F, F],   [B, B, B, F, B]),
    ("erase_customer",             [F, F, Y, F, Y],   [B, B, B, F, B]),
    ("set_status",                 [F, Y, Y, F, Y],   [F, Y, Y, F, Y]),
    ("set_capacity",               [F, Y, Y, F, Y],   [F, Y, Y, F, Y]),
    ("set_skills",                 [F, Y, Y, F, Y],   [F, Y, Y, F, Y]),
    ("configure_tenant",           [F, F, Y, F, Y],   [F, F, Y, F, Y]),
];

/// The edge's client frames, each on a session of its own and a conversation of its own as
/// for [`COMMANDS`] (unassigned for `take`). `handshake` is the token in the WebSocket
/// handshake (`welcome` or not); `auth` a fresh token for the session. The frames that
/// carry a command answer as the command does; the edge adds its own rules: a customer
/// opens, an agent takes and sets its status, the conversation's customer and the tenant's
/// staff (agents, supervisors, auditors) subscribe, subscribers type. Another tenant's
/// conversation is not found; a frame the role may never send is forbidden for any id.
#[rustfmt::skip]
pub const FRAMES: &[Row] = &[
    // (operation, own tenant [C, A, S, U, V], other tenant [C, A, S, U, V])
    ("handshake",   [Y, Y, Y, Y, Y],   [Y, Y, Y, Y, Y]),
    ("auth",        [Y, Y, Y, Y, Y],   [Y, Y, Y, Y, Y]),
    ("open",        [Y, F, F, F, F],   [Y, F, F, F, F]),
    ("subscribe",   [Y, Y, Y, Y, B],   [B, B, B, B, B]),
    ("unsubscribe", [Y, Y, Y, Y, B],   [B, B, B, B, B]),
    ("send",        [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("read",        [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("typing",      [Y, Y, Y, Y, B],   [B, B, B, B, B]),
    ("status",      [F, Y, F, F, F],   [F, Y, F, F, F]),
    ("take",        [F, Y, F, F, F],   [F, B, F, F, F]),
    ("resolve",     [Y, Y, Y, F, Y],   [B, B, B, F, B]),
    ("ping",        [Y, Y, Y, Y, Y],   [Y, Y, Y, Y, Y]),
];

/// What `role` (its index in [`ROLES`](super::ROLES)) gets for `op` of `table`.
pub fn expected(
    table: &'static [Row],
    op: &str,
    role: usize,
    tenant: Tenant,
    token: TokenKind,
) -> Outcome {
    if token != TokenKind::Valid {
        return Outcome::Refused;
    }
    let (_, own, other) = table
        .iter()
        .find(|row| row.0 == op)
        .unwrap_or_else(|| panic!("{op} is not in the table"));
    match tenant {
        Tenant::Own => own[role].clone(),
        Tenant::Other => other[role].clone(),
    }
}

/// `table` as the Markdown of `docs/reliability.md`.
pub fn markdown(table: &[Row]) -> String {
    let letter = |outcome: &Outcome| match outcome {
        Outcome::Allowed => "Y",
        Outcome::Blind => "B",
        Outcome::Forbidden => "F",
        Outcome::Refused => "R",
        Outcome::Other(_) => "?",
    };
    let mut out = String::from(
        "| operation | customer | agent | supervisor | auditor | service | other tenant (C A S U V) |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (op, own, other) in table {
        let own: Vec<&str> = own.iter().map(letter).collect();
        let other: Vec<&str> = other.iter().map(letter).collect();
        out.push_str(&format!(
            "| `{op}` | {} | {} |\n",
            own.join(" | "),
            other.join(" ")
        ));
    }
    out
}
