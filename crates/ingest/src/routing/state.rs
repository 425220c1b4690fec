//! What the router knows of one tenant, folded from its conversation and agent events.
//!
//! The fold does not depend on how the streams interleave: each conversation and each agent is
//! folded in its own order (events at or below a stream's last seq are skipped, so applying an
//! event twice is applying it once), and the only facts that span streams — who was given work
//! most recently, the recent departures from the queue — are maxima over event ids. Rebuilding
//! from partitions read in any order gives the same state.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::{Priority, TransferTarget};
use switchboard_events::envelope::ActorKind;
use switchboard_events::id::{
    AgentId, ClientMsgId, ConversationId, CustomerId, EventId, Label, TeamId,
};
use switchboard_events::{AgentEvent, AgentPayload, ConversationEvent, ConversationPayload};
use switchboard_events::{Seq, Timestamp};

pub use crate::conversation::Status;

/// How many recent departures from the queue the wait estimate remembers.
pub const DEPARTURES_KEPT: usize = 32;

/// A conversation as routing sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RoutedConversation {
    /// `None` only for a forgotten conversation that staff reopened: its customer went with
    /// it (`forgotten_and_reopened`), and it counts against no customer's caps.
    pub customer: Option<CustomerId>,
    pub status: Status,
    pub assignee: Option<AgentId>,
    pub team: Option<TeamId>,
    pub priority: Priority,
    pub vip: bool,
    pub required_skills: BTreeSet<Label>,
    /// Since when it has waited for an agent (meaningful while waiting).
    pub waiting_since: Timestamp,
    /// When the current agent got it (meaningful while assigned).
    pub assigned_at: Timestamp,
    /// Whether the current agent has written to the customer since they got it.
    pub answered: bool,
    /// How often it was reopened: each reopening may get its own offline message.
    pub episode: u32,
    /// Whether the offline message of this episode was posted.
    pub offline_notice_sent: bool,
    pub last_seq: Seq,
}

impl RoutedConversation {
    /// Waiting for an agent: open or queued, nobody has it.
    pub fn is_waiting(&self) -> bool {
        matches!(self.status, Status::Open | Status::Queued)
    }

    /// The agent whose load it counts against: assigned and neither snoozed nor resolved.
    pub fn holder(&self) -> Option<&AgentId> {
        match self.status {
            Status::Assigned => self.assignee.as_ref(),
            _ => None,
        }
    }

    /// What it adds to its customer's load.
    fn load(&self) -> CustomerLoad {
        CustomerLoad {
            open: usize::from(self.status != Status::Resolved),
            waiting: usize::from(self.is_waiting()),
        }
    }
}

/// A customer's conversations that are not resolved, and those of them waiting for an agent:
/// what admission counts against the customer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CustomerLoad {
    pub open: usize,
    pub waiting: usize,
}

impl CustomerLoad {
    fn is_zero(self) -> bool {
        self == Self::default()
    }
}

/// An agent as routing sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RoutedAgent {
    pub status: AgentStatus,
    /// `None` until the agent sets one; the tenant's default applies meanwhile.
    pub capacity: Option<u32>,
    pub skills: BTreeSet<Label>,
    /// The conversations the agent holds now.
    pub open: BTreeSet<ConversationId>,
    /// The event that last gave the agent a conversation (event ids order by time).
    pub last_given: Option<EventId>,
    pub last_seq: Seq,
}

impl Default for RoutedAgent {
    fn default() -> Self {
        Self {
            status: AgentStatus::Offline,
            capacity: None,
            skills: BTreeSet::new(),
            open: BTreeSet::new(),
            last_given: None,
            last_seq: Seq(0),
        }
    }
}

/// One tenant's queues and agent load.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct TenantState {
    pub conversations: BTreeMap<ConversationId, RoutedConversation>,
    pub agents: BTreeMap<AgentId, RoutedAgent>,
    /// The latest times a waiting conversation got an agent, newest last.
    pub departures: BTreeSet<(Timestamp, EventId)>,
    /// The load of every customer with a conversation that is not resolved.
    pub customers: BTreeMap<CustomerId, CustomerLoad>,
    /// The resolved conversations, by when they were resolved: the first to forget.
    pub resolved: BTreeSet<(Timestamp, ConversationId)>,
}

/// The client message id of a conversation's offline message: derived from the conversation
/// and the episode, so a retried post is the same message and a reopening gets a new one.
pub fn offline_notice_id(conversation: &ConversationId, episode: u32) -> ClientMsgId {
    ClientMsgId::new(format!("router-offline-{conversation}-{episode}"))
        .expect("a conversation id and a number make a valid client message id")
}

