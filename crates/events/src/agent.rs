//! Agent events: topic `switchboard.agents`, key = tenant id, so that one router instance sees
//! every agent of a tenant in order. The tenant's settings travel here too, on the tenant's own
//! chain (see [`crate::tenant`]).

use serde::{Deserialize, Serialize};

use crate::avro::wire::{Datum, Reader, record, symbols};
use crate::envelope::AgentEnvelope;
use crate::error::DecodeError;
use crate::event::{Event, payloads};
use crate::id::Label;
use crate::tenant::TenantSettingsChanged;

/// An agent event of record.
pub type AgentEvent = Event<AgentEnvelope, AgentPayload>;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Online,
    Away,
    Offline,
}

symbols!(AgentStatus {
    Online,
    Away,
    Offline
});

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AgentStatusChanged {
    pub status: AgentStatus,
}

record!(AgentStatusChanged { status });

/// How many conversations the agent may hold at once.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AgentCapacityChanged {
    pub max_conversations: i32,
}

impl Datum for AgentCapacityChanged {
    fn write(&self, out: &mut Vec<u8>) {
        self.max_conversations.write(out);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match i32::read(r)? {
            n if n >= 0 => Ok(Self {
                max_conversations: n,
            }),
            n => Err(DecodeError::InvalidValue {
                field: "max_conversations",
                reason: format!("{n} is negative"),
            }),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AgentSkillsChanged {
    pub skills: Vec<Label>,
}

record!(AgentSkillsChanged { skills });

payloads! {
    /// What changed about an agent, or about the tenant's settings.
    AgentPayload for Agents with AgentEnvelope {
        StatusChanged(AgentStatusChanged) = "switchboard.agent.AgentStatusChanged",
        CapacityChanged(AgentCapacityChanged) = "switchboard.agent.AgentCapacityChanged",
        SkillsChanged(AgentSkillsChanged) = "switchboard.agent.AgentSkillsChanged",
        /// A tenant's settings, on the chain of [`crate::tenant::TENANT_STREAM`].
        TenantSettingsChanged(TenantSettingsChanged) = "switchboard.tenant.TenantSettingsChanged",
    }
}
