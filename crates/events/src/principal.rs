//! Who is asking: the authenticated principal behind a command or a read. The edge and the
//! query service build it from a verified token; ingest checks every command against it.

use serde::{Deserialize, Serialize};

use crate::envelope::{Actor, ActorKind};
use crate::id::{PrincipalId, TenantId};

/// What a principal may do, broadly; the rules of each service refine it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A visitor of the tenant's site: only their own conversations, never private notes.
    Customer,
    /// A support agent of the tenant.
    Agent,
    /// A supervisor or tenant admin: everything an agent may, plus routing and erasure.
    Supervisor,
    /// Reads, replays and verifies the tenant's history; never writes.
    Auditor,
    /// Another switchboard service or a trusted integration.
    Service,
}

impl Role {
    pub fn actor_kind(self) -> ActorKind {
        match self {
            Self::Customer => ActorKind::Customer,
            Self::Agent => ActorKind::Agent,
            Self::Supervisor => ActorKind::Supervisor,
            Self::Auditor => ActorKind::Auditor,
            Self::Service => ActorKind::System,
        }
    }

    /// Agents and supervisors: the tenant's staff.
    pub fn is_staff(self) -> bool {
        matches!(self, Self::Agent | Self::Supervisor)
    }
}

/// An authenticated principal of one tenant.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
    pub subject: PrincipalId,
}

impl Principal {
    pub fn new(tenant: TenantId, role: Role, subject: PrincipalId) -> Self {
        Self {
            tenant,
            role,
            subject,
        }
    }

    /// The actor recorded in the events this principal causes.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: self.role.actor_kind(),
            id: self.subject.clone(),
        }
    }

    /// Whether this principal is the given customer.
    pub fn is_customer(&self, customer: &crate::id::CustomerId) -> bool {
        self.role == Role::Customer && self.subject.as_str() == customer.as_str()
    }

    /// Whether this principal is the given agent.
    pub fn is_agent(&self, agent: &crate::id::AgentId) -> bool {
        self.role == Role::Agent && self.subject.as_str() == agent.as_str()
    }
}