impl TenantState {
    /// Folds one agent event.
    pub fn apply_agent(&mut self, event: &AgentEvent) {
        if let AgentPayload::TenantSettingsChanged(_) = event.payload {
            return; // the router's configuration, not an agent: `Router::apply_agent`
        }
        let agent = self
            .agents
            .entry(event.envelope.agent_id.clone())
            .or_default();
        if event.envelope.seq <= agent.last_seq {
            return;
        }
        agent.last_seq = event.envelope.seq;
        match &event.payload {
            AgentPayload::StatusChanged(s) => agent.status = s.status,
            AgentPayload::CapacityChanged(c) => {
                agent.capacity = Some(u32::try_from(c.max_conversations).unwrap_or(0));
            }
            AgentPayload::SkillsChanged(s) => agent.skills = s.skills.iter().cloned().collect(),
            AgentPayload::TenantSettingsChanged(_) => {}
        }
    }

    /// Folds one conversation event.
    pub fn apply_conversation(&mut self, event: &ConversationEvent) {
        let envelope = &event.envelope;
        let id = &envelope.conversation_id;
        let at = envelope.occurred_at;
        if let ConversationPayload::Opened(opened) = &event.payload {
            if self.conversations.contains_key(id) {
                return;
            }
            let c = RoutedConversation {
                customer: Some(opened.customer_id.clone()),
                status: Status::Open,
                assignee: None,
                team: opened.team_id.clone(),
                priority: opened.priority,
                vip: opened.vip,
                required_skills: opened.required_skills.iter().cloned().collect(),
                waiting_since: at,
                assigned_at: at,
                answered: false,
                episode: 0,
                offline_notice_sent: false,
                last_seq: envelope.seq,
            };
            add_load(
                &mut self.customers,
                c.customer.as_ref(),
                CustomerLoad::default(),
                c.load(),
            );
            self.conversations.insert(id.clone(), c);
            return;
        }
        if !self.conversations.contains_key(id) {
            // Opened before the retained log, or resolved and forgotten (`forget_resolved`):
            // nothing to route until a reopening, which waits for any agent.
            if let ConversationPayload::Reopened(_) = &event.payload {
                let c = forgotten_and_reopened(event);
                add_load(
                    &mut self.customers,
                    c.customer.as_ref(),
                    CustomerLoad::default(),
                    c.load(),
                );
                self.conversations.insert(id.clone(), c);
            }
            return;
        }
        let c = self.conversations.get_mut(id).expect("checked just above");
        if envelope.seq <= c.last_seq {
            return;
        }
        c.last_seq = envelope.seq;
        let load_before = c.load();
        let was_resolved = c.status == Status::Resolved;
        let holder_before = c.holder().cloned();
        let was_waiting = c.is_waiting();
        let mut given_to = None;
        match &event.payload {
            ConversationPayload::Opened(_) => {}
            ConversationPayload::MessagePosted(m) => {
                let actor = &envelope.actor;
                match actor.kind {
                    ActorKind::Agent
                        if !m.private_note
                            && c.assignee
                                .as_ref()
                                .is_some_and(|a| a.as_str() == actor.id.as_str()) =>
                    {
                        c.answered = true;
                    }
                    ActorKind::Customer if c.status == Status::Snoozed => wake(c, at),
                    ActorKind::System if m.client_msg_id == offline_notice_id(id, c.episode) => {
                        c.offline_notice_sent = true;
                    }
                    _ => {}
                }
            }
            ConversationPayload::AgentAssigned(a) => given_to = Some(a.agent_id.clone()),
            ConversationPayload::Transferred(t) => match &t.to {
                TransferTarget::Agent { agent_id } => given_to = Some(agent_id.clone()),
                TransferTarget::Team { team_id } => {
                    c.team = Some(team_id.clone());
                    unassign(c, at, was_waiting);
                }
            },
            ConversationPayload::Queued(q) => {
                if q.team_id.is_some() {
                    c.team = q.team_id.clone();
                }
                unassign(c, at, was_waiting);
            }
            ConversationPayload::PriorityChanged(p) => c.priority = p.priority,
            ConversationPayload::Snoozed(_) => c.status = Status::Snoozed,
            ConversationPayload::Resolved(_) => c.status = Status::Resolved,
            ConversationPayload::Reopened(_) => {
                c.episode += 1;
                c.offline_notice_sent = false;
                wake(c, at);
            }
            ConversationPayload::MessageEdited(_)
            | ConversationPayload::MessageRedacted(_)
            | ConversationPayload::ParticipantRead(_)
            | ConversationPayload::Tagged(_)
            | ConversationPayload::Untagged(_)
            | ConversationPayload::Rated(_)
            | ConversationPayload::CustomerDataErased(_) => {}
        }
        if let Some(agent) = &given_to {
            c.assignee = Some(agent.clone());
            c.status = Status::Assigned;
            c.assigned_at = at;
            c.answered = false;
            let given = self.agents.entry(agent.clone()).or_default();
            given.last_given = given.last_given.max(Some(envelope.event_id));
            if was_waiting {
                self.departures.insert((at, envelope.event_id));
                while self.departures.len() > DEPARTURES_KEPT {
                    self.departures.pop_first();
                }
            }
        }
        add_load(
            &mut self.customers,
            c.customer.as_ref(),
            load_before,
            c.load(),
        );
        match (was_resolved, c.status == Status::Resolved) {
            (false, true) => {
                self.resolved.insert((at, id.clone()));
            }
            (true, false) => self.resolved.retain(|(_, r)| r != id),
            _ => {}
        }
        let holder_after = c.holder().cloned();
        if holder_before != holder_after {
            if let Some(before) = holder_before {
                self.agents.entry(before).or_default().open.remove(id);
            }
            if let Some(after) = holder_after {
                self.agents
                    .entry(after)
                    .or_default()
                    .open
                    .insert(id.clone());
            }
        }
    }

