//! What callers ask of the write side. Commands carry personal data in clear; the writer seals
//! it with the customer's key before anything reaches the log.

use std::collections::BTreeMap;

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{
    AssignmentPolicy, Attachment, Channel, Priority, TransferTarget,
};
use switchboard_events::id::{AgentId, ClientMsgId, CustomerId, Label, MessageId, TeamId};
use switchboard_events::{Seq, Timestamp};

/// A command on one conversation.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ConversationCommand {
    Open(OpenConversation),
    PostMessage(PostMessage),
    EditMessage {
        message_id: MessageId,
        body: String,
    },
    RedactMessage {
        message_id: MessageId,
        reason: Option<String>,
    },
    MarkRead {
        up_to_seq: Seq,
    },
    Assign {
        agent_id: AgentId,
        policy: AssignmentPolicy,
    },
    Transfer {
        to: TransferTarget,
        reason: Option<String>,
    },
    Queue {
        team_id: Option<TeamId>,
        reason: Option<String>,
    },
    Tag {
        tag: Label,
    },
    Untag {
        tag: Label,
    },
    SetPriority {
        priority: Priority,
    },
    Snooze {
        until: Timestamp,
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

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OpenConversation {
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub priority: Priority,
    pub team_id: Option<TeamId>,
    pub required_skills: Vec<Label>,
    pub vip: bool,
    pub attributes: BTreeMap<String, String>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PostMessage {
    pub client_msg_id: ClientMsgId,
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub private_note: bool,
}

impl ConversationCommand {
    /// A short name for logs, metrics and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open(_) => "open",
            Self::PostMessage(_) => "post_message",
            Self::EditMessage { .. } => "edit_message",
            Self::RedactMessage { .. } => "redact_message",
            Self::MarkRead { .. } => "mark_read",
            Self::Assign { .. } => "assign",
            Self::Transfer { .. } => "transfer",
            Self::Queue { .. } => "queue",
            Self::Tag { .. } => "tag",
            Self::Untag { .. } => "untag",
            Self::SetPriority { .. } => "set_priority",
            Self::Snooze { .. } => "snooze",
            Self::Resolve => "resolve",
            Self::Reopen { .. } => "reopen",
            Self::Rate { .. } => "rate",
            Self::EraseCustomer { .. } => "erase_customer",
        }
    }
}

/// A command on one agent, or on the tenant's settings (the agent topic's reserved stream
/// [`switchboard_events::tenant::TENANT_STREAM`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AgentCommand {
    SetStatus {
        status: AgentStatus,
    },
    SetCapacity {
        max_conversations: i32,
    },
    SetSkills {
        skills: Vec<Label>,
    },
    /// Creates the tenant (`create`: its settings are `patch` over the defaults) or changes
    /// its settings (`patch` is a JSON merge patch, RFC 7396, over the current settings).
    ConfigureTenant {
        create: bool,
        patch: serde_json::Value,
    },
}

impl AgentCommand {
    /// A short name for logs, metrics and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SetStatus { .. } => "set_status",
            Self::SetCapacity { .. } => "set_capacity",
            Self::SetSkills { .. } => "set_skills",
            Self::ConfigureTenant { create: true, .. } => "create_tenant",
            Self::ConfigureTenant { create: false, .. } => "set_tenant_settings",
        }
    }
}

/// The limits commands are checked against. The defaults suit a chat product; a tenant's
/// configuration may lower them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_attachments: usize,
    pub max_attachment_bytes: i64,
    pub max_reason_bytes: usize,
    pub max_comment_bytes: usize,
    pub max_attributes: usize,
    pub max_attribute_bytes: usize,
    pub max_skills: usize,
    pub max_tags: usize,
    pub max_capacity: i32,
    /// The furthest a conversation may be snoozed, in microseconds.
    pub max_snooze_micros: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            max_attachments: 10,
            max_attachment_bytes: 100 * 1024 * 1024,
            max_reason_bytes: 1024,
            max_comment_bytes: 2048,
            max_attributes: 32,
            max_attribute_bytes: 512,
            max_skills: 16,
            max_tags: 32,
            max_capacity: 100,
            max_snooze_micros: 365 * 24 * 3600 * 1_000_000,
        }
    }
}
