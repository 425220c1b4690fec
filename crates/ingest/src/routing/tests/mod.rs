//! Given events → expected decisions, for every routing rule. [`Given`] plays the writer: it
//! turns the router's decisions into the events the writer would append, so a test reads as a
//! story of events and decisions, and its log can be replayed.

mod admission;
mod driver;
mod end_to_end;
mod forgetting;
mod policy;
mod replay;
mod rules;

use std::collections::{BTreeMap, HashMap};

use switchboard_events::agent::{
    AgentCapacityChanged, AgentSkillsChanged, AgentStatus, AgentStatusChanged,
};
use switchboard_events::conversation::*;
use switchboard_events::envelope::{Actor, ActorKind, AgentEnvelope, ConversationEnvelope};
use switchboard_events::fixtures;
use switchboard_events::id::*;
use switchboard_events::{AgentEvent, AgentPayload, AnyEvent, ChainHash, ConversationEvent};
use switchboard_events::{ConversationPayload, Seq, Timestamp};
use uuid::Uuid;

use super::*;

/// 2026-01-05, a Monday, 10:00 UTC.
pub(crate) const T0: i64 = 1_767_571_200_000_000 + 10 * 3_600_000_000;

pub(crate) fn secs(s: i64) -> Timestamp {
    Timestamp(T0 + s * 1_000_000)
}

pub(crate) fn conv(id: &str) -> ConversationId {
    ConversationId::new(id).unwrap()
}

pub(crate) fn agent(id: &str) -> AgentId {
    AgentId::new(id).unwrap()
}

pub(crate) fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

pub(crate) fn customer(id: &str) -> CustomerId {
    CustomerId::new(id).unwrap()
}

pub(crate) fn opened() -> ConversationOpened {
    ConversationOpened {
        customer_id: fixtures::customer(),
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: BTreeMap::new(),
        customer_name: None,
        customer_email: None,
    }
}

/// A router and the log of events it was given, with a clock.
pub(crate) struct Given {
    pub router: Router,
    pub now: Timestamp,
    pub log: Vec<AnyEvent>,
    seqs: HashMap<String, u64>,
    events: u64,
}

pub(crate) fn given(config: RoutingConfig) -> Given {
    Given {
        router: Router::new(fixtures::tenant(), config),
        now: secs(0),
        log: Vec::new(),
        seqs: HashMap::new(),
        events: 0,
    }
}

impl Given {
    pub fn at(&mut self, seconds: i64) -> &mut Self {
        self.now = secs(seconds);
        self
    }

    fn next(&mut self, stream: &str) -> (Seq, EventId) {
        let seq = self.seqs.entry(stream.to_owned()).or_insert(0);
        *seq += 1;
        self.events += 1;
        (Seq(*seq), fixtures::event_id(self.events))
    }

    pub fn agent_event(&mut self, id: &str, payload: AgentPayload) -> &mut Self {
        let (seq, event_id) = self.next(&format!("agent/{id}"));
        let event = AgentEvent {
            envelope: AgentEnvelope {
                hash: ChainHash::GENESIS,
                prev_hash: ChainHash::GENESIS,
                seq,
                event_id,
                tenant_id: fixtures::tenant(),
                agent_id: agent(id),
                occurred_at: self.now,
                actor: Actor::new(ActorKind::Agent, id).unwrap(),
                correlation_id: CorrelationId(Uuid::nil()),
                causation_id: None,
            },
            payload,
        };
        self.router.apply_agent(&event);
        self.log.push(AnyEvent::Agent(event));
        self
    }

    pub fn status(&mut self, id: &str, status: AgentStatus) -> &mut Self {
        self.agent_event(id, AgentStatusChanged { status }.into())
    }

    /// An agent online with a capacity and skills.
    pub fn online(&mut self, id: &str, capacity: i32, skills: &[&str]) -> &mut Self {
        self.agent_event(
            id,
            AgentCapacityChanged {
                max_conversations: capacity,
            }
            .into(),
        );
        if !skills.is_empty() {
            let skills = skills.iter().map(|s| label(s)).collect();
            self.agent_event(id, AgentSkillsChanged { skills }.into());
        }
        self.status(id, AgentStatus::Online)
    }

