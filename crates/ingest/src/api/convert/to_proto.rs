//! Commands to messages: what [`crate::api::client::GrpcCommands`] sends to an ingest
//! instance, and what the HTTP API turns its JSON into before the shared protobuf path.

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{AssignmentPolicy, Channel, Priority, TransferTarget};
use switchboard_events::principal::{Principal, Role};

use super::{AgentRequest, ConversationRequest};
use crate::api::proto::{self, agent_command, conversation_command, transfer};
use crate::command::{AgentCommand, ConversationCommand};

pub(crate) fn role_to_proto(role: Role) -> proto::Role {
    match role {
        Role::Customer => proto::Role::Customer,
        Role::Agent => proto::Role::Agent,
        Role::Supervisor => proto::Role::Supervisor,
        Role::Auditor => proto::Role::Auditor,
        Role::Service => proto::Role::Service,
    }
}

pub(crate) fn channel_to_proto(channel: Channel) -> proto::Channel {
    match channel {
        Channel::Web => proto::Channel::Web,
        Channel::Email => proto::Channel::Email,
        Channel::Sms => proto::Channel::Sms,
        Channel::Messenger => proto::Channel::Messenger,
        Channel::Api => proto::Channel::Api,
    }
}

pub(crate) fn priority_to_proto(priority: Priority) -> proto::Priority {
    match priority {
        Priority::Low => proto::Priority::Low,
        Priority::Normal => proto::Priority::Normal,
        Priority::High => proto::Priority::High,
        Priority::Urgent => proto::Priority::Urgent,
    }
}

pub(crate) fn policy_to_proto(policy: AssignmentPolicy) -> proto::AssignmentPolicy {
    match policy {
        AssignmentPolicy::Manual => proto::AssignmentPolicy::Manual,
        AssignmentPolicy::RoundRobin => proto::AssignmentPolicy::RoundRobin,
        AssignmentPolicy::LeastBusy => proto::AssignmentPolicy::LeastBusy,
        AssignmentPolicy::SkillsMatch => proto::AssignmentPolicy::SkillsMatch,
        AssignmentPolicy::VipFirst => proto::AssignmentPolicy::VipFirst,
    }
}

pub(crate) fn status_to_proto(status: AgentStatus) -> proto::AgentStatus {
    match status {
        AgentStatus::Online => proto::AgentStatus::Online,
        AgentStatus::Away => proto::AgentStatus::Away,
        AgentStatus::Offline => proto::AgentStatus::Offline,
    }
}

fn on_behalf_of_to_proto(principal: &Principal) -> proto::OnBehalfOf {
    proto::OnBehalfOf {
        tenant_id: principal.tenant.to_string(),
        role: role_to_proto(principal.role).into(),
        subject: principal.subject.to_string(),
    }
}

fn strings<T: AsRef<str>>(values: &[T]) -> Vec<String> {
    values.iter().map(|v| v.as_ref().to_owned()).collect()
}

fn conversation_command_to_proto(command: &ConversationCommand) -> conversation_command::Command {
    use ConversationCommand as C;
    use conversation_command::Command as P;
    match command {
        C::Open(o) => P::Open(proto::Open {
            customer_id: o.customer_id.to_string(),
            channel: channel_to_proto(o.channel).into(),
            priority: Some(priority_to_proto(o.priority).into()),
            team_id: o
                .team_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            required_skills: strings(&o.required_skills),
            vip: o.vip,
            attributes: o.attributes.clone().into_iter().collect(),
            customer_name: o.customer_name.clone(),
            customer_email: o.customer_email.clone(),
        }),
        C::PostMessage(p) => P::PostMessage(proto::PostMessage {
            client_msg_id: p.client_msg_id.to_string(),
            body: p.body.clone(),
            attachments: p
                .attachments
                .iter()
                .map(|a| proto::Attachment {
                    attachment_id: a.attachment_id.clone(),
                    file_name: a.file_name.clone(),
                    content_type: a.content_type.clone(),
                    size_bytes: a.size_bytes,
                    url: a.url.clone(),
                })
                .collect(),
            private_note: p.private_note,
        }),
        C::EditMessage { message_id, body } => P::EditMessage(proto::EditMessage {
            message_id: message_id.to_string(),
            body: body.clone(),
        }),
        C::RedactMessage { message_id, reason } => P::RedactMessage(proto::RedactMessage {
            message_id: message_id.to_string(),
            reason: reason.clone(),
        }),
        C::MarkRead { up_to_seq } => P::MarkRead(proto::MarkRead {
            up_to_seq: up_to_seq.0,
        }),
        C::Assign { agent_id, policy } => P::Assign(proto::Assign {
            agent_id: agent_id.to_string(),
            policy: Some(policy_to_proto(*policy).into()),
        }),
        C::Transfer { to, reason } => P::Transfer(proto::Transfer {
            to: Some(match to {
                TransferTarget::Agent { agent_id } => transfer::To::AgentId(agent_id.to_string()),
                TransferTarget::Team { team_id } => transfer::To::TeamId(team_id.to_string()),
            }),
            reason: reason.clone(),
        }),
        C::Queue { team_id, reason } => P::Queue(proto::Queue {
            team_id: team_id.as_ref().map(ToString::to_string),
            reason: reason.clone(),
        }),
        C::Tag { tag } => P::Tag(proto::Tag {
            tag: tag.to_string(),
        }),
        C::Untag { tag } => P::Untag(proto::Tag {
            tag: tag.to_string(),
        }),
        C::SetPriority { priority } => P::SetPriority(proto::SetPriority {
            priority: priority_to_proto(*priority).into(),
        }),
        C::Snooze { until } => P::Snooze(proto::Snooze {
            until_micros: until.as_micros(),
        }),
        C::Resolve => P::Resolve(proto::Resolve {}),
        C::Reopen { reason } => P::Reopen(proto::Reopen {
            reason: reason.clone(),
        }),
        C::Rate { score, comment } => P::Rate(proto::Rate {
            score: *score,
            comment: comment.clone(),
        }),
        C::EraseCustomer { reason } => P::EraseCustomer(proto::EraseCustomer {
            reason: reason.clone(),
        }),
    }
}

impl From<&ConversationRequest> for proto::ConversationCommand {
    fn from(request: &ConversationRequest) -> Self {
        Self {
            conversation_id: request
                .conversation
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            on_behalf_of: request.on_behalf_of.as_ref().map(on_behalf_of_to_proto),
            correlation_id: request.correlation.0.hyphenated().to_string(),
            command: Some(conversation_command_to_proto(&request.command)),
        }
    }
}

impl From<&AgentRequest> for proto::AgentCommand {
    fn from(request: &AgentRequest) -> Self {
        use agent_command::Command as P;
        Self {
            agent_id: request.agent.to_string(),
            on_behalf_of: request.on_behalf_of.as_ref().map(on_behalf_of_to_proto),
            correlation_id: request.correlation.0.hyphenated().to_string(),
            command: Some(match &request.command {
                AgentCommand::SetStatus { status } => P::SetStatus(status_to_proto(*status).into()),
                AgentCommand::SetCapacity { max_conversations } => {
                    P::SetCapacity(*max_conversations)
                }
                AgentCommand::SetSkills { skills } => P::SetSkills(proto::Skills {
                    skills: strings(skills),
                }),
                AgentCommand::ConfigureTenant { create, patch } => {
                    P::ConfigureTenant(proto::ConfigureTenant {
                        create: *create,
                        patch_json: patch.to_string(),
                    })
                }
            }),
        }
    }
}
