//! The live fan-out: an index from conversation to the connections subscribed to it, fed by
//! tailing the conversation topic. Delivering an event costs one lookup, one render per
//! audience and one queue push per subscriber — never a walk over every connection.
//!
//! The hub also remembers, per conversation it has seen, the last seq it delivered, and per
//! partition the offset of the next record it will deliver: the resume protocol (`resume.md`)
//! uses them as the seam between history and live.
//!
//! What it remembers of conversations without subscribers is bounded: past
//! `hub_idle_conversations`, the least recently used are forgotten (`recency.rs`). A
//! conversation with subscribers is never forgotten. Resume does not depend on what the hub
//! remembers (the seam is the position), so a forgotten conversation resumes like one the hub
//! never saw (`resume.md` § Bounds).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use switchboard_events::conversation::ConversationPayload;
use switchboard_events::id::{ConversationId, CustomerId, MessageId, TenantId};
use switchboard_events::partition::partition_for_key;
use switchboard_events::personal::KeyProvider;
use switchboard_events::{ConversationEvent, Topic};
use switchboard_log::{EventLog, Follow, LogError, StartAt};
use switchboard_store::timeline::Audience;
use tokio::sync::{Notify, mpsc};

use crate::protocol::ServerFrame;
use crate::recency::Recency;
use crate::{metrics, render};

/// A conversation, scoped by tenant: a connection only ever keys by its own tenant.
pub type Key = (TenantId, ConversationId);

/// A rendered event, shared by every subscriber of an audience.
#[derive(Debug)]
pub struct EventOut {
    pub conversation: Arc<str>,
    pub seq: u64,
    pub json: Utf8Bytes,
}

/// What goes into a connection's send queue.
#[derive(Debug, Clone)]
pub enum Outbound {
    Event(Arc<EventOut>),
    Frame(Arc<str>),
}

/// The sending half of a connection: a bounded queue and the switch that cuts it when full.
#[derive(Debug, Clone)]
pub struct Handle {
    pub id: u64,
    tx: mpsc::Sender<Outbound>,
    cut: Arc<Notify>,
}

impl Handle {
    pub fn new(id: u64, capacity: usize) -> (Self, mpsc::Receiver<Outbound>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(capacity);
        let cut = Arc::new(Notify::new());
        (
            Self {
                id,
                tx,
                cut: cut.clone(),
            },
            rx,
            cut,
        )
    }

    /// Queues without waiting. A full queue cuts the connection: it is too slow, and waiting
    /// for it would slow everyone else.
    pub fn offer(&self, out: Outbound) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(out) {
            self.cut.notify_one();
        }
    }

    pub fn frame(&self, frame: &ServerFrame) {
        metrics::sent(frame.kind());
        self.offer(Outbound::Frame(frame.to_json().into()));
    }
}

#[derive(Debug)]
struct Subscriber {
    handle: Handle,
    audience: Audience,
}

#[derive(Debug, Default)]
struct Index {
    conversations: HashMap<Key, Conversation>,
    /// Per partition of the conversation topic, the offset of the next record the hub
    /// delivers: every record below it reached the subscribers registered at the time.
    positions: Vec<u64>,
    /// The conversations without subscribers, least recently used first.
    idle: Recency<Key>,
    /// The most of them kept.
    idle_bound: usize,
}

impl Index {
    /// The conversation, remembered from now on if it was not.
    fn conversation(&mut self, key: Key) -> &mut Conversation {
        match self.conversations.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                metrics::HUB_CONVERSATIONS.inc();
                entry.insert(Conversation::default())
            }
        }
    }

    /// Marks a conversation used; without subscribers it joins (or moves up) the idle ones,
    /// and the least recently used beyond the bound are forgotten.
    fn used(&mut self, key: &Key) {
        let Some(c) = self.conversations.get_mut(key) else {
            return;
        };
        if !c.subscribers.is_empty() {
            return;
        }
        self.idle.touch(&mut c.idle, || key.clone());
        while self.idle.len() > self.idle_bound {
            let Some(oldest) = self.idle.pop_oldest() else {
                break;
            };
            if self.conversations.remove(&oldest).is_some() {
                metrics::HUB_CONVERSATIONS.dec();
                metrics::HUB_EVICTIONS.inc();
            }
        }
    }
}

