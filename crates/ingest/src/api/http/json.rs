//! The JSON bodies of the HTTP API. Each mirrors its protobuf message and becomes one, so that
//! both protocols share a single validation ([`super::super::convert`]). Enums are spelled in
//! snake_case (`"channel": "web"`), commands are tagged by `"type"`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{AssignmentPolicy, Channel, Priority};
use switchboard_events::principal::Role;

use crate::api::Ack;
use crate::api::convert::{
    channel_to_proto, policy_to_proto, priority_to_proto, role_to_proto, status_to_proto,
};
use crate::api::proto::{self, agent_command, conversation_command, transfer};
use crate::error::CommandError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OnBehalfOf {
    tenant_id: String,
    role: Role,
    subject: String,
}

impl From<OnBehalfOf> for proto::OnBehalfOf {
    fn from(o: OnBehalfOf) -> Self {
        Self {
            tenant_id: o.tenant_id,
            role: role_to_proto(o.role).into(),
            subject: o.subject,
        }
    }
}

/// `POST /v1/conversations`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Open {
    /// Picked by the client to make a retried open idempotent; the server picks one if absent.
    conversation_id: Option<String>,
    correlation_id: Option<String>,
    on_behalf_of: Option<OnBehalfOf>,
    customer_id: String,
    channel: Channel,
    priority: Option<Priority>,
    team_id: Option<String>,
    #[serde(default)]
    required_skills: Vec<String>,
    #[serde(default)]
    vip: bool,
    #[serde(default)]
    attributes: HashMap<String, String>,
    customer_name: Option<String>,
    customer_email: Option<String>,
}

impl From<Open> for proto::ConversationCommand {
    fn from(o: Open) -> Self {
        Self {
            conversation_id: o.conversation_id.unwrap_or_default(),
            on_behalf_of: o.on_behalf_of.map(Into::into),
            correlation_id: o.correlation_id.unwrap_or_default(),
            command: Some(conversation_command::Command::Open(proto::Open {
                customer_id: o.customer_id,
                channel: channel_to_proto(o.channel).into(),
                priority: o.priority.map(|p| priority_to_proto(p).into()),
                team_id: o.team_id.unwrap_or_default(),
                required_skills: o.required_skills,
                vip: o.vip,
                attributes: o.attributes,
                customer_name: o.customer_name,
                customer_email: o.customer_email,
            })),
        }
    }
}

/// `POST /v1/conversations/{id}/commands`.
#[derive(Deserialize)]
pub(super) struct ConversationCommand {
    correlation_id: Option<String>,
    on_behalf_of: Option<OnBehalfOf>,
    #[serde(flatten)]
    command: Command,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Attachment {
    attachment_id: String,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    url: String,
}

/// The commands on an existing conversation; opening one has its own route.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    PostMessage {
        client_msg_id: String,
        body: String,
        #[serde(default)]
        attachments: Vec<Attachment>,
        #[serde(default)]
        private_note: bool,
    },
    EditMessage {
        message_id: String,
        body: String,
    },
    RedactMessage {
        message_id: String,
        reason: Option<String>,
    },
    MarkRead {
        up_to_seq: u64,
    },
    Assign {
        agent_id: String,
        policy: Option<AssignmentPolicy>,
    },
    /// Exactly one of `agent_id` and `team_id`.
    Transfer {
        agent_id: Option<String>,
        team_id: Option<String>,
        reason: Option<String>,
    },
    Queue {
        team_id: Option<String>,
        reason: Option<String>,
    },
    Tag {
        tag: String,
    },
    Untag {
        tag: String,
    },
    SetPriority {
        priority: Priority,
    },
    Snooze {
        until_micros: i64,
    },
    Resolve,
    Reopen {
        reason: Option<String>,
    },
    Rate {
        score: i32,
        comment: Option<String>,
    },
    EraseCustomer {
        reason: Option<String>,
    },
}

