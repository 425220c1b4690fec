//! Protobuf messages to commands and back. Every field is checked here, where the request
//! enters: ids through their typed constructors, enums refusing `UNSPECIFIED` and unknown
//! numbers, oneofs refusing to be empty. What a value means for the conversation (limits, who
//! may do it, in which state) is the state machine's business, not this module's.
//!
//! The reverse direction serves an instance that forwards a command to the owner of its
//! conversation, and lets the tests check that nothing is lost in a round trip.

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{
    AssignmentPolicy, Attachment, Channel, Priority, TransferTarget,
};
use switchboard_events::id::{
    AgentId, ClientMsgId, ConversationId, CorrelationId, CustomerId, Label, MessageId, PrincipalId,
    TeamId, TenantId,
};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{IdError, Seq, Timestamp};
use uuid::Uuid;

use super::Ack;
use super::proto::{self, agent_command, conversation_command, transfer};
use crate::command::{AgentCommand, ConversationCommand, OpenConversation, PostMessage};
use crate::error::CommandError;

/// A conversation command with what the transport carried around it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConversationRequest {
    /// `None` only for an open without a client-chosen id.
    pub conversation: Option<ConversationId>,
    /// The principal a service acts for; the authenticator decides whether it may.
    pub on_behalf_of: Option<Principal>,
    pub correlation: CorrelationId,
    pub command: ConversationCommand,
}

/// An agent command with what the transport carried around it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentRequest {
    pub agent: AgentId,
    pub on_behalf_of: Option<Principal>,
    pub correlation: CorrelationId,
    pub command: AgentCommand,
}

fn id<T>(
    field: &'static str,
    value: String,
    new: fn(String) -> Result<T, IdError>,
) -> Result<T, CommandError> {
    new(value).map_err(|e| CommandError::invalid(field, e.to_string()))
}

fn ids<T>(
    field: &'static str,
    values: Vec<String>,
    new: fn(String) -> Result<T, IdError>,
) -> Result<Vec<T>, CommandError> {
    values.into_iter().map(|v| id(field, v, new)).collect()
}

