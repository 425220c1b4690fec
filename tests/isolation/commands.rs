//! Ingest's cells: every command over gRPC (`Execute`, `ExecuteAgent`) and over the HTTP
//! routes, each (command, role) on a conversation of its own laid by `acme`'s service.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use switchboard_events::principal::Role;
use switchboard_events::tenant::TENANT_STREAM;
use switchboard_ingest::api::proto::{
    self, agent_command, conversation_command as command, ingest_client::IngestClient,
};
use tonic::transport::Channel;

use super::support::{Server, try_request_text};
use super::{Cell, Outcome, ROLES, Tenant, Tokens, Verdicts, cells, query, table, tenant_id};

/// The parts of the matrix, in the order they run (see `main.rs`): the opens, before the
/// fixtures give `cust-1` more conversations than a customer may hold open; the erasures, after
/// everything else needs `cust-1`'s data key; the rest in between; the tenants' settings last,
/// once both tenants are created, so that no settings but the defaults govern the rest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Part {
    Opens,
    Rest,
    Erasures,
    Tenants,
}

impl Part {
    pub fn of(op: &str) -> Self {
        match op {
            "open" => Part::Opens,
            "erase_customer" => Part::Erasures,
            "configure_tenant" => Part::Tenants,
            _ => Part::Rest,
        }
    }
}

/// The command of `ingest.proto` an operation of the table sends.
pub fn wire(op: &str) -> &str {
    match op {
        "post_private_note" | "post_on_behalf_of_customer" => "post_message",
        other => other,
    }
}