impl ConversationCommand {
    pub(super) fn into_proto(
        self,
        conversation_id: String,
    ) -> Result<proto::ConversationCommand, CommandError> {
        use Command as J;
        use conversation_command::Command as P;
        let command = match self.command {
            J::PostMessage {
                client_msg_id,
                body,
                attachments,
                private_note,
            } => P::PostMessage(proto::PostMessage {
                client_msg_id,
                body,
                attachments: attachments
                    .into_iter()
                    .map(|a| proto::Attachment {
                        attachment_id: a.attachment_id,
                        file_name: a.file_name,
                        content_type: a.content_type,
                        size_bytes: a.size_bytes,
                        url: a.url,
                    })
                    .collect(),
                private_note,
            }),
            J::EditMessage { message_id, body } => {
                P::EditMessage(proto::EditMessage { message_id, body })
            }
            J::RedactMessage { message_id, reason } => {
                P::RedactMessage(proto::RedactMessage { message_id, reason })
            }
            J::MarkRead { up_to_seq } => P::MarkRead(proto::MarkRead { up_to_seq }),
            J::Assign { agent_id, policy } => P::Assign(proto::Assign {
                agent_id,
                policy: policy.map(|p| policy_to_proto(p).into()),
            }),
            J::Transfer {
                agent_id,
                team_id,
                reason,
            } => P::Transfer(proto::Transfer {
                to: match (agent_id, team_id) {
                    (Some(agent), None) => Some(transfer::To::AgentId(agent)),
                    (None, Some(team)) => Some(transfer::To::TeamId(team)),
                    (None, None) => None,
                    (Some(_), Some(_)) => {
                        return Err(CommandError::InvalidArgument {
                            field: "transfer",
                            reason: "give either agent_id or team_id, not both".into(),
                        });
                    }
                },
                reason,
            }),
            J::Queue { team_id, reason } => P::Queue(proto::Queue { team_id, reason }),
            J::Tag { tag } => P::Tag(proto::Tag { tag }),
            J::Untag { tag } => P::Untag(proto::Tag { tag }),
            J::SetPriority { priority } => P::SetPriority(proto::SetPriority {
                priority: priority_to_proto(priority).into(),
            }),
            J::Snooze { until_micros } => P::Snooze(proto::Snooze { until_micros }),
            J::Resolve => P::Resolve(proto::Resolve {}),
            J::Reopen { reason } => P::Reopen(proto::Reopen { reason }),
            J::Rate { score, comment } => P::Rate(proto::Rate { score, comment }),
            J::EraseCustomer { reason } => P::EraseCustomer(proto::EraseCustomer { reason }),
        };
        Ok(proto::ConversationCommand {
            conversation_id,
            on_behalf_of: self.on_behalf_of.map(Into::into),
            correlation_id: self.correlation_id.unwrap_or_default(),
            command: Some(command),
        })
    }
}

