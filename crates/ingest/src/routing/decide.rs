//! The routing rules: which waiting conversation gets which agent, and what happens to a
//! conversation whose agent went offline or does not answer.
//!
//! 1. The conversations that need an agent are those waiting (open or queued), those held by
//!    an agent who is offline, and those whose agent has not written to the customer within
//!    the no-answer timeout since getting them.
//! 2. They are served VIP first, then by priority (urgent first), then the longest waiting
//!    (a conversation whose agent failed it counts from when that agent got it), then by id.
//! 3. An agent can take a conversation when online (not away, not offline), below capacity
//!    (open conversations plus assignments in flight) and holding every required skill; the
//!    agent who failed the conversation is not considered. Among those, the tenant's
//!    [`Distribution`] picks one.
//! 4. Nobody can take it: an open conversation is queued, one of an offline agent goes back to
//!    the queue, one whose agent does not answer stays with that agent until someone can.
//! 5. Outside business hours nothing is assigned: open conversations are queued, every waiting
//!    customer gets the offline message once, conversations of offline agents are queued.
//!
//! Each assignment records the policy that chose it: `VipFirst` for a VIP conversation,
//! `SkillsMatch` when skills were required, else the distribution (`RoundRobin`, `LeastBusy`).

use std::cmp::Reverse;

use switchboard_events::Timestamp;
use switchboard_events::agent::AgentStatus;
use switchboard_events::conversation::AssignmentPolicy;
use switchboard_events::id::{AgentId, ClientMsgId, ConversationId, EventId, TeamId};

use crate::command::{ConversationCommand, PostMessage};
use crate::routing::config::{Distribution, micros};
use crate::routing::router::{InFlight, Router};
use crate::routing::state::{RoutedAgent, RoutedConversation, Status, offline_notice_id};

/// Why a conversation needs an agent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// It waits in the queue.
    Waiting,
    /// Its agent went offline.
    AgentOffline,
    /// Its agent did not answer in time.
    NoAnswer,
}

/// What the router decided; each becomes one command of the tenant's service principal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Decision {
    Assign {
        conversation: ConversationId,
        agent: AgentId,
        policy: AssignmentPolicy,
        /// The agent it moves away from.
        previous: Option<AgentId>,
        need: Need,
    },
    Queue {
        conversation: ConversationId,
        team: Option<TeamId>,
        reason: String,
    },
    /// The offline message, posted as the system with an id derived from the conversation.
    PostOfflineMessage {
        conversation: ConversationId,
        client_msg_id: ClientMsgId,
        body: String,
    },
}

impl Decision {
    pub fn conversation(&self) -> &ConversationId {
        match self {
            Self::Assign { conversation, .. }
            | Self::Queue { conversation, .. }
            | Self::PostOfflineMessage { conversation, .. } => conversation,
        }
    }

    /// The command that carries the decision out.
    pub fn command(&self) -> ConversationCommand {
        match self {
            Self::Assign { agent, policy, .. } => ConversationCommand::Assign {
                agent_id: agent.clone(),
                policy: *policy,
            },
            Self::Queue { team, reason, .. } => ConversationCommand::Queue {
                team_id: team.clone(),
                reason: Some(reason.clone()),
            },
            Self::PostOfflineMessage {
                client_msg_id,
                body,
                ..
            } => ConversationCommand::PostMessage(PostMessage {
                client_msg_id: client_msg_id.clone(),
                body: body.clone(),
                attachments: vec![],
                private_note: false,
            }),
        }
    }
}

pub(crate) const CLOSED: &str = "outside business hours";
pub(crate) const NO_AGENT: &str = "no agent available";
pub(crate) const AGENT_OFFLINE: &str = "the agent went offline";

/// Who was given a conversation most recently: in flight beats folded beats never.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Recency {
    Never,
    Given(EventId),
    InFlight(u64),
}

struct Demand {
    id: ConversationId,
    need: Need,
    since: Timestamp,
    failed_by: Option<AgentId>,
}

