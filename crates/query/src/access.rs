//! Who may read what. Every call starts with a bearer token verified by [`TokenVerifier`] (from
//! a trusted issuer that may speak for the token's tenant); the principal's tenant scopes every store read, so another tenant's ids simply do not exist for
//! the caller (404, never 403). Within the tenant:
//!
//! | role | history, summary | lists | reports | replay, verify, export |
//! | --- | --- | --- | --- | --- |
//! | customer | own conversations, no private notes | own conversations | — | — |
//! | agent | every conversation | every list | own figures | — |
//! | supervisor, service | every conversation | every list | every scope | export |
//! | auditor | every conversation | every list | every scope | replay, verify, export |
//!
//! Supervisors export (they answer data requests); only auditors and services replay and
//! verify, the audit trail's own operations.
//!
//! Every principal (tenant, role, subject) reads at a rate set by its role ([`ReadLimits`]):
//! a read over it is refused `rate_limited` (HTTP 429, gRPC `RESOURCE_EXHAUSTED`) with the
//! time until the principal's bucket has a token again. The buckets are this instance's.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use switchboard_events::id::AgentId;
use switchboard_events::principal::{Principal, Role};
use switchboard_events::rate::{Rate, RateLimiter};
use switchboard_events::token::TokenVerifier;
use switchboard_store::conversation::ConversationSummary;
use switchboard_store::timeline::Audience;

use crate::error::QueryError;

/// The token of an `authorization` header value, `Bearer <token>` (scheme in any case).
pub fn bearer(header: Option<&[u8]>) -> Result<&str, QueryError> {
    let header = header.ok_or(QueryError::MissingToken)?;
    let header = std::str::from_utf8(header).map_err(|_| QueryError::MissingToken)?;
    let (scheme, token) = header.split_once(' ').ok_or(QueryError::MissingToken)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(QueryError::MissingToken);
    }
    Ok(token)
}

/// Verifies the `authorization` header into a principal. A refused token reads the same
/// whatever the reason, which goes to the debug log only.
pub fn authenticate(
    verifier: &TokenVerifier,
    header: Option<&[u8]>,
) -> Result<Principal, QueryError> {
    verifier.verify(bearer(header)?).map_err(|refused| {
        tracing::debug!(reason = %refused.reason(), "bearer token refused");
        QueryError::Token(refused)
    })
}

/// The read rates per principal, by role.
#[derive(Clone, Copy, PartialEq, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadLimits {
    /// Each customer (a widget paging its history). Default: 10 per second, bursts of 50.
    pub customer: Rate,
    /// Each agent, supervisor and auditor. Default: 50 per second, bursts of 200.
    pub staff: Rate,
    /// Each service. Default: 2,000 per second, bursts of 5,000.
    pub service: Rate,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            customer: Rate::new(10.0, 50.0),
            staff: Rate::new(50.0, 200.0),
            service: Rate::new(2_000.0, 5_000.0),
        }
    }
}

/// The read buckets of every principal on this instance.
#[derive(Debug, Default)]
pub struct ReadRates {
    limits: ReadLimits,
    buckets: Mutex<RateLimiter<Principal>>,
}

impl ReadRates {
    pub fn new(limits: ReadLimits) -> Self {
        Self {
            limits,
            buckets: Mutex::default(),
        }
    }