    /// Forgets the resolved conversations beyond the `keep` resolved most recently, and
    /// returns them. What a reopening of one of them loses is in `forgotten_and_reopened`.
    pub fn forget_resolved(&mut self, keep: usize) -> Vec<ConversationId> {
        let mut forgotten = Vec::new();
        while self.resolved.len() > keep {
            let Some((_, id)) = self.resolved.pop_first() else {
                break;
            };
            self.conversations.remove(&id);
            forgotten.push(id);
        }
        forgotten
    }

    /// The conversations waiting for an agent.
    pub fn waiting(&self) -> impl Iterator<Item = (&ConversationId, &RoutedConversation)> {
        self.conversations.iter().filter(|(_, c)| c.is_waiting())
    }
}

/// Moves a customer's load from what a conversation added before to what it adds now.
fn add_load(
    customers: &mut BTreeMap<CustomerId, CustomerLoad>,
    customer: Option<&CustomerId>,
    before: CustomerLoad,
    after: CustomerLoad,
) {
    let Some(customer) = customer else {
        return;
    };
    if before == after {
        return;
    }
    let load = customers.entry(customer.clone()).or_default();
    load.open = (load.open + after.open).saturating_sub(before.open);
    load.waiting = (load.waiting + after.waiting).saturating_sub(before.waiting);
    if load.is_zero() {
        customers.remove(customer);
    }
}

/// A reopened conversation the router had forgotten: it waits for any agent, with the
/// defaults of an open (its agent, team, priority and skills went with it), and its episode
/// is taken from the seq, so that its offline message is a new one. Its customer is known
/// only when they reopen it themselves.
fn forgotten_and_reopened(event: &ConversationEvent) -> RoutedConversation {
    let envelope = &event.envelope;
    let customer = match envelope.actor.kind {
        ActorKind::Customer => CustomerId::new(envelope.actor.id.as_str()).ok(),
        _ => None,
    };
    RoutedConversation {
        customer,
        status: Status::Open,
        assignee: None,
        team: None,
        priority: Priority::Normal,
        vip: false,
        required_skills: BTreeSet::new(),
        waiting_since: envelope.occurred_at,
        assigned_at: envelope.occurred_at,
        answered: false,
        episode: u32::try_from(envelope.seq.0).unwrap_or(u32::MAX),
        offline_notice_sent: false,
        last_seq: envelope.seq,
    }
}

/// Back to work after a snooze or a reopening: to its agent if it has one, else to the queue.
fn wake(c: &mut RoutedConversation, at: Timestamp) {
    if c.assignee.is_some() {
        c.status = Status::Assigned;
        c.assigned_at = at;
        c.answered = false;
    } else {
        c.status = Status::Open;
        c.waiting_since = at;
    }
}

/// Nobody has it any more; a conversation that was already waiting keeps its place.
fn unassign(c: &mut RoutedConversation, at: Timestamp, was_waiting: bool) {
    c.assignee = None;
    c.status = Status::Queued;
    if !was_waiting {
        c.waiting_since = at;
    }
}