/// `POST /v1/agents/{id}/commands`.
#[derive(Deserialize)]
pub(super) struct AgentCommand {
    correlation_id: Option<String>,
    on_behalf_of: Option<OnBehalfOf>,
    #[serde(flatten)]
    command: AgentCommandKind,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[allow(clippy::enum_variant_names)] // the names are the wire's `type` values
enum AgentCommandKind {
    SetStatus { status: AgentStatus },
    SetCapacity { max_conversations: i32 },
    SetSkills { skills: Vec<String> },
}

impl AgentCommand {
    pub(super) fn into_proto(self, agent_id: String) -> proto::AgentCommand {
        use agent_command::Command as P;
        proto::AgentCommand {
            agent_id,
            on_behalf_of: self.on_behalf_of.map(Into::into),
            correlation_id: self.correlation_id.unwrap_or_default(),
            command: Some(match self.command {
                AgentCommandKind::SetStatus { status } => {
                    P::SetStatus(status_to_proto(status).into())
                }
                AgentCommandKind::SetCapacity { max_conversations } => {
                    P::SetCapacity(max_conversations)
                }
                AgentCommandKind::SetSkills { skills } => P::SetSkills(proto::Skills { skills }),
            }),
        }
    }
}

/// The answer to a command.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
pub struct AckBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub seq: u64,
    pub unchanged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl AckBody {
    pub(super) fn conversation(ack: Ack) -> Self {
        Self {
            conversation_id: Some(ack.stream_id),
            agent_id: None,
            seq: ack.seq.0,
            unchanged: ack.unchanged,
            message_id: ack.message_id.map(|m| m.as_str().to_owned()),
        }
    }

    pub(super) fn agent(ack: Ack) -> Self {
        Self {
            conversation_id: None,
            agent_id: Some(ack.stream_id),
            seq: ack.seq.0,
            unchanged: ack.unchanged,
            message_id: None,
        }
    }
}

/// The body of every error answer.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_events::agent::AgentStatus;
    use switchboard_events::conversation::{
        AssignmentPolicy, Attachment, Channel, Priority, TransferTarget,
    };
    use switchboard_events::id::{
        AgentId, ClientMsgId, CustomerId, Label, MessageId, PrincipalId, TeamId, TenantId,
    };
    use switchboard_events::principal::{Principal, Role};
    use switchboard_events::{Seq, Timestamp};

    use crate::api::convert::{AgentRequest, ConversationRequest};
    use crate::api::proto;
    use crate::command::{AgentCommand, ConversationCommand as C, OpenConversation, PostMessage};

    fn command(body: serde_json::Value) -> C {
        let parsed: super::ConversationCommand = serde_json::from_value(body).unwrap();
        let message = parsed.into_proto("conv-1".into()).unwrap();
        ConversationRequest::try_from(message).unwrap().command
    }

