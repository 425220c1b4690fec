//! What the router tells the rest of the system besides its decisions: the queue position and
//! wait estimate of each waiting customer (ephemeral: a broadcast the edge subscribes to, never
//! an event of record). The admission gate it feeds is in `admission.rs`.

use std::collections::{BTreeMap, HashMap};

use switchboard_events::Timestamp;
use switchboard_events::id::{ConversationId, TenantId};
use tokio::sync::broadcast;

/// Where the binary found it before it moved; [`crate::admission::Admitting`] is its home.
pub use crate::admission::Admitting;
pub use crate::routing::admission::Admission;
use crate::routing::estimate::QueueEntry;
use crate::routing::router::Router;

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
