use std::collections::BTreeMap;

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{
    AssignmentPolicy, Attachment, Channel, Priority, TransferTarget,
};
use switchboard_events::id::{
    AgentId, ClientMsgId, ConversationId, CorrelationId, CustomerId, Label, MessageId, PrincipalId,
    TeamId, TenantId,
};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{Seq, Timestamp};
use uuid::Uuid;

use super::{AgentRequest, ConversationRequest};
use crate::api::Ack;
use crate::api::proto::{self, agent_command, conversation_command as cc, transfer};
use crate::command::{AgentCommand, ConversationCommand as C, OpenConversation, PostMessage};
use crate::error::CommandError;

fn conversation() -> ConversationId {
    ConversationId::new("conv-1").unwrap()
}

fn correlation() -> CorrelationId {
    CorrelationId(Uuid::parse_str("f47ac10b-58cc-4372-a567-0e02b2c3d479").unwrap())
}

/// One of every conversation command, with every optional field set somewhere.
pub(in crate::api) fn every_command() -> Vec<C> {
    vec![
        C::Open(OpenConversation {
            customer_id: CustomerId::new("cust-1").unwrap(),
            channel: Channel::Email,
            priority: Priority::High,
            team_id: Some(TeamId::new("billing").unwrap()),
            required_skills: vec![Label::new("de").unwrap(), Label::new("refunds").unwrap()],
            vip: true,
            attributes: BTreeMap::from([
                ("plan".into(), "pro".into()),
                ("locale".into(), "de".into()),
            ]),
            customer_name: Some("Ada".into()),
            customer_email: Some("ada@example.com".into()),
        }),
        C::PostMessage(PostMessage {
            client_msg_id: ClientMsgId::new("c-42").unwrap(),
            body: "hello".into(),
            attachments: vec![Attachment {
                attachment_id: "att-1".into(),
                file_name: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
                size_bytes: 1234,
                url: "https://files.example/att-1".into(),
            }],
            private_note: true,
        }),
        C::EditMessage {
            message_id: MessageId::new("m-1").unwrap(),
            body: "hello again".into(),
        },
        C::RedactMessage {
            message_id: MessageId::new("m-1").unwrap(),
            reason: Some("typo".into()),
        },
        C::MarkRead { up_to_seq: Seq(7) },
        C::Assign {
            agent_id: AgentId::new("agent-1").unwrap(),
            policy: AssignmentPolicy::LeastBusy,
        },
        C::Transfer {
            to: TransferTarget::Agent {
                agent_id: AgentId::new("agent-2").unwrap(),
            },
            reason: None,
        },
        C::Transfer {
            to: TransferTarget::Team {
                team_id: TeamId::new("tier-2").unwrap(),
            },
            reason: Some("needs an expert".into()),
        },
        C::Queue {
            team_id: Some(TeamId::new("tier-1").unwrap()),
            reason: Some("agent left".into()),
        },
        C::Queue {
            team_id: None,
            reason: None,
        },
        C::Tag {
            tag: Label::new("refund").unwrap(),
        },
        C::Untag {
            tag: Label::new("refund").unwrap(),
        },
        C::SetPriority {
            priority: Priority::Urgent,
        },
        C::Snooze {
            until: Timestamp(1_900_000_000_000_000),
        },
        C::Resolve,
        C::Reopen {
            reason: Some("customer came back".into()),
        },
        C::Rate {
            score: 5,
            comment: Some("great".into()),
        },
        C::EraseCustomer { reason: None },
    ]
}

#[test]
fn every_conversation_command_survives_a_round_trip() {
    let principal = Principal::new(
        TenantId::new("acme").unwrap(),
        Role::Customer,
        PrincipalId::new("cust-1").unwrap(),
    );
    for command in every_command() {
        let request = ConversationRequest {
            conversation: Some(conversation()),
            on_behalf_of: Some(principal.clone()),
            correlation: correlation(),
            command,
        };
        let message = proto::ConversationCommand::from(&request);
        assert_eq!(ConversationRequest::try_from(message), Ok(request));
    }
}

#[test]
fn every_agent_command_survives_a_round_trip() {
    let commands = [
        AgentCommand::SetStatus {
            status: AgentStatus::Away,
        },
        AgentCommand::SetCapacity {
            max_conversations: 4,
        },
        AgentCommand::SetSkills {
            skills: vec![Label::new("de").unwrap()],
        },
        AgentCommand::SetSkills { skills: vec![] },
    ];
    for command in commands {
        let request = AgentRequest {
            agent: AgentId::new("agent-1").unwrap(),
            on_behalf_of: None,
            correlation: correlation(),
            command,
        };
        let message = proto::AgentCommand::from(&request);
        assert_eq!(AgentRequest::try_from(message), Ok(request));
    }
}

#[test]
fn acks_survive_a_round_trip() {
    for message_id in [None, Some(MessageId::new("m-9").unwrap())] {
        let ack = Ack {
            stream_id: "conv-1".into(),
            seq: Seq(9),
            unchanged: true,
            message_id,
        };
        assert_eq!(Ack::try_from(proto::Ack::from(&ack)), Ok(ack));
    }
}