    pub fn event(&mut self, id: &str, actor: Actor, payload: ConversationPayload) -> &mut Self {
        let (seq, event_id) = self.next(&format!("conversation/{id}"));
        let event = ConversationEvent {
            envelope: ConversationEnvelope {
                hash: ChainHash::GENESIS,
                prev_hash: ChainHash::GENESIS,
                seq,
                event_id,
                tenant_id: fixtures::tenant(),
                conversation_id: conv(id),
                occurred_at: self.now,
                actor,
                correlation_id: CorrelationId(Uuid::nil()),
                causation_id: None,
            },
            payload,
        };
        self.router.apply_conversation(&event);
        self.log.push(AnyEvent::Conversation(event));
        self
    }

    pub fn open(&mut self, id: &str) -> &mut Self {
        self.open_with(id, |_| {})
    }

    pub fn open_with(&mut self, id: &str, edit: impl FnOnce(&mut ConversationOpened)) -> &mut Self {
        let mut o = opened();
        edit(&mut o);
        let customer = Actor::new(ActorKind::Customer, "cust-1").unwrap();
        self.event(id, customer, o.into())
    }

    /// A conversation opened for another customer than the fixtures' one.
    pub fn open_for(&mut self, id: &str, customer: &CustomerId) -> &mut Self {
        self.open_with(id, |o| o.customer_id = customer.clone())
    }

    /// The agent replies to the customer.
    pub fn reply(&mut self, id: &str, by: &str) -> &mut Self {
        let n = self.events;
        let message = MessagePosted {
            message_id: MessageId::new(format!("m{n}")).unwrap(),
            client_msg_id: ClientMsgId::new(format!("cm{n}")).unwrap(),
            body: fixtures::sealed(1, "hello"),
            attachments: vec![],
            private_note: false,
        };
        self.event(
            id,
            Actor::new(ActorKind::Agent, by).unwrap(),
            message.into(),
        )
    }

    pub fn resolve(&mut self, id: &str) -> &mut Self {
        let customer = Actor::new(ActorKind::Customer, "cust-1").unwrap();
        self.event(id, customer, ConversationResolved {}.into())
    }

    /// What the router decides now, without carrying it out.
    pub fn decide(&mut self) -> Vec<String> {
        self.router.decide(self.now).iter().map(summary).collect()
    }

    /// What the router decides now, carried out as the writer would: each decision's events
    /// are appended, acknowledged and folded.
    pub fn route(&mut self) -> Vec<String> {
        let decisions = self.router.decide(self.now);
        for decision in &decisions {
            self.carry_out(decision, Actor::new(ActorKind::System, "router").unwrap());
            let id = decision.conversation();
            let seq = self.router.state().conversations[id].last_seq;
            self.router.settle(id, seq);
        }
        decisions.iter().map(summary).collect()
    }

    /// Appends the event a decision becomes.
    pub fn carry_out(&mut self, decision: &Decision, actor: Actor) {
        let payload: ConversationPayload = match decision {
            Decision::Assign {
                agent,
                policy,
                previous,
                ..
            } => AgentAssigned {
                agent_id: agent.clone(),
                policy: *policy,
                previous_agent_id: previous.clone(),
            }
            .into(),
            Decision::Queue { team, reason, .. } => ConversationQueued {
                team_id: team.clone(),
                reason: Some(reason.clone()),
            }
            .into(),
            Decision::PostOfflineMessage { client_msg_id, .. } => MessagePosted {
                message_id: MessageId::new(format!("m-{client_msg_id}")).unwrap(),
                client_msg_id: client_msg_id.clone(),
                body: fixtures::sealed(1, "closed"),
                attachments: vec![],
                private_note: false,
            }
            .into(),
        };
        self.event(decision.conversation().as_str(), actor, payload);
    }
}

/// A decision in one line.
pub(crate) fn summary(decision: &Decision) -> String {
    match decision {
        Decision::Assign {
            conversation,
            agent,
            policy,
            previous,
            ..
        } => match previous {
            Some(previous) => {
                format!("assign {conversation} to {agent} from {previous} ({policy:?})")
            }
            None => format!("assign {conversation} to {agent} ({policy:?})"),
        },
        Decision::Queue {
            conversation,
            reason,
            ..
        } => format!("queue {conversation}: {reason}"),
        Decision::PostOfflineMessage {
            conversation,
            client_msg_id,
            ..
        } => format!("offline message in {conversation} as {client_msg_id}"),
    }
}
