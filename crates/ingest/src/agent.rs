//! Agents on the write side: availability, capacity and skills, each change an event of the
//! agent's own chain (topic `switchboard.agents`, keyed by tenant). The tenant's settings
//! chain is a stream of the same topic ([`switchboard_events::tenant::TENANT_STREAM`]); its
//! state is an `AgentState` too, whose `settings` the tenant commands decide on
//! ([`crate::tenant`]).

use switchboard_events::agent::{
    AgentCapacityChanged, AgentPayload, AgentSkillsChanged, AgentStatus, AgentStatusChanged,
};
use switchboard_events::envelope::AgentEnvelope;
use switchboard_events::id::{AgentId, EventId, Label, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::tenant::{TENANT_STREAM, TenantSettings};
use switchboard_events::{AgentEvent, ChainHash, Seq};

use crate::command::{AgentCommand, Limits};
use crate::conversation::stamp::Cause;
use crate::error::CommandError;

/// An agent as the write side knows it. An agent nobody has written about yet is offline
/// with no capacity and no skills.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AgentState {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub status: AgentStatus,
    pub max_conversations: i32,
    pub skills: Vec<Label>,
    pub last_seq: Seq,
    pub last_hash: ChainHash,
    /// On the tenant's settings stream: the tenant's settings, once created.
    pub settings: Option<TenantSettings>,
}

impl AgentState {
    pub fn new(tenant: TenantId, agent: AgentId) -> Self {
        Self {
            tenant,
            agent,
            status: AgentStatus::Offline,
            max_conversations: 0,
            skills: Vec::new(),
            last_seq: Seq(0),
            last_hash: ChainHash::GENESIS,
            settings: None,
        }
    }

    /// Whether this is the tenant's settings stream rather than an agent.
    pub fn is_tenant_stream(&self) -> bool {
        self.agent.as_str() == TENANT_STREAM
    }

    /// Applies the agent's next event; events out of order are a corrupt log.
    pub fn apply(&mut self, event: &AgentEvent) -> Result<(), crate::conversation::FoldError> {
        let envelope = &event.envelope;
        if envelope.seq != self.last_seq.next() {
            return Err(crate::conversation::FoldError::Gap {
                last: self.last_seq,
                found: envelope.seq,
            });
        }
        if envelope.prev_hash != self.last_hash {
            return Err(crate::conversation::FoldError::BrokenLink {
                last: self.last_seq,
                seq: envelope.seq,
            });
        }
        match &event.payload {
            AgentPayload::StatusChanged(s) => self.status = s.status,
            AgentPayload::CapacityChanged(c) => self.max_conversations = c.max_conversations,
            AgentPayload::SkillsChanged(s) => self.skills = s.skills.clone(),
            AgentPayload::TenantSettingsChanged(s) => match s.document() {
                Ok(settings) => self.settings = Some(settings),
                Err(e) => {
                    return Err(crate::conversation::FoldError::Settings {
                        seq: envelope.seq,
                        reason: e.to_string(),
                    });
                }
            },
        }
        self.last_seq = envelope.seq;
        self.last_hash = envelope.hash;
        Ok(())
    }

    /// Decides an agent command: the payload to append, or `None` when nothing changes.
    pub fn decide(
        &self,
        principal: &Principal,
        command: &AgentCommand,
        limits: &Limits,
    ) -> Result<Option<AgentPayload>, CommandError> {
        if let AgentCommand::ConfigureTenant { create, patch } = command {
            if !self.is_tenant_stream() || principal.tenant != self.tenant {
                return Err(CommandError::invalid(
                    "agent_id",
                    format!("tenant commands go to the stream {TENANT_STREAM}"),
                ));
            }
            return Ok(
                crate::tenant::decide(self.settings.as_ref(), principal, *create, patch)?
                    .map(AgentPayload::from),
            );
        }
        if self.is_tenant_stream() {
            return Err(CommandError::invalid(
                "agent_id",
                format!("{TENANT_STREAM} is the tenant's settings, not an agent"),
            ));
        }
        let allowed = principal.tenant == self.tenant
            && match principal.role {
                Role::Agent => principal.is_agent(&self.agent),
                Role::Supervisor | Role::Service => true,
                Role::Customer | Role::Auditor => false,
            };
        if !allowed {
            return Err(CommandError::Forbidden {
                role: "this principal",
                action: "change this agent",
            });
        }
        Ok(match command {
            AgentCommand::SetStatus { status } => {
                (*status != self.status).then(|| AgentStatusChanged { status: *status }.into())
            }
            AgentCommand::SetCapacity { max_conversations } => {
                if !(0..=limits.max_capacity).contains(max_conversations) {
                    return Err(CommandError::invalid(
                        "max_conversations",
                        format!(
                            "{max_conversations} is not from 0 to {}",
                            limits.max_capacity
                        ),
                    ));
                }
                (*max_conversations != self.max_conversations).then(|| {
                    AgentCapacityChanged {
                        max_conversations: *max_conversations,
                    }
                    .into()
                })
            }
            AgentCommand::SetSkills { skills } => {
                let mut skills = skills.clone();
                skills.sort();
                skills.dedup();
                if skills.len() > limits.max_skills {
                    return Err(CommandError::invalid(
                        "skills",
                        format!("at most {}", limits.max_skills),
                    ));
                }
                (skills != self.skills).then(|| AgentSkillsChanged { skills }.into())
            }
            AgentCommand::ConfigureTenant { .. } => unreachable!("decided above"),
        })
    }