fn message(command: cc::Command) -> proto::ConversationCommand {
    proto::ConversationCommand {
        conversation_id: "conv-1".into(),
        on_behalf_of: None,
        correlation_id: String::new(),
        command: Some(command),
    }
}

fn open() -> proto::Open {
    proto::Open {
        customer_id: "cust-1".into(),
        channel: proto::Channel::Web.into(),
        ..Default::default()
    }
}

#[test]
fn an_open_may_leave_the_id_to_the_server_and_gets_defaults() {
    let mut m = message(cc::Command::Open(open()));
    m.conversation_id.clear();
    let request = ConversationRequest::try_from(m).unwrap();
    assert_eq!(request.conversation, None);
    let C::Open(open) = request.command else {
        panic!("not an open: {:?}", request.command);
    };
    assert_eq!(open.priority, Priority::Normal);
    assert_eq!(open.team_id, None);
    assert_eq!(open.customer_name, None);
}

#[test]
fn optional_fields_fall_back_to_their_documented_defaults() {
    let assign = message(cc::Command::Assign(proto::Assign {
        agent_id: "agent-1".into(),
        policy: None,
    }));
    let redact = message(cc::Command::RedactMessage(proto::RedactMessage {
        message_id: "m-1".into(),
        reason: Some(String::new()),
    }));
    let queue = message(cc::Command::Queue(proto::Queue {
        team_id: Some(String::new()),
        reason: None,
    }));
    let commands =
        [assign, redact, queue].map(|m| ConversationRequest::try_from(m).unwrap().command);
    assert_eq!(
        commands,
        [
            C::Assign {
                agent_id: AgentId::new("agent-1").unwrap(),
                policy: AssignmentPolicy::Manual,
            },
            C::RedactMessage {
                message_id: MessageId::new("m-1").unwrap(),
                reason: None,
            },
            C::Queue {
                team_id: None,
                reason: None,
            },
        ]
    );
}

#[test]
fn a_missing_correlation_id_is_made_as_a_uuid_v7_and_a_given_one_is_kept() {
    let made = ConversationRequest::try_from(message(cc::Command::Resolve(proto::Resolve {})));
    assert_eq!(made.unwrap().correlation.0.get_version_num(), 7);
    let mut given = message(cc::Command::Resolve(proto::Resolve {}));
    given.correlation_id = correlation().0.to_string();
    assert_eq!(
        ConversationRequest::try_from(given).unwrap().correlation,
        correlation()
    );
}

/// The error message of a refused conversation message; it must be `invalid_argument`.
fn refused(m: proto::ConversationCommand) -> String {
    let err = ConversationRequest::try_from(m).unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    err.to_string()
}

fn refused_agent(m: proto::AgentCommand) -> String {
    let err: CommandError = AgentRequest::try_from(m).unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    err.to_string()
}

