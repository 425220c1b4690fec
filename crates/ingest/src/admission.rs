//! Admission: whether a command is let in at all, before the writer decides it. Every command
//! path — the gRPC and HTTP APIs and the edge's WebSocket commands — reaches the writer through
//! one [`Admitting`] handler, so the limits hold the same on each.
//!
//! 1. **Rate.** Each principal (tenant, role, subject) has a token bucket, its rate set by role
//!    ([`AdmissionConfig`]); a command over it is refused `rate_limited` with the time until a
//!    token is there. The buckets live in this process: they bound bursts, not totals.
//! 2. **Opens.** An open asks the router's [`Admission`] gate, which counts each customer's
//!    open and waiting conversations from the events (`too_many_open_conversations`) and the
//!    tenant's queue (`overloaded`). A customer's own resolution tells the gate when it is
//!    acknowledged, so the next open does not wait for the router to fold it.
//!
//! Both refusals read as HTTP 429 / gRPC `RESOURCE_EXHAUSTED` (see [`CommandError::status`]).
//! The router's own commands go to the writer directly and are not limited.

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use switchboard_events::id::{AgentId, ConversationId, CorrelationId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::rate::{Rate, RateLimiter};

use crate::api::{Ack, CommandHandler};
use crate::command::{AgentCommand, ConversationCommand};
use crate::error::CommandError;
use crate::routing::Admission;

/// The command rates per principal, by role.
#[derive(Clone, Copy, PartialEq, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// Each customer: a person typing, with room for a burst of retries. Default: 5 per
    /// second, bursts of 20.
    pub customer: Rate,
    /// Each agent, supervisor (and auditor, who is refused anyway). Default: 20 per second,
    /// bursts of 100.
    pub staff: Rate,
    /// Each service principal (integrations with their own token). Default: 1,000 per
    /// second, bursts of 2,000.
    pub service: Rate,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            customer: Rate::new(5.0, 20.0),
            staff: Rate::new(20.0, 100.0),
            service: Rate::new(1_000.0, 2_000.0),
        }
    }
}

impl AdmissionConfig {
    fn rate(&self, role: Role) -> Rate {
        match role {
            Role::Customer => self.customer,
            Role::Agent | Role::Supervisor | Role::Auditor => self.staff,
            Role::Service => self.service,
        }
    }
}

/// A command handler that admits each command (rate, then the gate for opens) before the
/// inner handler — the writer — decides it.
#[derive(Clone, Debug)]
pub struct Admitting<H> {
    inner: H,
    admission: Admission,
    config: AdmissionConfig,
    buckets: Arc<Mutex<RateLimiter<Principal>>>,
}

impl<H> Admitting<H> {
    /// With the default rates ([`AdmissionConfig::default`]).
    pub fn new(inner: H, admission: Admission) -> Self {
        Self::with_config(inner, admission, AdmissionConfig::default())
    }

    pub fn with_config(inner: H, admission: Admission, config: AdmissionConfig) -> Self {
        Self {
            inner,
            admission,
            config,
            buckets: Arc::default(),
        }
    }

    /// Takes a token from the principal's bucket.
    fn rate(&self, principal: &Principal) -> Result<(), CommandError> {
        let now = tokio::time::Instant::now().into_std();
        let rate = self.config.rate(principal.role);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .take(principal, rate, now)
            .map_err(CommandError::rate_limited)
    }
}

impl<H: CommandHandler> CommandHandler for Admitting<H> {
    async fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let (kind, started) = (command.name(), std::time::Instant::now());
        // A refusal here never reaches the writer, which counts the rest.
        self.rate(&principal)
            .inspect_err(|e| crate::metrics::answered::<()>(kind, started, &Err(e.clone())))?;
        if matches!(command, ConversationCommand::Resolve) {
            let resolving = self.admission.resolving(&principal);
            let ack = self
                .inner
                .conversation(principal, conversation, command, correlation)
                .await?;
            if let Some(resolving) = resolving
                && !ack.unchanged
                && let Ok(id) = ack.stream_id.parse::<ConversationId>()
            {
                resolving.resolved(id, tokio::time::Instant::now().into_std());
            }
            return Ok(ack);
        }
        let ConversationCommand::Open(open) = &command else {
            return self
                .inner
                .conversation(principal, conversation, command, correlation)
                .await;
        };
        let now = tokio::time::Instant::now().into_std();
        let held = self
            .admission
            .admit(&principal, &open.customer_id, now)
            .inspect_err(|e| crate::metrics::answered::<()>(kind, started, &Err(e.clone())))?;
        let ack = self
            .inner
            .conversation(principal, conversation, command, correlation)
            .await?;
        if !ack.unchanged
            && let Ok(id) = ack.stream_id.parse::<ConversationId>()
        {
            held.opened(id, tokio::time::Instant::now().into_std());
        }
        Ok(ack)
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let (kind, started) = (command.name(), std::time::Instant::now());
        self.rate(&principal)
            .inspect_err(|e| crate::metrics::answered::<()>(kind, started, &Err(e.clone())))?;
        self.inner
            .agent(principal, agent, command, correlation)
            .await
    }
}
