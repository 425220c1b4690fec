//! One tenant's router: the folded state, the decisions in flight, and the questions the driver
//! and the API ask of it. Pure: no I/O, and the time is always passed in.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_events::agent::AgentPayload;
use switchboard_events::id::{AgentId, ConversationId, CustomerId, TenantId};
use switchboard_events::tenant::TENANT_STREAM;
use switchboard_events::{AgentEvent, ConversationEvent, ConversationPayload, Seq, Timestamp};

use crate::error::CommandError;
use crate::routing::config::{RoutingConfig, micros};
use crate::routing::state::{CustomerLoad, TenantState};

/// A decision issued but not yet seen in the log. The conversation is not decided again
/// meanwhile, and an assignment counts against its agent's load already.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct InFlight {
    /// The agent an assignment goes to.
    pub agent: Option<AgentId>,
    /// Issue order, so that the agent given one most recently is known before the event is.
    pub order: u64,
    /// Once acknowledged: the seq the conversation reaches with it.
    pub until_seq: Option<Seq>,
}

/// One tenant's router.
#[derive(Clone, Debug)]
pub struct Router {
    pub(crate) tenant: TenantId,
    pub(crate) config: RoutingConfig,
    pub(crate) state: TenantState,
    pub(crate) in_flight: BTreeMap<ConversationId, InFlight>,
    /// Conversations whose last decision the writer refused, at the seq they had then: not
    /// decided again until something happens to them.
    pub(crate) refused: BTreeMap<ConversationId, Seq>,
    pub(crate) issued: u64,
    /// Customers whose conversations had events since the admission gate last looked.
    pub(crate) touched: BTreeSet<CustomerId>,
    /// Conversations whose opening was folded since the admission gate last looked.
    pub(crate) opened: Vec<ConversationId>,
    /// Conversations whose resolution was folded since the admission gate last looked.
    pub(crate) closed: Vec<ConversationId>,
    /// The seq of the tenant's settings event the configuration was last taken from.
    pub(crate) settings_seq: Seq,
}

