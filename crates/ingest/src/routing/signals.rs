//! What the router tells the rest of the system besides its decisions: the queue position and
//! wait estimate of each waiting customer (ephemeral: a broadcast the edge subscribes to, never
//! an event of record), and the admission gate the command API asks before opening a
//! conversation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use switchboard_events::Timestamp;
use switchboard_events::id::{AgentId, ConversationId, CorrelationId, TenantId};
use switchboard_events::principal::Principal;
use tokio::sync::broadcast;

use crate::api::{Ack, CommandHandler};
use crate::command::{AgentCommand, ConversationCommand};
use crate::error::CommandError;
use crate::routing::estimate::QueueEntry;
use crate::routing::router::{Router, admit};

/// A change in a waiting customer's place.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum QueueSignal {
    /// The conversation waits: its position and estimate, sent when either changes.
    Waiting { tenant: TenantId, entry: QueueEntry },
    /// The conversation left the queue: an agent has it, or it ended.
    Left {
        tenant: TenantId,
        conversation: ConversationId,
    },
}

/// Whether a tenant may open another conversation, as of the router's last round.
///
/// Cheap to clone; the driver updates it, the command API reads it.
#[derive(Clone, Debug, Default)]
pub struct Admission {
    /// Per tenant: conversations waiting, and the limit.
    gates: Arc<RwLock<HashMap<TenantId, (usize, usize)>>>,
}

impl Admission {
    /// `Ok` or [`CommandError::Overloaded`] ("we are very busy, please try again later").
    /// A tenant the router has not seen yet has an empty queue.
    pub fn admit(&self, tenant: &TenantId) -> Result<(), CommandError> {
        let gates = self.gates.read().unwrap_or_else(PoisonError::into_inner);
        match gates.get(tenant) {
            Some(&(waiting, limit)) => admit(waiting, limit),
            None => Ok(()),
        }
    }

    pub(crate) fn update(&self, router: &Router) {
        let mut gates = self.gates.write().unwrap_or_else(PoisonError::into_inner);
        gates.insert(
            router.tenant().clone(),
            (router.waiting_count(), router.config().queue_limit),
        );
    }
}

/// A command handler that asks the [`Admission`] gate before every open and passes everything
/// else through: what the command API serves, in front of the writer. (The router itself talks
/// to the writer directly; it never opens.)
#[derive(Clone, Debug)]
pub struct Admitting<H> {
    inner: H,
    admission: Admission,
}

impl<H> Admitting<H> {
    pub fn new(inner: H, admission: Admission) -> Self {
        Self { inner, admission }
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
        if let ConversationCommand::Open(_) = command {
            self.admission.admit(&principal.tenant)?;
        }
        self.inner
            .conversation(principal, conversation, command, correlation)
            .await
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.inner
            .agent(principal, agent, command, correlation)
            .await
    }
}

/// Sends queue signals for what changed since the last time.
#[derive(Debug)]
pub(crate) struct Publisher {
    sender: broadcast::Sender<QueueSignal>,
    published: HashMap<TenantId, BTreeMap<ConversationId, QueueEntry>>,
}

impl Publisher {
    pub fn new(sender: broadcast::Sender<QueueSignal>) -> Self {
        Self {
            sender,
            published: HashMap::new(),
        }
    }

    pub fn publish(&mut self, router: &Router, now: Timestamp) {
        let tenant = router.tenant();
        let current: BTreeMap<_, _> = router
            .queue(now)
            .into_iter()
            .map(|e| (e.conversation.clone(), e))
            .collect();
        let before = self.published.remove(tenant).unwrap_or_default();
        // Nobody listening is not an error: the signals are advisory.
        for conversation in before.keys().filter(|c| !current.contains_key(*c)) {
            let _ = self.sender.send(QueueSignal::Left {
                tenant: tenant.clone(),
                conversation: conversation.clone(),
            });
        }
        for (conversation, entry) in &current {
            if before.get(conversation) != Some(entry) {
                let _ = self.sender.send(QueueSignal::Waiting {
                    tenant: tenant.clone(),
                    entry: entry.clone(),
                });
            }
        }
        self.published.insert(tenant.clone(), current);
    }
}