#[derive(Debug, Default)]
struct Conversation {
    last_seq: u64,
    customer: Option<CustomerId>,
    /// Messages customers may see: their edits and redactions reach customers, others not.
    public: HashSet<MessageId>,
    subscribers: Vec<Subscriber>,
    /// Its place among the idle conversations, while it has no subscribers.
    idle: Option<u64>,
}

/// The subscriber index.
pub struct Hub {
    conversations: Mutex<Index>,
    staff: Mutex<HashMap<TenantId, Vec<Handle>>>,
    keys: Arc<dyn KeyProvider>,
    delivered: AtomicU64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// What a subscription learns when it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The last seq the hub delivered for the conversation (0 when it saw none since it
    /// started): every later event reaches the subscriber live.
    pub live_after: u64,
    /// The conversation's partition and the hub's position in it at registration: every
    /// record from that offset on reaches the subscriber live, every record before it only
    /// from history. `None` before the hub follows the log.
    pub live_from: Option<(u32, u64)>,
    pub customer: Option<CustomerId>,
}

impl Hub {
    /// A hub that remembers at most `idle_bound` conversations without subscribers.
    pub fn new(keys: Arc<dyn KeyProvider>, idle_bound: usize) -> Self {
        Self {
            conversations: Mutex::new(Index {
                idle_bound,
                ..Index::default()
            }),
            staff: Mutex::new(HashMap::new()),
            keys,
            delivered: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.conversations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscriber; atomically with it, tells from which seq it receives live events.
    pub fn subscribe(&self, key: Key, handle: Handle, audience: Audience) -> Registered {
        let mut index = self.lock();
        let partitions = index.positions.len() as u32;
        let live_from = (partitions > 0).then(|| {
            let partition = partition_for_key(key.1.as_str().as_bytes(), partitions);
            (partition, index.positions[partition as usize])
        });
        let c = index.conversation(key);
        let mut idle = c.idle.take();
        c.subscribers.retain(|s| s.handle.id != handle.id);
        c.subscribers.push(Subscriber { handle, audience });
        let registered = Registered {
            live_after: c.last_seq,
            live_from,
            customer: c.customer.clone(),
        };
        // Subscribed: never forgotten while it is.
        index.idle.remove(&mut idle);
        registered
    }

    pub fn unsubscribe(&self, key: &Key, connection: u64) {
        let mut index = self.lock();
        if let Some(c) = index.conversations.get_mut(key) {
            c.subscribers.retain(|s| s.handle.id != connection);
            index.used(key);
        }
    }

    /// The customer of a conversation the hub has seen opened.
    pub fn customer(&self, key: &Key) -> Option<CustomerId> {
        self.lock()
            .conversations
            .get(key)
            .and_then(|c| c.customer.clone())
    }

    pub fn add_staff(&self, tenant: TenantId, handle: Handle) {
        let mut staff = self.staff.lock().unwrap_or_else(PoisonError::into_inner);
        staff.entry(tenant).or_default().push(handle);
    }

    pub fn remove_staff(&self, tenant: &TenantId, connection: u64) {
        let mut staff = self.staff.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = staff.get_mut(tenant) {
            list.retain(|h| h.id != connection);
            if list.is_empty() {
                staff.remove(tenant);
            }
        }
    }

    /// Sends a frame to every staff connection of a tenant (presence).
    pub fn to_staff(&self, tenant: &TenantId, frame: &ServerFrame) {
        let targets: Vec<Handle> = {
            let staff = self.staff.lock().unwrap_or_else(PoisonError::into_inner);
            staff.get(tenant).cloned().unwrap_or_default()
        };
        if targets.is_empty() {
            return;
        }
        let json: Arc<str> = frame.to_json().into();
        for handle in targets {
            metrics::sent(frame.kind());
            handle.offer(Outbound::Frame(json.clone()));
        }
    }

    /// Sends a frame to the subscribers of a conversation but `except` (typing, queue).
    pub fn to_subscribers(&self, key: &Key, frame: &ServerFrame, except: Option<u64>) {
        let targets: Vec<Handle> = match self.lock().conversations.get(key) {
            Some(c) => c
                .subscribers
                .iter()
                .filter(|s| Some(s.handle.id) != except)
                .map(|s| s.handle.clone())
                .collect(),
            None => return,
        };
        let json: Arc<str> = frame.to_json().into();
        for handle in targets {
            metrics::sent(frame.kind());
            handle.offer(Outbound::Frame(json.clone()));
        }
    }

    /// Moves the hub's position in a partition past a record it does not deliver.
    fn pass(&self, partition: u32, offset: u64) {
        let mut index = self.lock();
        if let Some(position) = index.positions.get_mut(partition as usize) {
            *position = (*position).max(offset + 1);
        }
    }

    /// Delivers one event of record, found at `offset` of `partition`, to the subscribers of
    /// its conversation; returns how many frames it queued.
    pub fn deliver(&self, event: &ConversationEvent, partition: u32, offset: u64) -> usize {
        let envelope = &event.envelope;
        let seq = envelope.seq.0;
        let mut customer_sees = true;
        let targets: Vec<(Handle, Audience)> = {
            let mut index = self.lock();
            // Under the lock that registrations take: a subscriber registered before this
            // line gets the event live, one registered after reads it from history.
            if let Some(position) = index.positions.get_mut(partition as usize) {
                *position = (*position).max(offset + 1);
            }
            let key = (envelope.tenant_id.clone(), envelope.conversation_id.clone());
            let c = index.conversation(key.clone());
            if seq <= c.last_seq {
                return 0; // a redelivery: every subscriber has it already
            }
            c.last_seq = seq;
            match &event.payload {
                ConversationPayload::Opened(o) => c.customer = Some(o.customer_id.clone()),
                ConversationPayload::MessagePosted(p) if p.private_note => customer_sees = false,
                ConversationPayload::MessagePosted(p) => {
                    c.public.insert(p.message_id.clone());
                }
                ConversationPayload::MessageEdited(p) => {
                    customer_sees = c.public.contains(&p.message_id);
                }
                ConversationPayload::MessageRedacted(p) => {
                    customer_sees = c.public.contains(&p.message_id);
                }
                _ => {}
            }
            let targets = c
                .subscribers
                .iter()
                .map(|s| (s.handle.clone(), s.audience))
                .collect();
            index.used(&key);
            targets
        };
        if targets.is_empty() {
            return 0;
        }
        let out = Arc::new(EventOut {
            conversation: envelope.conversation_id.as_str().into(),
            seq,
            json: render::event_frame(event, self.keys.as_ref())
                .to_json()
                .into(),
        });
        let mut queued = 0;
        for (handle, audience) in targets {
            if audience == Audience::Staff || customer_sees {
                handle.offer(Outbound::Event(out.clone()));
                self.delivered.fetch_add(1, Ordering::Relaxed);
                metrics::sent("event");
                metrics::delivered();
                queued += 1;
            }
        }
        queued
    }

    /// Starts following every partition of the conversation topic from its end. Returns once
    /// the followers are positioned, so no event appended afterwards can be missed, and the
    /// hub knows the offset each partition starts at.
    pub async fn follow(self: &Arc<Self>, log: Arc<dyn EventLog>) -> Result<(), LogError> {
        let topic = Topic::Conversations.name();
        let partitions = log.partitions(topic).await?;
        let mut followers = Vec::new();
        for partition in 0..partitions {
            followers.push(
                Follow::start(log.clone(), topic, partition, StartAt::Latest)
                    .await?
                    .counted("edge"),
            );
        }
        self.lock().positions = followers.iter().map(Follow::position).collect();
        for follower in followers {
            tokio::spawn(follow_partition(self.clone(), follower));
        }
        Ok(())
    }
}

async fn follow_partition(hub: Arc<Hub>, mut follow: Follow) {
    let partition = follow.partition();
    loop {
        let record = follow.next().await;
        // Continues the trace of the command that wrote the event (disabled when untraced).
        let span = tracing::debug_span!(
            "edge.deliver",
            partition,
            offset = record.offset,
            seq = tracing::field::Empty,
            frames = tracing::field::Empty,
        );
        switchboard_log::trace::set_parent(
            &span,
            record.header(switchboard_log::trace::TRACEPARENT),
        );
        span.in_scope(|| match ConversationEvent::decode(&record.value) {
            Ok(event) => {
                let frames = hub.deliver(&event, partition, record.offset);
                span.record("seq", event.envelope.seq.0);
                span.record("frames", frames);
            }
            Err(error) => {
                hub.pass(partition, record.offset);
                tracing::warn!(partition, offset = record.offset, %error, "undecodable event skipped by the edge");
            }
        });
    }
}