    /// The event that follows this state, with its frame.
    pub fn stamp(
        &self,
        cause: &Cause,
        payload: AgentPayload,
    ) -> Result<(AgentEvent, Vec<u8>), CommandError> {
        let mut event = AgentEvent {
            envelope: AgentEnvelope {
                hash: ChainHash::GENESIS,
                prev_hash: self.last_hash,
                seq: self.last_seq.next(),
                event_id: EventId::generate(),
                tenant_id: self.tenant.clone(),
                agent_id: self.agent.clone(),
                occurred_at: cause.now,
                actor: cause.actor.clone(),
                correlation_id: cause.correlation_id,
                causation_id: cause.causation_id,
            },
            payload,
        };
        let frame = event
            .encode_chained(self.last_hash)
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        Ok((event, frame))
    }
}

#[cfg(test)]
mod tests {
    use switchboard_events::Timestamp;
    use switchboard_events::id::{CorrelationId, PrincipalId};

    use super::*;

    fn principal(role: Role, id: &str) -> Principal {
        Principal::new(
            TenantId::new("acme").unwrap(),
            role,
            PrincipalId::new(id).unwrap(),
        )
    }

    fn run(
        state: &mut AgentState,
        who: &Principal,
        command: AgentCommand,
    ) -> Result<bool, CommandError> {
        let Some(payload) = state.decide(who, &command, &Limits::default())? else {
            return Ok(false);
        };
        let cause = Cause {
            actor: who.actor(),
            correlation_id: CorrelationId(uuid::Uuid::nil()),
            causation_id: None,
            now: Timestamp(1),
        };
        let (event, frame) = state.stamp(&cause, payload)?;
        assert_eq!(AgentEvent::decode(&frame).unwrap(), event);
        state.apply(&event).unwrap();
        Ok(true)
    }

    fn agent() -> AgentState {
        AgentState::new(
            TenantId::new("acme").unwrap(),
            AgentId::new("agent-7").unwrap(),
        )
    }

    #[test]
    fn agents_change_themselves_and_supervisors_change_anyone() {
        let mut state = agent();
        let me = principal(Role::Agent, "agent-7");
        assert!(
            run(
                &mut state,
                &me,
                AgentCommand::SetStatus {
                    status: AgentStatus::Online
                }
            )
            .unwrap()
        );
        assert!(
            !run(
                &mut state,
                &me,
                AgentCommand::SetStatus {
                    status: AgentStatus::Online
                }
            )
            .unwrap(),
            "no-op"
        );
        assert!(
            run(
                &mut state,
                &principal(Role::Supervisor, "sup"),
                AgentCommand::SetCapacity {
                    max_conversations: 4
                }
            )
            .unwrap()
        );
        assert_eq!(
            (state.status, state.max_conversations, state.last_seq),
            (AgentStatus::Online, 4, Seq(2))
        );
        for who in [
            principal(Role::Agent, "agent-8"),
            principal(Role::Customer, "c"),
            principal(Role::Auditor, "a"),
        ] {
            let err = run(
                &mut state,
                &who,
                AgentCommand::SetStatus {
                    status: AgentStatus::Away,
                },
            )
            .unwrap_err();
            assert_eq!(err.code(), "forbidden");
        }
        let foreign = Principal::new(
            TenantId::new("globex").unwrap(),
            Role::Supervisor,
            PrincipalId::new("sup").unwrap(),
        );
        assert_eq!(
            run(
                &mut state,
                &foreign,
                AgentCommand::SetCapacity {
                    max_conversations: 1
                }
            )
            .unwrap_err()
            .code(),
            "forbidden"
        );
    }

    #[test]
    fn capacity_and_skills_are_bounded_and_skills_normalized() {
        let mut state = agent();
        let me = principal(Role::Agent, "agent-7");
        assert_eq!(
            run(
                &mut state,
                &me,
                AgentCommand::SetCapacity {
                    max_conversations: -1
                }
            )
            .unwrap_err()
            .code(),
            "invalid_argument"
        );
        assert_eq!(
            run(
                &mut state,
                &me,
                AgentCommand::SetCapacity {
                    max_conversations: 101
                }
            )
            .unwrap_err()
            .code(),
            "invalid_argument"
        );
        let l = |s: &str| Label::new(s).unwrap();
        assert!(
            run(
                &mut state,
                &me,
                AgentCommand::SetSkills {
                    skills: vec![l("german"), l("billing"), l("german")]
                }
            )
            .unwrap()
        );
        assert_eq!(state.skills, vec![l("billing"), l("german")]);
        assert!(
            !run(
                &mut state,
                &me,
                AgentCommand::SetSkills {
                    skills: vec![l("german"), l("billing")]
                }
            )
            .unwrap()
        );
        let many: Vec<_> = (0..17).map(|i| l(&format!("s{i}"))).collect();
        assert_eq!(
            run(&mut state, &me, AgentCommand::SetSkills { skills: many })
                .unwrap_err()
                .code(),
            "invalid_argument"
        );
    }
}