    /// Takes a token for one read by `who`.
    pub fn take(&self, who: &Principal, now: Instant) -> Result<(), QueryError> {
        let rate = match who.role {
            Role::Customer => self.limits.customer,
            Role::Agent | Role::Supervisor | Role::Auditor => self.limits.staff,
            Role::Service => self.limits.service,
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets.take(who, rate, now).map_err(|wait| {
            let ms = wait.as_nanos().div_ceil(1_000_000);
            QueryError::RateLimited {
                retry_after_ms: u64::try_from(ms).unwrap_or(u64::MAX),
            }
        })
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "a customer",
        Role::Agent => "an agent",
        Role::Supervisor => "a supervisor",
        Role::Auditor => "an auditor",
        Role::Service => "a service",
    }
}

fn forbid(who: &Principal, action: &'static str) -> QueryError {
    QueryError::Forbidden {
        role: role_name(who.role),
        action,
    }
}

/// What a principal sees of a conversation it may read: a customer never sees private notes.
pub fn audience(who: &Principal) -> Audience {
    if who.role == Role::Customer {
        Audience::Customer
    } else {
        Audience::Staff
    }
}

/// Whether `who` may read this conversation (already read within `who`'s tenant). A customer
/// asking for another customer's conversation gets the same 404 as for a missing one.
pub fn read_conversation(who: &Principal, summary: &ConversationSummary) -> Result<(), QueryError> {
    if summary.tenant != who.tenant {
        return Err(QueryError::conversation_not_found());
    }
    match who.role {
        Role::Customer if !who.is_customer(&summary.customer) => {
            Err(QueryError::conversation_not_found())
        }
        _ => Ok(()),
    }
}

/// Reports: staff and auditors; an agent only its own figures.
pub fn report(who: &Principal, agent: Option<&AgentId>) -> Result<(), QueryError> {
    match who.role {
        Role::Customer => Err(forbid(who, "read reports")),
        Role::Agent => match agent {
            Some(agent) if who.is_agent(agent) => Ok(()),
            _ => Err(forbid(who, "read figures other than its own")),
        },
        Role::Supervisor | Role::Auditor | Role::Service => Ok(()),
    }
}

/// Audit replay and chain verification.
pub fn audit(who: &Principal) -> Result<(), QueryError> {
    match who.role {
        Role::Auditor | Role::Service => Ok(()),
        _ => Err(forbid(who, "replay or verify history")),
    }
}

/// Exports of conversations and tenant ranges.
pub fn export(who: &Principal) -> Result<(), QueryError> {
    match who.role {
        Role::Auditor | Role::Supervisor | Role::Service => Ok(()),
        _ => Err(forbid(who, "export history")),
    }
}

#[cfg(test)]
mod tests {
    use switchboard_events::id::{PrincipalId, TenantId};

    use super::*;

    fn principal(role: Role, subject: &str) -> Principal {
        Principal::new(
            TenantId::new("acme").unwrap(),
            role,
            PrincipalId::new(subject).unwrap(),
        )
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer(Some(b"Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some(b"bearer  abc ")).unwrap(), "abc");
        for bad in [&b"Basic abc"[..], b"Bearer ", b"abc", b"\xff"] {
            assert!(matches!(bearer(Some(bad)), Err(QueryError::MissingToken)));
        }
        assert!(matches!(bearer(None), Err(QueryError::MissingToken)));
    }

    #[test]
    fn roles_reach_what_the_table_says() {
        let agent = AgentId::new("agent-1").unwrap();
        let other = AgentId::new("agent-2").unwrap();
        assert!(report(&principal(Role::Agent, "agent-1"), Some(&agent)).is_ok());
        assert!(report(&principal(Role::Agent, "agent-1"), Some(&other)).is_err());
        assert!(report(&principal(Role::Agent, "agent-1"), None).is_err());
        assert!(report(&principal(Role::Customer, "c"), None).is_err());
        assert!(audit(&principal(Role::Auditor, "a")).is_ok());
        assert!(audit(&principal(Role::Supervisor, "s")).is_err());
        assert!(export(&principal(Role::Supervisor, "s")).is_ok());
        assert!(export(&principal(Role::Agent, "agent-1")).is_err());
        assert_eq!(
            audience(&principal(Role::Customer, "c")),
            Audience::Customer
        );
        assert_eq!(audience(&principal(Role::Auditor, "a")), Audience::Staff);
    }

    #[test]
    fn each_principal_reads_at_the_rate_of_its_role() {
        let rates = ReadRates::new(ReadLimits {
            customer: Rate::new(1.0, 2.0),
            staff: Rate::new(1.0, 3.0),
            ..ReadLimits::default()
        });
        let now = Instant::now();
        let (customer, agent) = (principal(Role::Customer, "c"), principal(Role::Agent, "a"));
        for _ in 0..2 {
            rates.take(&customer, now).unwrap();
        }
        let refused = rates.take(&customer, now).unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(
            refused.to_string(),
            "too many requests: try again in 1000 ms"
        );
        for _ in 0..3 {
            rates.take(&agent, now).unwrap();
        }
        assert!(rates.take(&agent, now).is_err());
        assert!(rates.take(&principal(Role::Customer, "d"), now).is_ok());
        let later = now + std::time::Duration::from_secs(1);
        assert!(rates.take(&customer, later).is_ok(), "a token a second");
    }
}