#[test]
fn bad_conversation_messages_are_refused_with_the_field_and_the_reason() {
    let resolve = || message(cc::Command::Resolve(proto::Resolve {}));
    let cases: Vec<(proto::ConversationCommand, &str)> = vec![
        (
            proto::ConversationCommand {
                command: None,
                ..resolve()
            },
            "invalid command: no command given",
        ),
        (
            proto::ConversationCommand {
                conversation_id: String::new(),
                ..resolve()
            },
            "invalid conversation_id: required for resolve",
        ),
        (
            proto::ConversationCommand {
                conversation_id: "conv 1".into(),
                ..resolve()
            },
            "invalid conversation_id: conversation id contains ' ' at byte 4",
        ),
        (
            proto::ConversationCommand {
                correlation_id: "req-1".into(),
                ..resolve()
            },
            "invalid correlation_id: \"req-1\" is not a UUID",
        ),
        (
            proto::ConversationCommand {
                on_behalf_of: Some(proto::OnBehalfOf {
                    tenant_id: "acme".into(),
                    role: proto::Role::Unspecified.into(),
                    subject: "cust-1".into(),
                }),
                ..resolve()
            },
            "invalid on_behalf_of.role: must be set (it is unspecified)",
        ),
        (
            proto::ConversationCommand {
                on_behalf_of: Some(proto::OnBehalfOf {
                    tenant_id: String::new(),
                    role: proto::Role::Customer.into(),
                    subject: "cust-1".into(),
                }),
                ..resolve()
            },
            "invalid on_behalf_of.tenant_id: tenant id is empty",
        ),
        (
            message(cc::Command::Open(proto::Open {
                customer_id: String::new(),
                ..open()
            })),
            "invalid open.customer_id: customer id is empty",
        ),
        (
            message(cc::Command::Open(proto::Open {
                channel: proto::Channel::Unspecified.into(),
                ..open()
            })),
            "invalid open.channel: must be set (it is unspecified)",
        ),
        (
            message(cc::Command::Open(proto::Open {
                channel: 42,
                ..open()
            })),
            "invalid open.channel: 42 is not a known value",
        ),
        (
            message(cc::Command::Open(proto::Open {
                priority: Some(proto::Priority::Unspecified.into()),
                ..open()
            })),
            "invalid open.priority: must be set (it is unspecified)",
        ),
        (
            message(cc::Command::Open(proto::Open {
                team_id: "a/b".into(),
                ..open()
            })),
            "invalid open.team_id: team id contains '/' at byte 1",
        ),
        (
            message(cc::Command::Open(proto::Open {
                required_skills: vec!["de".into(), String::new()],
                ..open()
            })),
            "invalid open.required_skills: label id is empty",
        ),
        (
            message(cc::Command::PostMessage(proto::PostMessage {
                client_msg_id: "x".repeat(129),
                body: "hi".into(),
                ..Default::default()
            })),
            "invalid post_message.client_msg_id: client message id is 129 bytes long, the limit is 128",
        ),
        (
            message(cc::Command::EditMessage(proto::EditMessage {
                message_id: String::new(),
                body: "hi".into(),
            })),
            "invalid edit_message.message_id: message id is empty",
        ),
        (
            message(cc::Command::RedactMessage(proto::RedactMessage {
                message_id: "m 1".into(),
                reason: None,
            })),
            "invalid redact_message.message_id",
        ),
        (
            message(cc::Command::MarkRead(proto::MarkRead { up_to_seq: 0 })),
            "invalid mark_read.up_to_seq: must be at least 1",
        ),
        (
            message(cc::Command::Assign(proto::Assign {
                agent_id: String::new(),
                policy: None,
            })),
            "invalid assign.agent_id: agent id is empty",
        ),
        (
            message(cc::Command::Assign(proto::Assign {
                agent_id: "agent-1".into(),
                policy: Some(proto::AssignmentPolicy::Unspecified.into()),
            })),
            "invalid assign.policy: must be set (it is unspecified)",
        ),
        (
            message(cc::Command::Transfer(proto::Transfer {
                to: None,
                reason: None,
            })),
            "invalid transfer.to: give the agent_id or the team_id",
        ),
        (
            message(cc::Command::Transfer(proto::Transfer {
                to: Some(transfer::To::TeamId("tier 2".into())),
                reason: None,
            })),
            "invalid transfer.team_id: team id contains ' '",
        ),
        (
            message(cc::Command::Transfer(proto::Transfer {
                to: Some(transfer::To::AgentId(String::new())),
                reason: None,
            })),
            "invalid transfer.agent_id: agent id is empty",
        ),
        (
            message(cc::Command::Queue(proto::Queue {
                team_id: Some("tier 1".into()),
                reason: None,
            })),
            "invalid queue.team_id",
        ),
        (
            message(cc::Command::Tag(proto::Tag { tag: String::new() })),
            "invalid tag.tag: label id is empty",
        ),
        (
            message(cc::Command::Untag(proto::Tag { tag: "a b".into() })),
            "invalid untag.tag",
        ),
        (
            message(cc::Command::SetPriority(proto::SetPriority {
                priority: proto::Priority::Unspecified.into(),
            })),
            "invalid set_priority.priority: must be set (it is unspecified)",
        ),
        (
            message(cc::Command::Snooze(proto::Snooze { until_micros: 0 })),
            "invalid snooze.until_micros",
        ),
    ];
    for (m, expected) in cases {
        let got = refused(m);
        assert!(
            got.starts_with(expected),
            "expected {expected:?}, got {got:?}"
        );
    }
}

#[test]
fn bad_agent_messages_are_refused_with_the_field_and_the_reason() {
    let command = |command| proto::AgentCommand {
        agent_id: "agent-1".into(),
        on_behalf_of: None,
        correlation_id: String::new(),
        command,
    };
    let cases = [
        (command(None), "invalid command: no command given"),
        (
            proto::AgentCommand {
                agent_id: String::new(),
                ..command(Some(agent_command::Command::SetCapacity(3)))
            },
            "invalid agent_id: agent id is empty",
        ),
        (
            command(Some(agent_command::Command::SetStatus(
                proto::AgentStatus::Unspecified.into(),
            ))),
            "invalid set_status: must be set (it is unspecified)",
        ),
        (
            command(Some(agent_command::Command::SetStatus(-1))),
            "invalid set_status: -1 is not a known value",
        ),
        (
            command(Some(agent_command::Command::SetSkills(proto::Skills {
                skills: vec!["über".into()],
            }))),
            "invalid set_skills.skills: label id contains 'ü' at byte 0",
        ),
        (
            proto::AgentCommand {
                correlation_id: "not-a-uuid".into(),
                ..command(Some(agent_command::Command::SetCapacity(3)))
            },
            "invalid correlation_id",
        ),
    ];
    for (m, expected) in cases {
        let got = refused_agent(m);
        assert!(
            got.starts_with(expected),
            "expected {expected:?}, got {got:?}"
        );
    }
}

#[test]
fn an_ack_with_a_bad_message_id_is_refused_not_trusted() {
    let ack = proto::Ack {
        stream_id: "conv-1".into(),
        seq: 3,
        unchanged: false,
        message_id: "m 1".into(),
    };
    assert_eq!(Ack::try_from(ack).unwrap_err().code(), "invalid_argument");
}