    #[test]
    fn every_conversation_command_reads_from_json() {
        let cases = [
            (
                json!({"type": "post_message", "client_msg_id": "c-1", "body": "hi",
                    "private_note": true, "attachments": [{"attachment_id": "a1",
                    "file_name": "x.png", "content_type": "image/png", "size_bytes": 10,
                    "url": "https://files.example/a1"}]}),
                C::PostMessage(PostMessage {
                    client_msg_id: ClientMsgId::new("c-1").unwrap(),
                    body: "hi".into(),
                    attachments: vec![Attachment {
                        attachment_id: "a1".into(),
                        file_name: "x.png".into(),
                        content_type: "image/png".into(),
                        size_bytes: 10,
                        url: "https://files.example/a1".into(),
                    }],
                    private_note: true,
                }),
            ),
            (
                json!({"type": "edit_message", "message_id": "m-1", "body": "hello"}),
                C::EditMessage {
                    message_id: MessageId::new("m-1").unwrap(),
                    body: "hello".into(),
                },
            ),
            (
                json!({"type": "redact_message", "message_id": "m-1"}),
                C::RedactMessage {
                    message_id: MessageId::new("m-1").unwrap(),
                    reason: None,
                },
            ),
            (
                json!({"type": "mark_read", "up_to_seq": 4}),
                C::MarkRead { up_to_seq: Seq(4) },
            ),
            (
                json!({"type": "assign", "agent_id": "a-1"}),
                C::Assign {
                    agent_id: AgentId::new("a-1").unwrap(),
                    policy: AssignmentPolicy::Manual,
                },
            ),
            (
                json!({"type": "transfer", "agent_id": "a-2"}),
                C::Transfer {
                    to: TransferTarget::Agent {
                        agent_id: AgentId::new("a-2").unwrap(),
                    },
                    reason: None,
                },
            ),
            (
                json!({"type": "queue", "team_id": "t-1", "reason": "lunch"}),
                C::Queue {
                    team_id: Some(TeamId::new("t-1").unwrap()),
                    reason: Some("lunch".into()),
                },
            ),
            (
                json!({"type": "tag", "tag": "vip"}),
                C::Tag {
                    tag: Label::new("vip").unwrap(),
                },
            ),
            (
                json!({"type": "untag", "tag": "vip"}),
                C::Untag {
                    tag: Label::new("vip").unwrap(),
                },
            ),
            (
                json!({"type": "set_priority", "priority": "urgent"}),
                C::SetPriority {
                    priority: Priority::Urgent,
                },
            ),
            (
                json!({"type": "snooze", "until_micros": 1_900_000_000_000_000_i64}),
                C::Snooze {
                    until: Timestamp(1_900_000_000_000_000),
                },
            ),
            (json!({"type": "resolve"}), C::Resolve),
            (
                json!({"type": "reopen", "reason": "more"}),
                C::Reopen {
                    reason: Some("more".into()),
                },
            ),
            (
                json!({"type": "rate", "score": 4, "comment": "ok"}),
                C::Rate {
                    score: 4,
                    comment: Some("ok".into()),
                },
            ),
            (
                json!({"type": "erase_customer"}),
                C::EraseCustomer { reason: None },
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(command(body.clone()), expected, "{body}");
        }
    }

    #[test]
    fn an_open_reads_from_json_with_its_envelope() {
        let open: super::Open = serde_json::from_value(json!({
            "conversation_id": "conv-9",
            "correlation_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
            "on_behalf_of": {"tenant_id": "acme", "role": "customer", "subject": "cust-1"},
            "customer_id": "cust-1", "channel": "sms", "priority": "low", "team_id": "t-1",
            "required_skills": ["de"], "vip": true, "attributes": {"plan": "pro"},
            "customer_name": "Ada", "customer_email": "ada@example.com"
        }))
        .unwrap();
        let request = ConversationRequest::try_from(proto::ConversationCommand::from(open));
        let request = request.unwrap();
        assert_eq!(request.conversation.unwrap().as_str(), "conv-9");
        assert_eq!(
            request.correlation.0.to_string(),
            "f47ac10b-58cc-4372-a567-0e02b2c3d479"
        );
        assert_eq!(
            request.on_behalf_of,
            Some(Principal::new(
                TenantId::new("acme").unwrap(),
                Role::Customer,
                PrincipalId::new("cust-1").unwrap()
            ))
        );
        assert_eq!(
            request.command,
            C::Open(OpenConversation {
                customer_id: CustomerId::new("cust-1").unwrap(),
                channel: Channel::Sms,
                priority: Priority::Low,
                team_id: Some(TeamId::new("t-1").unwrap()),
                required_skills: vec![Label::new("de").unwrap()],
                vip: true,
                attributes: [("plan".to_owned(), "pro".to_owned())].into(),
                customer_name: Some("Ada".into()),
                customer_email: Some("ada@example.com".into()),
            })
        );
    }

    #[test]
    fn every_agent_command_reads_from_json() {
        let cases = [
            (
                json!({"type": "set_status", "status": "online"}),
                AgentCommand::SetStatus {
                    status: AgentStatus::Online,
                },
            ),
            (
                json!({"type": "set_capacity", "max_conversations": 3}),
                AgentCommand::SetCapacity {
                    max_conversations: 3,
                },
            ),
            (
                json!({"type": "set_skills", "skills": ["de", "billing"]}),
                AgentCommand::SetSkills {
                    skills: vec![Label::new("de").unwrap(), Label::new("billing").unwrap()],
                },
            ),
        ];
        for (body, expected) in cases {
            let parsed: super::AgentCommand = serde_json::from_value(body.clone()).unwrap();
            let request = AgentRequest::try_from(parsed.into_proto("a-1".into())).unwrap();
            assert_eq!(request.command, expected, "{body}");
        }
    }

    #[test]
    fn the_open_command_is_not_a_conversation_command() {
        let err = serde_json::from_value::<super::ConversationCommand>(
            json!({"type": "open", "customer_id": "c", "channel": "web"}),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().starts_with("unknown variant `open`"),
            "{err}"
        );
    }
}
