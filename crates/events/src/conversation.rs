//! Conversation events: topic `switchboard.conversations`, key = conversation id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::avro::wire::{Datum, Reader, record, symbols};
use crate::envelope::{ConversationEnvelope, Seq, Timestamp};
use crate::error::DecodeError;
use crate::event::{Event, payloads};
use crate::id::{AgentId, ClientMsgId, CustomerId, Label, MessageId, TeamId};
use crate::personal::Sealed;

/// A conversation event of record.
pub type ConversationEvent = Event<ConversationEnvelope, ConversationPayload>;

/// Where a conversation came in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Email,
    Sms,
    Messenger,
    Api,
}

symbols!(Channel {
    Web,
    Email,
    Sms,
    Messenger,
    Api
});

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

symbols!(Priority {
    Low,
    Normal,
    High,
    Urgent
});

/// How the router (or a person) chose the agent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentPolicy {
    Manual,
    RoundRobin,
    LeastBusy,
    SkillsMatch,
    VipFirst,
}

symbols!(AssignmentPolicy {
    Manual,
    RoundRobin,
    LeastBusy,
    SkillsMatch,
    VipFirst
});

/// A customer started a conversation.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationOpened {
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub priority: Priority,
    pub team_id: Option<TeamId>,
    pub required_skills: Vec<Label>,
    pub vip: bool,
    /// Free-form attributes from the tenant's site (plan, locale, page). Not personal data.
    pub attributes: BTreeMap<String, String>,
    pub customer_name: Option<Sealed>,
    pub customer_email: Option<Sealed>,
}

record!(ConversationOpened {
    customer_id,
    channel,
    priority,
    team_id,
    required_skills,
    vip,
    attributes,
    customer_name,
    customer_email,
});

/// Metadata of a file attached to a message; the file itself lives in object storage.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Attachment {
    pub attachment_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub url: String,
}

record!(Attachment {
    attachment_id,
    file_name,
    content_type,
    size_bytes,
    url
});

/// A message was posted. Its author is the envelope's actor.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MessagePosted {
    pub message_id: MessageId,
    pub client_msg_id: ClientMsgId,
    pub body: Sealed,
    pub attachments: Vec<Attachment>,
    /// A note between agents: never shown to the customer.
    pub private_note: bool,
}

record!(MessagePosted {
    message_id,
    client_msg_id,
    body,
    attachments,
    private_note
});

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MessageEdited {
    pub message_id: MessageId,
    pub body: Sealed,
}

record!(MessageEdited { message_id, body });

/// A message was withdrawn from view. Its sealed body stays in the log, so the chain verifies;
/// erasing the customer makes it unreadable.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MessageRedacted {
    pub message_id: MessageId,
    pub reason: Option<String>,
}

record!(MessageRedacted { message_id, reason });

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AgentAssigned {
    pub agent_id: AgentId,
    pub policy: AssignmentPolicy,
    /// Set when the conversation moved from another agent (offline, no answer in time).
    pub previous_agent_id: Option<AgentId>,
}

record!(AgentAssigned {
    agent_id,
    policy,
    previous_agent_id
});

/// Where a transfer goes: a named agent, or a team's queue.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TransferTarget {
    Agent { agent_id: AgentId },
    Team { team_id: TeamId },
}

impl Datum for TransferTarget {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Agent { agent_id } => {
                out.push(0);
                agent_id.write(out);
            }
            Self::Team { team_id } => {
                out.push(2);
                team_id.write(out);
            }
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.read_index(2)? {
            0 => Ok(Self::Agent {
                agent_id: AgentId::read(r)?,
            }),
            _ => Ok(Self::Team {
                team_id: TeamId::read(r)?,
            }),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationTransferred {
    pub from_agent_id: Option<AgentId>,
    pub to: TransferTarget,
    pub reason: Option<String>,
}

record!(ConversationTransferred {
    from_agent_id,
    to,
    reason
});

/// The conversation waits for an agent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationQueued {
    pub team_id: Option<TeamId>,
    pub reason: Option<String>,
}

record!(ConversationQueued { team_id, reason });

/// The actor has read the conversation up to and including `up_to_seq`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ParticipantRead {
    pub up_to_seq: Seq,
}

record!(ParticipantRead { up_to_seq });

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationTagged {
    pub tag: Label,
}

record!(ConversationTagged { tag });

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationUntagged {
    pub tag: Label,
}

record!(ConversationUntagged { tag });

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PriorityChanged {
    pub priority: Priority,
    pub previous: Priority,
}

record!(PriorityChanged { priority, previous });

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationSnoozed {
    pub until: Timestamp,
}

record!(ConversationSnoozed { until });

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationResolved {}

record!(ConversationResolved {});

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationReopened {
    pub reason: Option<String>,
}

record!(ConversationReopened { reason });

/// The customer's satisfaction score (CSAT), 1 to 5.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConversationRated {
    pub score: i32,
    pub comment: Option<Sealed>,
}

impl Datum for ConversationRated {
    fn write(&self, out: &mut Vec<u8>) {
        self.score.write(out);
        self.comment.write(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let score = i32::read(r)?;
        if !(1..=5).contains(&score) {
            return Err(DecodeError::InvalidValue {
                field: "score",
                reason: format!("{score} is outside 1..=5"),
            });
        }
        Ok(Self {
            score,
            comment: Option::read(r)?,
        })
    }
}

/// The customer's data key was destroyed: every sealed field of theirs is gone for good.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CustomerDataErased {
    pub customer_id: CustomerId,
    pub reason: Option<String>,
}

record!(CustomerDataErased {
    customer_id,
    reason
});

payloads! {
    /// What happened in a conversation.
    ConversationPayload for Conversations with ConversationEnvelope {
        Opened(ConversationOpened) = "switchboard.conversation.ConversationOpened",
        MessagePosted(MessagePosted) = "switchboard.conversation.MessagePosted",
        MessageEdited(MessageEdited) = "switchboard.conversation.MessageEdited",
        MessageRedacted(MessageRedacted) = "switchboard.conversation.MessageRedacted",
        AgentAssigned(AgentAssigned) = "switchboard.conversation.AgentAssigned",
        Transferred(ConversationTransferred) = "switchboard.conversation.ConversationTransferred",
        Queued(ConversationQueued) = "switchboard.conversation.ConversationQueued",
        ParticipantRead(ParticipantRead) = "switchboard.conversation.ParticipantRead",
        Tagged(ConversationTagged) = "switchboard.conversation.ConversationTagged",
        Untagged(ConversationUntagged) = "switchboard.conversation.ConversationUntagged",
        PriorityChanged(PriorityChanged) = "switchboard.conversation.PriorityChanged",
        Snoozed(ConversationSnoozed) = "switchboard.conversation.ConversationSnoozed",
        Resolved(ConversationResolved) = "switchboard.conversation.ConversationResolved",
        Reopened(ConversationReopened) = "switchboard.conversation.ConversationReopened",
        Rated(ConversationRated) = "switchboard.conversation.ConversationRated",
        CustomerDataErased(CustomerDataErased) = "switchboard.conversation.CustomerDataErased",
    }
}