/// An optional text: absent and empty mean the same.
fn text(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// An optional id: absent and empty mean the same.
fn opt_id<T>(
    field: &'static str,
    value: Option<String>,
    new: fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, CommandError> {
    text(value).map(|v| id(field, v, new)).transpose()
}

/// Parses a proto enum field: unknown numbers and `UNSPECIFIED` are refused by name.
fn enumeration<P, T>(
    field: &'static str,
    value: i32,
    map: impl FnOnce(P) -> Option<T>,
) -> Result<T, CommandError>
where
    P: TryFrom<i32>,
{
    let known = P::try_from(value)
        .map_err(|_| CommandError::invalid(field, format!("{value} is not a known value")))?;
    map(known).ok_or_else(|| CommandError::invalid(field, "must be set (it is unspecified)"))
}

/// The caller's correlation id (any UUID), or a fresh UUIDv7 when it sent none.
pub fn correlation(value: &str) -> Result<CorrelationId, CommandError> {
    if value.is_empty() {
        return Ok(CorrelationId(Uuid::now_v7()));
    }
    Uuid::try_parse(value)
        .map(CorrelationId)
        .map_err(|_| CommandError::invalid("correlation_id", format!("{value:?} is not a UUID")))
}

pub fn on_behalf_of(value: proto::OnBehalfOf) -> Result<Principal, CommandError> {
    let role = enumeration("on_behalf_of.role", value.role, |r| match r {
        proto::Role::Unspecified => None,
        proto::Role::Customer => Some(Role::Customer),
        proto::Role::Agent => Some(Role::Agent),
        proto::Role::Supervisor => Some(Role::Supervisor),
        proto::Role::Auditor => Some(Role::Auditor),
        proto::Role::Service => Some(Role::Service),
    })?;
    Ok(Principal::new(
        id("on_behalf_of.tenant_id", value.tenant_id, TenantId::new)?,
        role,
        id("on_behalf_of.subject", value.subject, PrincipalId::new)?,
    ))
}

fn channel(value: i32) -> Result<Channel, CommandError> {
    enumeration("open.channel", value, |c| match c {
        proto::Channel::Unspecified => None,
        proto::Channel::Web => Some(Channel::Web),
        proto::Channel::Email => Some(Channel::Email),
        proto::Channel::Sms => Some(Channel::Sms),
        proto::Channel::Messenger => Some(Channel::Messenger),
        proto::Channel::Api => Some(Channel::Api),
    })
}

fn priority(field: &'static str, value: i32) -> Result<Priority, CommandError> {
    enumeration(field, value, |p| match p {
        proto::Priority::Unspecified => None,
        proto::Priority::Low => Some(Priority::Low),
        proto::Priority::Normal => Some(Priority::Normal),
        proto::Priority::High => Some(Priority::High),
        proto::Priority::Urgent => Some(Priority::Urgent),
    })
}

fn policy(value: i32) -> Result<AssignmentPolicy, CommandError> {
    enumeration("assign.policy", value, |p| match p {
        proto::AssignmentPolicy::Unspecified => None,
        proto::AssignmentPolicy::Manual => Some(AssignmentPolicy::Manual),
        proto::AssignmentPolicy::RoundRobin => Some(AssignmentPolicy::RoundRobin),
        proto::AssignmentPolicy::LeastBusy => Some(AssignmentPolicy::LeastBusy),
        proto::AssignmentPolicy::SkillsMatch => Some(AssignmentPolicy::SkillsMatch),
        proto::AssignmentPolicy::VipFirst => Some(AssignmentPolicy::VipFirst),
    })
}

fn agent_status(value: i32) -> Result<AgentStatus, CommandError> {
    enumeration("set_status", value, |s| match s {
        proto::AgentStatus::Unspecified => None,
        proto::AgentStatus::Online => Some(AgentStatus::Online),
        proto::AgentStatus::Away => Some(AgentStatus::Away),
        proto::AgentStatus::Offline => Some(AgentStatus::Offline),
    })
}

fn open(value: proto::Open) -> Result<OpenConversation, CommandError> {
    Ok(OpenConversation {
        customer_id: id("open.customer_id", value.customer_id, CustomerId::new)?,
        channel: channel(value.channel)?,
        priority: match value.priority {
            None => Priority::Normal,
            Some(p) => priority("open.priority", p)?,
        },
        team_id: opt_id("open.team_id", Some(value.team_id), TeamId::new)?,
        required_skills: ids("open.required_skills", value.required_skills, Label::new)?,
        vip: value.vip,
        attributes: value.attributes.into_iter().collect(),
        customer_name: text(value.customer_name),
        customer_email: text(value.customer_email),
    })
}

fn post(value: proto::PostMessage) -> Result<PostMessage, CommandError> {
    Ok(PostMessage {
        client_msg_id: id(
            "post_message.client_msg_id",
            value.client_msg_id,
            ClientMsgId::new,
        )?,
        body: value.body,
        attachments: value
            .attachments
            .into_iter()
            .map(|a| Attachment {
                attachment_id: a.attachment_id,
                file_name: a.file_name,
                content_type: a.content_type,
                size_bytes: a.size_bytes,
                url: a.url,
            })
            .collect(),
        private_note: value.private_note,
    })
}

fn conversation_command(
    command: conversation_command::Command,
) -> Result<ConversationCommand, CommandError> {
    use ConversationCommand as C;
    use conversation_command::Command as P;
    Ok(match command {
        P::Open(o) => C::Open(open(o)?),
        P::PostMessage(p) => C::PostMessage(post(p)?),
        P::EditMessage(e) => C::EditMessage {
            message_id: id("edit_message.message_id", e.message_id, MessageId::new)?,
            body: e.body,
        },
        P::RedactMessage(r) => C::RedactMessage {
            message_id: id("redact_message.message_id", r.message_id, MessageId::new)?,
            reason: text(r.reason),
        },
        P::MarkRead(m) if m.up_to_seq == 0 => {
            return Err(CommandError::invalid(
                "mark_read.up_to_seq",
                "must be at least 1 (seqs start at 1)",
            ));
        }
        P::MarkRead(m) => C::MarkRead {
            up_to_seq: Seq(m.up_to_seq),
        },
        P::Assign(a) => C::Assign {
            agent_id: id("assign.agent_id", a.agent_id, AgentId::new)?,
            policy: a.policy.map_or(Ok(AssignmentPolicy::Manual), policy)?,
        },
        P::Transfer(t) => C::Transfer {
            to: match t.to {
                Some(transfer::To::AgentId(a)) => TransferTarget::Agent {
                    agent_id: id("transfer.agent_id", a, AgentId::new)?,
                },
                Some(transfer::To::TeamId(t)) => TransferTarget::Team {
                    team_id: id("transfer.team_id", t, TeamId::new)?,
                },
                None => {
                    return Err(CommandError::invalid(
                        "transfer.to",
                        "give the agent_id or the team_id to transfer to",
                    ));
                }
            },
            reason: text(t.reason),
        },
        P::Queue(q) => C::Queue {
            team_id: opt_id("queue.team_id", q.team_id, TeamId::new)?,
            reason: text(q.reason),
        },
        P::Tag(t) => C::Tag {
            tag: id("tag.tag", t.tag, Label::new)?,
        },
        P::Untag(t) => C::Untag {
            tag: id("untag.tag", t.tag, Label::new)?,
        },
        P::SetPriority(p) => C::SetPriority {
            priority: priority("set_priority.priority", p.priority)?,
        },
        P::Snooze(s) if s.until_micros <= 0 => {
            return Err(CommandError::invalid(
                "snooze.until_micros",
                "must be a time after the Unix epoch, in microseconds",
            ));
        }
        P::Snooze(s) => C::Snooze {
            until: Timestamp(s.until_micros),
        },
        P::Resolve(proto::Resolve {}) => C::Resolve,
        P::Reopen(r) => C::Reopen {
            reason: text(r.reason),
        },
        P::Rate(r) => C::Rate {
            score: r.score,
            comment: text(r.comment),
        },
        P::EraseCustomer(e) => C::EraseCustomer {
            reason: text(e.reason),
        },
    })
}

impl TryFrom<proto::ConversationCommand> for ConversationRequest {
    type Error = CommandError;

    fn try_from(value: proto::ConversationCommand) -> Result<Self, CommandError> {
        let Some(command) = value.command else {
            return Err(CommandError::invalid(
                "command",
                "no command given: set one of open, post_message, edit_message, ...",
            ));
        };
        let command = conversation_command(command)?;
        let conversation = match (&command, value.conversation_id.is_empty()) {
            (ConversationCommand::Open(_), true) => None,
            (_, true) => {
                return Err(CommandError::invalid(
                    "conversation_id",
                    format!("required for {}", command.name()),
                ));
            }
            (_, false) => Some(id(
                "conversation_id",
                value.conversation_id,
                ConversationId::new,
            )?),
        };
        Ok(Self {
            conversation,
            on_behalf_of: value.on_behalf_of.map(on_behalf_of).transpose()?,
            correlation: correlation(&value.correlation_id)?,
            command,
        })
    }
}

impl TryFrom<proto::AgentCommand> for AgentRequest {
    type Error = CommandError;

    fn try_from(value: proto::AgentCommand) -> Result<Self, CommandError> {
        use agent_command::Command as P;
        let command = match value.command {
            Some(P::SetStatus(s)) => AgentCommand::SetStatus {
                status: agent_status(s)?,
            },
            Some(P::SetCapacity(max_conversations)) => {
                AgentCommand::SetCapacity { max_conversations }
            }
            Some(P::SetSkills(s)) => AgentCommand::SetSkills {
                skills: ids("set_skills.skills", s.skills, Label::new)?,
            },
            Some(P::ConfigureTenant(c)) => {
                if c.patch_json.len() > crate::tenant::MAX_SETTINGS_BYTES {
                    return Err(CommandError::TooLarge {
                        field: "configure_tenant.patch_json",
                        len: c.patch_json.len(),
                        max: crate::tenant::MAX_SETTINGS_BYTES,
                    });
                }
                AgentCommand::ConfigureTenant {
                    create: c.create,
                    patch: serde_json::from_str(&c.patch_json).map_err(|e| {
                        CommandError::invalid("configure_tenant.patch_json", e.to_string())
                    })?,
                }
            }
            None => {
                return Err(CommandError::invalid(
                    "command",
                    "no command given: set one of set_status, set_capacity, set_skills, \
                     configure_tenant",
                ));
            }
        };
        Ok(Self {
            agent: id("agent_id", value.agent_id, AgentId::new)?,
            on_behalf_of: value.on_behalf_of.map(on_behalf_of).transpose()?,
            correlation: correlation(&value.correlation_id)?,
            command,
        })
    }
}

impl From<&Ack> for proto::Ack {
    fn from(ack: &Ack) -> Self {
        Self {
            stream_id: ack.stream_id.clone(),
            seq: ack.seq.0,
            unchanged: ack.unchanged,
            message_id: ack
                .message_id
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<proto::Ack> for Ack {
    type Error = CommandError;

    fn try_from(ack: proto::Ack) -> Result<Self, CommandError> {
        Ok(Self {
            stream_id: ack.stream_id,
            seq: Seq(ack.seq),
            unchanged: ack.unchanged,
            message_id: opt_id("message_id", Some(ack.message_id), MessageId::new)?,
        })
    }
}

mod to_proto;

pub(crate) use to_proto::{
    channel_to_proto, policy_to_proto, priority_to_proto, role_to_proto, status_to_proto,
};

#[cfg(test)]
pub(super) mod tests;