impl Router {
    pub fn new(tenant: TenantId, config: RoutingConfig) -> Self {
        Self {
            tenant,
            config,
            state: TenantState::default(),
            in_flight: BTreeMap::new(),
            refused: BTreeMap::new(),
            issued: 0,
            touched: BTreeSet::new(),
            opened: Vec::new(),
            closed: Vec::new(),
            settings_seq: Seq(0),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// The state folded from the events: what a replay must reproduce.
    pub fn state(&self) -> &TenantState {
        &self.state
    }

    /// Folds an agent event; a settings event of the tenant sets the routing configuration
    /// (business hours, policy, limits) from then on.
    pub fn apply_agent(&mut self, event: &AgentEvent) {
        if let AgentPayload::TenantSettingsChanged(change) = &event.payload {
            let seq = event.envelope.seq;
            if event.envelope.agent_id.as_str() != TENANT_STREAM || seq <= self.settings_seq {
                return;
            }
            match change.document() {
                Ok(settings) => {
                    self.config.apply_settings(&settings);
                    self.settings_seq = seq;
                }
                Err(e) => {
                    tracing::warn!(tenant = %self.tenant, seq = seq.0, error = %e, "routing skips tenant settings that do not read")
                }
            }
            return;
        }
        self.state.apply_agent(event);
    }

    pub fn apply_conversation(&mut self, event: &ConversationEvent) {
        let id = &event.envelope.conversation_id;
        let new = !self.state.conversations.contains_key(id);
        self.state.apply_conversation(event);
        if new
            && matches!(event.payload, ConversationPayload::Opened(_))
            && self.state.conversations.contains_key(id)
        {
            self.opened.push(id.clone());
        }
        if matches!(event.payload, ConversationPayload::Resolved(_)) {
            self.closed.push(id.clone());
        }
        if let Some(customer) = self
            .state
            .conversations
            .get(id)
            .and_then(|c| c.customer.as_ref())
            && !self.touched.contains(customer)
        {
            self.touched.insert(customer.clone());
        }
        for forgotten in self.state.forget_resolved(self.config.max_resolved) {
            self.in_flight.remove(&forgotten);
            self.refused.remove(&forgotten);
        }
        if let (Some(seq), Some(c)) = (self.refused.get(id), self.state.conversations.get(id))
            && *seq != c.last_seq
        {
            self.refused.remove(id);
        }
        if let (Some(flight), Some(c)) = (self.in_flight.get(id), self.state.conversations.get(id))
            && flight.until_seq.is_some_and(|seq| c.last_seq >= seq)
        {
            self.in_flight.remove(id);
        }
    }

    /// A decision on `conversation` was acknowledged at `seq`: it is settled once the router
    /// has folded the conversation up to there.
    pub fn settle(&mut self, conversation: &ConversationId, seq: Seq) {
        let folded = self
            .state
            .conversations
            .get(conversation)
            .is_some_and(|c| c.last_seq >= seq);
        match self.in_flight.get_mut(conversation) {
            Some(_) if folded => {
                self.in_flight.remove(conversation);
            }
            Some(flight) => flight.until_seq = flight.until_seq.max(Some(seq)),
            None => {}
        }
    }

    /// A decision on `conversation` failed for a passing reason (the log was unavailable, the
    /// writer overloaded): decide it again next time.
    pub fn abandon(&mut self, conversation: &ConversationId) {
        self.in_flight.remove(conversation);
    }

    /// The writer refused a decision on `conversation` for good (its rules say no): it is not
    /// decided again until its next event, so a refusal does not repeat forever.
    pub fn refuse(&mut self, conversation: &ConversationId) {
        self.in_flight.remove(conversation);
        if let Some(c) = self.state.conversations.get(conversation) {
            self.refused.insert(conversation.clone(), c.last_seq);
        }
    }

    /// Whether decisions are in flight.
    pub fn is_busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// How many conversations wait for an agent.
    pub fn waiting_count(&self) -> usize {
        self.state.waiting().count()
    }

    /// Admission of a new conversation, opened by `customer` themselves (`None`: by staff or
    /// a service, which are not capped). See [`admit`].
    pub fn admit(&self, customer: Option<&CustomerId>) -> Result<(), CommandError> {
        let customers = &self.state.customers;
        let load = customer.map(|c| customers.get(c).copied().unwrap_or_default());
        let cap = self.config.customer_caps.max_waiting;
        let counted = customers.values().map(|l| l.waiting.min(cap)).sum();
        admit(load, counted, &self.config)
    }

    /// Whether support is open at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.config
            .business_hours
            .as_ref()
            .is_none_or(|h| h.is_open(now))
    }

    /// The next time after `now` at which [`Router::decide`] may decide something that no
    /// event will prompt: an assigned agent's answer time running out, or support opening or
    /// closing.
    pub fn next_deadline(&self, now: Timestamp) -> Option<Timestamp> {
        let timeout = micros(self.config.no_answer_timeout);
        let no_answer = self
            .state
            .conversations
            .values()
            .filter(|c| c.holder().is_some() && !c.answered)
            .map(|c| Timestamp(c.assigned_at.as_micros().saturating_add(timeout)))
            .filter(|&deadline| deadline > now)
            .min();
        let hours = self
            .config
            .business_hours
            .as_ref()
            .and_then(|h| h.next_change(now));
        match (no_answer, hours) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The admission rule, shared with the driver's [`crate::routing::Admission`] gate.
///
/// A customer opening for themselves (`load` is theirs) is refused at their caps
/// (`too_many_open_conversations`): their backlog counts against them. Anyone is refused
/// (`overloaded`) when `counted_waiting` — each customer's waiting conversations, up to the
/// cap — reaches the queue limit: told at once rather than left in a queue that will not move
/// in time. No single customer can fill the queue.
pub(crate) fn admit(
    load: Option<CustomerLoad>,
    counted_waiting: usize,
    config: &RoutingConfig,
) -> Result<(), CommandError> {
    let caps = &config.customer_caps;
    if let Some(load) = load {
        for (which, count, max) in [
            ("open", load.open, caps.max_open),
            ("waiting", load.waiting, caps.max_waiting),
        ] {
            if count >= max {
                return Err(CommandError::TooManyOpenConversations { which, count, max });
            }
        }
    }
    if counted_waiting >= config.queue_limit {
        return Err(CommandError::Overloaded);
    }
    Ok(())
}