/// The commands `ingest.proto` declares: the fields of each `oneof command`.
pub fn wire_commands() -> BTreeSet<String> {
    include_str!("../../schemas/proto/switchboard/ingest/v1/ingest.proto")
        .split("oneof command {")
        .skip(1)
        .flat_map(|rest| {
            rest.split('}')
                .next()
                .unwrap()
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .filter_map(|line| line.split_whitespace().nth(1))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `message` with the bearer token in its metadata.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A conversation laid for one (command, role): its id, and the id of `cust-1`'s message.
pub struct Fixture {
    pub conversation: String,
    pub message: String,
}

/// A client of the server's ingest gRPC listener.
pub async fn client(server: &Server) -> IngestClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    IngestClient::new(channel)
}

pub async fn check(server: &Server, tokens: &Tokens, verdicts: &mut Verdicts, part: Part) {
    let ops: Vec<&'static str> = table::COMMANDS
        .iter()
        .map(|row| row.0)
        .filter(|op| Part::of(op) == part)
        .collect();
    let client = client(server).await;
    if part == Part::Tenants {
        create_tenants(&client, tokens).await;
    }
    let surfaces = [("ingest gRPC", "grpc"), ("ingest HTTP", "http")];
    // Every conversation first: an erasure of `cust-1` leaves no key to write theirs with.
    let mut fixtures = HashMap::new();
    for (surface, short) in surfaces {
        for &op in &ops {
            for role in ROLES {
                let id = format!("iso-{short}-{op}-{role:?}");
                fixtures.insert((surface, op, role), lay(&client, tokens, id, op).await);
            }
        }
    }
    for (surface, _) in surfaces {
        for cell in cells(surface, &ops) {
            let role = ROLES[cell.role];
            let fixture = &fixtures[&(surface, cell.op, role)];
            let token = tokens.mint(role, cell.tenant, cell.kind);
            let got = if surface == "ingest gRPC" {
                grpc(client.clone(), &cell, fixture, &token).await
            } else {
                http(server, &cell, fixture, &token)
            };
            verdicts.record(table::COMMANDS, &cell, got);
        }
    }
    if part == Part::Opens {
        // `cust-1` waits in no queue with what it opened: the edge's open is still to come.
        for (_, short) in surfaces {
            let id = format!("iso-{short}-open-{:?}", Role::Customer);
            resolve(&client, tokens, &id).await;
        }
    }
}

/// Resolves `id` as `acme`'s service.
pub async fn resolve(client: &IngestClient<Channel>, tokens: &Tokens, id: &str) {
    let resolve = proto::ConversationCommand {
        conversation_id: id.to_owned(),
        command: Some(command::Command::Resolve(proto::Resolve {})),
        ..Default::default()
    };
    let service = tokens.own(Role::Service);
    client
        .clone()
        .execute(authorized(resolve, &service))
        .await
        .unwrap_or_else(|refused| panic!("resolving {id}: {refused}"));
}

/// Both tenants exist, each created by its own service with default settings.
async fn create_tenants(client: &IngestClient<Channel>, tokens: &Tokens) {
    for tenant in super::TENANTS {
        let create = proto::AgentCommand {
            agent_id: TENANT_STREAM.to_owned(),
            command: Some(agent_command::Command::ConfigureTenant(
                proto::ConfigureTenant {
                    create: true,
                    patch_json: json!({
                        "name": tenant_id(tenant),
                        "widget_key": format!("wk_{}", tenant_id(tenant)),
                    })
                    .to_string(),
                },
            )),
            ..Default::default()
        };
        let service = tokens.mint(Role::Service, tenant, super::TokenKind::Valid);
        client
            .clone()
            .execute_agent(authorized(create, &service))
            .await
            .unwrap_or_else(|refused| panic!("creating {}: {refused}", tenant_id(tenant)));
    }
}

/// `agent-1` comes online, so that the router leaves it the conversations it is given (it
/// would queue those of an offline agent again).
pub async fn agent_online(client: &IngestClient<Channel>, tokens: &Tokens) {
    let online = proto::AgentCommand {
        agent_id: "agent-1".to_owned(),
        command: Some(agent_command::Command::SetStatus(
            proto::AgentStatus::Online.into(),
        )),
        ..Default::default()
    };
    client
        .clone()
        .execute_agent(authorized(online, &tokens.own(Role::Agent)))
        .await
        .expect("agent-1 comes online");
}

/// The conversation `op` acts on: none yet for `open` (and the frames that name none), else
/// `cust-1`'s, with a message of `cust-1`'s, assigned to `agent-1` (but for `take`), and
/// resolved for `reopen` and `rate`.
pub async fn lay(client: &IngestClient<Channel>, tokens: &Tokens, id: String, op: &str) -> Fixture {
    if matches!(
        op,
        "open" | "handshake" | "auth" | "status" | "ping" | "configure_tenant"
    ) {
        return Fixture {
            conversation: id,
            message: String::new(),
        };
    }
    let service = tokens.own(Role::Service);
    let customer = tokens.own(Role::Customer);
    let on = |c: command::Command| proto::ConversationCommand {
        conversation_id: id.clone(),
        command: Some(c),
        ..Default::default()
    };
    let mut steps = vec![
        (
            &service,
            on(command::Command::Open(proto::Open {
                customer_id: "cust-1".to_owned(),
                channel: proto::Channel::Web.into(),
                ..Default::default()
            })),
        ),
        (
            &customer,
            on(command::Command::PostMessage(proto::PostMessage {
                client_msg_id: "fixture".to_owned(),
                body: "hello".to_owned(),
                ..Default::default()
            })),
        ),
    ];
    if op != "take" {
        let assign = command::Command::Assign(proto::Assign {
            agent_id: "agent-1".to_owned(),
            policy: None,
        });
        steps.push((&service, on(assign)));
    }
    if matches!(op, "reopen" | "rate") {
        steps.push((&service, on(command::Command::Resolve(proto::Resolve {}))));
    }
    let mut message = String::new();
    for (token, step) in steps {
        let ack = client
            .clone()
            .execute(authorized(step, token))
            .await
            .unwrap_or_else(|refused| panic!("laying {id}: {refused}"));
        if !ack.get_ref().message_id.is_empty() {
            message = ack.get_ref().message_id.clone();
        }
    }
    Fixture {
        conversation: id,
        message,
    }
}

/// A unique `client_msg_id` for the cell, so no send is a retry of another.
pub fn unique(cell: &Cell) -> String {
    format!("{:?}-{:?}-{:?}", ROLES[cell.role], cell.tenant, cell.kind)
}

/// The customer an open names: the caller, or for staff and services another customer, so
/// that `cust-1`'s own opens stay within a customer's caps.
fn opens_for(cell: &Cell) -> &'static str {
    if ROLES[cell.role] == Role::Customer {
        "cust-1"
    } else {
        "cust-2"
    }
}

fn in_an_hour() -> i64 {
    (switchboard_events::token::now_seconds() as i64 + 3600) * 1_000_000
}

async fn grpc(
    mut client: IngestClient<Channel>,
    cell: &Cell,
    fixture: &Fixture,
    token: &str,
) -> Outcome {
    use command::Command as C;
    let post = |private_note| {
        C::PostMessage(proto::PostMessage {
            client_msg_id: unique(cell),
            body: "hello".to_owned(),
            private_note,
            ..Default::default()
        })
    };
    let agent = |c: agent_command::Command| proto::AgentCommand {
        agent_id: "agent-1".to_owned(),
        command: Some(c),
        ..Default::default()
    };
    let agent_command = match cell.op {
        "set_status" => Some(agent(agent_command::Command::SetStatus(
            proto::AgentStatus::Online.into(),
        ))),
        "set_capacity" => Some(agent(agent_command::Command::SetCapacity(5))),
        "set_skills" => Some(agent(agent_command::Command::SetSkills(proto::Skills {
            skills: vec!["billing".to_owned()],
        }))),
        "configure_tenant" => Some(proto::AgentCommand {
            agent_id: TENANT_STREAM.to_owned(),
            command: Some(agent_command::Command::ConfigureTenant(
                proto::ConfigureTenant {
                    create: false,
                    patch_json: json!({"name": unique(cell)}).to_string(),
                },
            )),
            ..Default::default()
        }),
        _ => None,
    };
    if let Some(command) = agent_command {
        return answer(client.execute_agent(authorized(command, token)).await);
    }
    let mut on_behalf_of = None;
    let command = match cell.op {
        "open" => C::Open(proto::Open {
            customer_id: opens_for(cell).to_owned(),
            channel: proto::Channel::Web.into(),
            ..Default::default()
        }),
        "post_message" => post(false),
        "post_private_note" => post(true),
        "post_on_behalf_of_customer" => {
            on_behalf_of = Some(proto::OnBehalfOf {
                tenant_id: tenant_id(Tenant::Own).to_owned(),
                role: proto::Role::Customer.into(),
                subject: "cust-1".to_owned(),
            });
            post(false)
        }
        "edit_message" => C::EditMessage(proto::EditMessage {
            message_id: fixture.message.clone(),
            body: "edited".to_owned(),
        }),
        "redact_message" => C::RedactMessage(proto::RedactMessage {
            message_id: fixture.message.clone(),
            reason: None,
        }),
        "mark_read" => C::MarkRead(proto::MarkRead { up_to_seq: 1 }),
        "assign" => C::Assign(proto::Assign {
            agent_id: "agent-2".to_owned(),
            policy: None,
        }),
        "transfer" => C::Transfer(proto::Transfer {
            to: Some(proto::transfer::To::AgentId("agent-2".to_owned())),
            reason: None,
        }),
        "queue" => C::Queue(proto::Queue::default()),
        "tag" => C::Tag(proto::Tag {
            tag: "billing".to_owned(),
        }),
        "untag" => C::Untag(proto::Tag {
            tag: "billing".to_owned(),
        }),
        "set_priority" => C::SetPriority(proto::SetPriority {
            priority: proto::Priority::High.into(),
        }),
        "snooze" => C::Snooze(proto::Snooze {
            until_micros: in_an_hour(),
        }),
        "resolve" => C::Resolve(proto::Resolve {}),
        "reopen" => C::Reopen(proto::Reopen { reason: None }),
        "rate" => C::Rate(proto::Rate {
            score: 5,
            comment: None,
        }),
        "erase_customer" => C::EraseCustomer(proto::EraseCustomer { reason: None }),
        other => panic!("{other} is no command of the matrix"),
    };
    let command = proto::ConversationCommand {
        conversation_id: fixture.conversation.clone(),
        on_behalf_of,
        correlation_id: String::new(),
        command: Some(command),
    };
    answer(client.execute(authorized(command, token)).await)
}

fn answer(result: Result<tonic::Response<proto::Ack>, tonic::Status>) -> Outcome {
    match result {
        Ok(_) => Outcome::Allowed,
        Err(refused) => query::status(&refused),
    }
}

fn http(server: &Server, cell: &Cell, fixture: &Fixture, token: &str) -> Outcome {
    let id = &fixture.conversation;
    let commands = format!("/v1/conversations/{id}/commands");
    let agent = "/v1/agents/agent-1/commands".to_owned();
    let post = |private_note: bool| {
        json!({"type": "post_message", "client_msg_id": unique(cell), "body": "hello",
               "private_note": private_note})
    };
    let (path, body): (String, Value) = match cell.op {
        "open" => (
            "/v1/conversations".to_owned(),
            json!({"conversation_id": id, "customer_id": opens_for(cell), "channel": "web"}),
        ),
        "post_message" => (commands, post(false)),
        "post_private_note" => (commands, post(true)),
        "post_on_behalf_of_customer" => {
            let mut body = post(false);
            body["on_behalf_of"] = json!({"tenant_id": tenant_id(Tenant::Own),
                                          "role": "customer", "subject": "cust-1"});
            (commands, body)
        }
        "edit_message" => (
            commands,
            json!({"type": "edit_message", "message_id": fixture.message, "body": "edited"}),
        ),
        "redact_message" => (
            commands,
            json!({"type": "redact_message", "message_id": fixture.message}),
        ),
        "mark_read" => (commands, json!({"type": "mark_read", "up_to_seq": 1})),
        "assign" => (commands, json!({"type": "assign", "agent_id": "agent-2"})),
        "transfer" => (commands, json!({"type": "transfer", "agent_id": "agent-2"})),
        "queue" => (commands, json!({"type": "queue"})),
        "tag" => (commands, json!({"type": "tag", "tag": "billing"})),
        "untag" => (commands, json!({"type": "untag", "tag": "billing"})),
        "set_priority" => (
            commands,
            json!({"type": "set_priority", "priority": "high"}),
        ),
        "snooze" => (
            commands,
            json!({"type": "snooze", "until_micros": in_an_hour()}),
        ),
        "resolve" => (commands, json!({"type": "resolve"})),
        "reopen" => (commands, json!({"type": "reopen"})),
        "rate" => (commands, json!({"type": "rate", "score": 5})),
        "erase_customer" => (commands, json!({"type": "erase_customer"})),
        "set_status" => (agent, json!({"type": "set_status", "status": "online"})),
        "set_capacity" => (
            agent,
            json!({"type": "set_capacity", "max_conversations": 5}),
        ),
        "set_skills" => (agent, json!({"type": "set_skills", "skills": ["billing"]})),
        "configure_tenant" => (
            format!("/v1/tenants/{}/settings", tenant_id(cell.tenant)),
            json!({"name": unique(cell)}),
        ),
        other => panic!("{other} is no command of the matrix"),
    };
    let method = if cell.op == "configure_tenant" {
        "PATCH"
    } else {
        "POST"
    };
    match try_request_text(&server.http, method, &path, Some(token), &body.to_string()) {
        Some((200..=299, _)) => Outcome::Allowed,
        Some((404, _)) => Outcome::Blind,
        Some((403, _)) => Outcome::Forbidden,
        Some((401, _)) => Outcome::Refused,
        Some((status, body)) => Outcome::Other(format!("{status} {body}")),
        None => Outcome::Other("no answer".to_owned()),
    }
}
