//! A conversation's state as the write side needs it to decide: folded from its events, so a
//! new owner rebuilds it exactly from the log.

use std::collections::{BTreeSet, HashMap};

use switchboard_events::conversation::Attachment;
use switchboard_events::conversation::{ConversationPayload, Priority, TransferTarget};
use switchboard_events::envelope::{ActorKind, Envelope};
use switchboard_events::id::{
    AgentId, ClientMsgId, ConversationId, CustomerId, Label, MessageId, PrincipalId, TeamId,
    TenantId,
};
use switchboard_events::personal::Sealed;
use switchboard_events::{ChainHash, ConversationEvent, Seq, Timestamp};

/// Where a conversation is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    /// Opened; not yet queued or assigned.
    Open,
    /// Waiting for an agent.
    Queued,
    /// An agent has it.
    Assigned,
    /// Set aside until a time; a customer message wakes it.
    Snoozed,
    Resolved,
}

/// What the write side remembers of a message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MessageInfo {
    pub seq: Seq,
    pub author: (ActorKind, PrincipalId),
    pub private_note: bool,
    pub redacted: bool,
}

/// A send as it was first accepted, so that a retry can be told from a conflicting reuse.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AcceptedSend {
    pub seq: Seq,
    pub message_id: MessageId,
    pub body: Sealed,
    pub private_note: bool,
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConversationState {
    pub tenant: TenantId,
    pub id: ConversationId,
    pub customer: CustomerId,
    pub status: Status,
    pub assignee: Option<AgentId>,
    pub team: Option<TeamId>,
    pub priority: Priority,
    pub vip: bool,
    pub required_skills: Vec<Label>,
    pub tags: BTreeSet<Label>,
    pub snoozed_until: Option<Timestamp>,
    pub rating: Option<i32>,
    pub erased: bool,
    pub last_seq: Seq,
    pub last_hash: ChainHash,
    pub last_activity: Timestamp,
    pub messages: HashMap<MessageId, MessageInfo>,
    pub sends: HashMap<ClientMsgId, AcceptedSend>,
    /// The highest seq each participant has read.
    pub read_marks: HashMap<(ActorKind, PrincipalId), Seq>,
}

/// Why events do not fold into a state: the log is not what the write side wrote.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum FoldError {
    #[error("conversation starts with seq {0} that is not an open")]
    NotOpened(Seq),
    #[error("seq {found} follows seq {last}")]
    Gap { last: Seq, found: Seq },
    #[error("seq {seq} does not link to the hash of seq {last}")]
    BrokenLink { last: Seq, seq: Seq },
    #[error("the tenant settings at seq {seq} do not read: {reason}")]
    Settings { seq: Seq, reason: String },
}

impl ConversationState {
    /// Folds a conversation's events, from seq 1, into its state.
    pub fn replay<'a>(
        events: impl IntoIterator<Item = &'a ConversationEvent>,
    ) -> Result<Option<Self>, FoldError> {
        let mut state: Option<Self> = None;
        for event in events {
            match &mut state {
                None => state = Some(Self::opened(event)?),
                Some(s) => s.apply(event)?,
            }
        }
        Ok(state)
    }

    /// The state after a conversation's first event.
    pub fn opened(event: &ConversationEvent) -> Result<Self, FoldError> {
        let (ConversationPayload::Opened(opened), Seq(1)) = (&event.payload, event.envelope.seq)
        else {
            return Err(FoldError::NotOpened(event.envelope.seq));
        };
        Ok(Self {
            tenant: event.envelope.tenant_id.clone(),
            id: event.envelope.conversation_id.clone(),
            customer: opened.customer_id.clone(),
            status: Status::Open,
            assignee: None,
            team: opened.team_id.clone(),
            priority: opened.priority,
            vip: opened.vip,
            required_skills: opened.required_skills.clone(),
            tags: BTreeSet::new(),
            snoozed_until: None,
            rating: None,
            erased: false,
            last_seq: Seq(1),
            last_hash: event.envelope.hash,
            last_activity: event.envelope.occurred_at,
            messages: HashMap::new(),
            sends: HashMap::new(),
            read_marks: HashMap::new(),
        })
    }

    /// Applies the next event.
    pub fn apply(&mut self, event: &ConversationEvent) -> Result<(), FoldError> {
        let envelope = &event.envelope;
        if envelope.seq != self.last_seq.next() {
            return Err(FoldError::Gap {
                last: self.last_seq,
                found: envelope.seq,
            });
        }
        if envelope.prev_hash() != self.last_hash {
            return Err(FoldError::BrokenLink {
                last: self.last_seq,
                seq: envelope.seq,
            });
        }
        let actor = (envelope.actor.kind, envelope.actor.id.clone());
        match &event.payload {
            ConversationPayload::Opened(_) => return Err(FoldError::NotOpened(envelope.seq)),
            ConversationPayload::MessagePosted(m) => {
                self.messages.insert(
                    m.message_id.clone(),
                    MessageInfo {
                        seq: envelope.seq,
                        author: actor.clone(),
                        private_note: m.private_note,
                        redacted: false,
                    },
                );
                self.sends.insert(
                    m.client_msg_id.clone(),
                    AcceptedSend {
                        seq: envelope.seq,
                        message_id: m.message_id.clone(),
                        body: m.body.clone(),
                        private_note: m.private_note,
                        attachments: m.attachments.clone(),
                    },
                );
                if actor.0 == ActorKind::Customer && self.status == Status::Snoozed {
                    self.wake();
                }
            }
            ConversationPayload::MessageEdited(_) => {}
            ConversationPayload::MessageRedacted(r) => {
                if let Some(message) = self.messages.get_mut(&r.message_id) {
                    message.redacted = true;
                }
            }
            ConversationPayload::AgentAssigned(a) => {
                self.assignee = Some(a.agent_id.clone());
                self.status = Status::Assigned;
            }
            ConversationPayload::Transferred(t) => match &t.to {
                TransferTarget::Agent { agent_id } => {
                    self.assignee = Some(agent_id.clone());
                    self.status = Status::Assigned;
                }
                TransferTarget::Team { team_id } => {
                    self.assignee = None;
                    self.team = Some(team_id.clone());
                    self.status = Status::Queued;
                }
            },
            ConversationPayload::Queued(q) => {
                self.assignee = None;
                if q.team_id.is_some() {
                    self.team = q.team_id.clone();
                }
                self.status = Status::Queued;
            }
            ConversationPayload::ParticipantRead(r) => {
                self.read_marks.insert(actor, r.up_to_seq);
            }
            ConversationPayload::Tagged(t) => {
                self.tags.insert(t.tag.clone());
            }
            ConversationPayload::Untagged(t) => {
                self.tags.remove(&t.tag);
            }
            ConversationPayload::PriorityChanged(p) => self.priority = p.priority,
            ConversationPayload::Snoozed(s) => {
                self.status = Status::Snoozed;
                self.snoozed_until = Some(s.until);
            }
            ConversationPayload::Resolved(_) => {
                self.status = Status::Resolved;
                self.snoozed_until = None;
            }
            ConversationPayload::Reopened(_) => self.wake(),
            ConversationPayload::Rated(r) => self.rating = Some(r.score),
            ConversationPayload::CustomerDataErased(_) => self.erased = true,
        }
        self.last_seq = envelope.seq;
        self.last_hash = envelope.hash;
        self.last_activity = envelope.occurred_at;
        Ok(())
    }

    fn wake(&mut self) {
        self.snoozed_until = None;
        self.status = if self.assignee.is_some() {
            Status::Assigned
        } else {
            Status::Open
        };
    }
}