impl Router {
    /// Decides what to do at `now`. The conversations decided are in flight until
    /// [`Router::settle`] (and the fold of their events) or [`Router::abandon`].
    pub fn decide(&mut self, now: Timestamp) -> Vec<Decision> {
        let mut demands = self.demands(now);
        let conversations = &self.state.conversations;
        demands.sort_by_key(|d| {
            let c = &conversations[&d.id];
            (Reverse(c.vip), Reverse(c.priority), d.since, d.id.clone())
        });
        let open = self.is_open(now);
        let mut out = Vec::new();
        for demand in demands {
            let c = &self.state.conversations[&demand.id];
            let queue = |reason: &str| Decision::Queue {
                conversation: demand.id.clone(),
                team: c.team.clone(),
                reason: reason.to_owned(),
            };
            let agent = if open {
                self.pick(c, demand.failed_by.as_ref())
            } else {
                None
            };
            let mut decided = Vec::new();
            match (agent, demand.need) {
                (Some(agent), need) => decided.push(Decision::Assign {
                    conversation: demand.id.clone(),
                    policy: self.policy(c),
                    previous: c.assignee.clone(),
                    agent,
                    need,
                }),
                (None, Need::AgentOffline) => decided.push(queue(AGENT_OFFLINE)),
                (None, Need::Waiting) if !open => {
                    if c.status == Status::Open {
                        decided.push(queue(CLOSED));
                    }
                    if !c.offline_notice_sent {
                        decided.push(Decision::PostOfflineMessage {
                            conversation: demand.id.clone(),
                            client_msg_id: offline_notice_id(&demand.id, c.episode),
                            body: self.config.offline_message.clone(),
                        });
                    }
                }
                (None, Need::Waiting) if c.status == Status::Open => {
                    decided.push(queue(NO_AGENT));
                }
                (None, _) => {}
            }
            for decision in decided {
                self.issued += 1;
                let agent = match &decision {
                    Decision::Assign { agent, .. } => Some(agent.clone()),
                    _ => None,
                };
                let flight = self.in_flight.entry(demand.id.clone()).or_insert(InFlight {
                    agent: None,
                    order: 0,
                    until_seq: None,
                });
                flight.order = self.issued;
                flight.agent = flight.agent.take().or(agent);
                out.push(decision);
            }
        }
        out
    }

    fn demands(&self, now: Timestamp) -> Vec<Demand> {
        let timeout = micros(self.config.no_answer_timeout);
        let mut demands = Vec::new();
        for (id, c) in &self.state.conversations {
            if self.in_flight.contains_key(id) || self.refused.get(id) == Some(&c.last_seq) {
                continue;
            }
            if c.is_waiting() {
                demands.push(Demand {
                    id: id.clone(),
                    need: Need::Waiting,
                    since: c.waiting_since,
                    failed_by: None,
                });
                continue;
            }
            let Some(holder) = c.holder() else { continue };
            let offline = self
                .state
                .agents
                .get(holder)
                .is_none_or(|a| a.status == AgentStatus::Offline);
            let overdue = !c.answered && now.as_micros() >= c.assigned_at.as_micros() + timeout;
            let need = match (offline, overdue) {
                (true, _) => Need::AgentOffline,
                (false, true) => Need::NoAnswer,
                (false, false) => continue,
            };
            demands.push(Demand {
                id: id.clone(),
                need,
                since: c.assigned_at,
                failed_by: Some(holder.clone()),
            });
        }
        demands
    }

    /// The policy an assignment records.
    fn policy(&self, c: &RoutedConversation) -> AssignmentPolicy {
        if c.vip {
            AssignmentPolicy::VipFirst
        } else if !c.required_skills.is_empty() {
            AssignmentPolicy::SkillsMatch
        } else {
            match self.config.distribution {
                Distribution::RoundRobin => AssignmentPolicy::RoundRobin,
                Distribution::LeastBusy => AssignmentPolicy::LeastBusy,
            }
        }
    }

    /// The agent to give `c` to, if anyone can take it.
    fn pick(&self, c: &RoutedConversation, failed_by: Option<&AgentId>) -> Option<AgentId> {
        let candidates = self.state.agents.iter().filter(|(id, agent)| {
            agent.status == AgentStatus::Online
                && Some(*id) != failed_by
                && c.required_skills.is_subset(&agent.skills)
                && self.load(id, agent) < self.capacity(agent)
        });
        let chosen = match self.config.distribution {
            Distribution::RoundRobin => {
                candidates.min_by_key(|(id, agent)| (self.recency(id, agent), *id))
            }
            Distribution::LeastBusy => candidates
                .min_by_key(|(id, agent)| (self.load(id, agent), self.recency(id, agent), *id)),
        };
        chosen.map(|(id, _)| id.clone())
    }

    fn capacity(&self, agent: &RoutedAgent) -> usize {
        agent.capacity.unwrap_or(self.config.default_capacity) as usize
    }

    /// Open conversations plus assignments in flight to the agent.
    pub(crate) fn load(&self, id: &AgentId, agent: &RoutedAgent) -> usize {
        let in_flight = self
            .in_flight
            .iter()
            .filter(|(c, f)| f.agent.as_ref() == Some(id) && !agent.open.contains(*c))
            .count();
        agent.open.len() + in_flight
    }

    fn recency(&self, id: &AgentId, agent: &RoutedAgent) -> Recency {
        let in_flight = self
            .in_flight
            .values()
            .filter(|f| f.agent.as_ref() == Some(id))
            .map(|f| f.order)
            .max();
        match (in_flight, agent.last_given) {
            (Some(order), _) => Recency::InFlight(order),
            (None, Some(event)) => Recency::Given(event),
            (None, None) => Recency::Never,
        }
    }
}
