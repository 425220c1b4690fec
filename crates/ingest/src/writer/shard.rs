//! One partition of the conversation topic, owned by one task: the single writer of every
//! conversation that lands on it.
//!
//! The task takes commands in batches: it decides each against the conversation's state
//! (applying the resulting events to the state at once, so later commands of the batch see
//! them), appends every event of the batch in one call, and answers only when the log says
//! they are durable. If the append fails, the states are put back and the partition's tail is
//! read again before the next batch, so that events the log kept anyway are folded in and the
//! next seq never repeats one in the log.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_events::conversation::ConversationPayload;
use switchboard_events::id::{ConversationId, CorrelationId, CustomerId, MessageId, TenantId};
use switchboard_events::personal::DataKey;
use switchboard_events::principal::Principal;
use switchboard_events::{ConversationEvent, Seq, Timestamp, Topic};
use switchboard_log::{AppendOptions, EventLog, Fence, LogError, NewRecord};
use tokio::sync::{mpsc, oneshot};

use crate::api::Ack;
use crate::command::{ConversationCommand, Limits};
use crate::conversation::stamp::{Cause, stamp};
use crate::conversation::{Context, ConversationState, Decision, decide};
use crate::error::CommandError;
use crate::writer::keys::{DataKeys, KeySealer};
use crate::writer::replay;

/// A command waiting for its shard.
pub(crate) struct Job {
    pub principal: Principal,
    pub conversation: ConversationId,
    pub command: ConversationCommand,
    pub correlation: CorrelationId,
    pub reply: oneshot::Sender<Result<Ack, CommandError>>,
}

/// The most commands decided and appended together.
const MAX_BATCH: usize = 512;

pub(crate) struct Shard {
    pub partition: u32,
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<dyn DataKeys>,
    pub limits: Limits,
    states: HashMap<ConversationId, ConversationState>,
    /// Conversations whose events do not fold: the log holds something the writer never wrote.
    poisoned: HashMap<ConversationId, String>,
    key_cache: HashMap<(TenantId, CustomerId), Option<DataKey>>,
    /// The next offset of the partition this shard has folded.
    next_offset: u64,
    /// Set after a failed append: the tail must be read before deciding anything.
    stale: bool,
    /// Customers whose erasure was read from the log: their keys must be gone.
    erased_in_log: Vec<(TenantId, CustomerId)>,
    /// This shard's claim on its partition; every append is made under it.
    fence: Option<Fence>,
    /// A newer claim took the partition: the shard answers `not_owner` from now on.
    deposed: bool,
}

impl Shard {
    pub fn new(
        partition: u32,
        log: Arc<dyn EventLog>,
        keys: Arc<dyn DataKeys>,
        limits: Limits,
    ) -> Self {
        Self {
            partition,
            log,
            keys,
            limits,
            states: HashMap::new(),
            poisoned: HashMap::new(),
            key_cache: HashMap::new(),
            next_offset: 0,
            stale: true,
            erased_in_log: Vec::new(),
            fence: None,
            deposed: false,
        }
    }

    /// Claims the partition (fencing any earlier writer of it) and folds it to its end: the
    /// new owner's first two steps (see `ownership.md`).
    pub async fn take_ownership(&mut self, fencing: bool) -> Result<(), CommandError> {
        self.fence = replay::claim(
            self.log.as_ref(),
            Topic::Conversations,
            self.partition,
            fencing,
        )
        .await?;
        self.catch_up().await
    }

    /// Folds every event of the partition not yet folded.
    pub async fn catch_up(&mut self) -> Result<(), CommandError> {
        let log = self.log.clone();
        let mut next = self.next_offset;
        let read = replay::read_to_end(
            log.as_ref(),
            Topic::Conversations,
            self.partition,
            &mut next,
            |record| self.fold(&record.key, &record.value),
        )
        .await;
        self.next_offset = next;
        read?;
        // An erasure whose key destruction was cut short by a crash is finished here.
        for (tenant, customer) in std::mem::take(&mut self.erased_in_log) {
            self.keys.destroy(&tenant, &customer).await?;
            self.key_cache.insert((tenant, customer), None);
        }
        self.stale = false;
        Ok(())
    }

    fn fold(&mut self, key: &[u8], frame: &[u8]) {
        let event = match ConversationEvent::decode(frame) {
            Ok(event) => event,
            Err(e) => {
                if let Ok(id) = ConversationId::new(String::from_utf8_lossy(key).into_owned()) {
                    tracing::error!(partition = self.partition, conversation = %id, error = %e, "undecodable event; conversation refuses commands");
                    self.poisoned.insert(id, e.to_string());
                }
                return;
            }
        };
        let id = event.envelope.conversation_id.clone();
        if self.poisoned.contains_key(&id) {
            return;
        }
        if let ConversationPayload::CustomerDataErased(erased) = &event.payload {
            self.erased_in_log
                .push((event.envelope.tenant_id.clone(), erased.customer_id.clone()));
        }
        let folded = match self.states.get_mut(&id) {
            Some(state) => state.apply(&event),
            None => ConversationState::opened(&event).map(|state| {
                self.states.insert(id.clone(), state);
            }),
        };
        if let Err(e) = folded {
            tracing::error!(partition = self.partition, conversation = %id, error = %e, "events do not fold; conversation refuses commands");
            self.poisoned.insert(id.clone(), e.to_string());
            self.states.remove(&id);
        }
    }

    fn append_options(&self) -> AppendOptions {
        self.fence.map(AppendOptions::fenced).unwrap_or_default()
    }

    pub async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            crate::metrics::queued(-(batch.len() as i64));
            self.process(batch).await;
        }
    }

    async fn process(&mut self, batch: Vec<Job>) {
        if self.deposed {
            for job in batch {
                let _ = job.reply.send(Err(CommandError::NotOwner { owner: None }));
            }
            return;
        }
        if self.stale
            && let Err(e) = self.catch_up().await
        {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
            return;
        }
        let now = Timestamp::now();
        let mut touched = false;
        let mut records = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        let mut erasures = Vec::new();
        for job in batch {
            let answer = self
                .decide_one(&job, now, &mut touched, &mut records, &mut erasures)
                .await;
            answers.push((job.reply, answer));
        }
        if !records.is_empty() {
            let appended = self
                .log
                .append(Topic::Conversations.name(), records, &self.append_options())
                .await;
            match appended {
                Ok(positions) => {
                    if let Some(last) = positions.iter().map(|p| p.offset).max() {
                        self.next_offset = self.next_offset.max(last + 1);
                    }
                }
                Err(e) => {
                    let error = if matches!(e, LogError::Fenced { .. }) {
                        tracing::warn!(partition = self.partition, error = %e, "deposed: another writer claimed the partition");
                        self.deposed = true;
                        CommandError::NotOwner { owner: None }
                    } else {
                        tracing::warn!(partition = self.partition, error = %e, "append failed; commands are refused and the tail is read again");
                        unavailable(e)
                    };
                    // The states hold events the log may not have: fold the partition again
                    // from its start before the next batch. Rare, so simple beats fast here.
                    if touched {
                        self.states.clear();
                        self.poisoned.clear();
                        self.next_offset = 0;
                    }
                    self.stale = true;
                    for (reply, answer) in answers {
                        let _ = reply.send(answer.and(Err(error.clone())));
                    }
                    return;
                }
            }
        }
        // The erasure events are durable: now the keys can go.
        for (tenant, customer) in erasures {
            if let Err(e) = self.keys.destroy(&tenant, &customer).await {
                tracing::error!(%tenant, %customer, error = %e, "erasure event written but the data key was not destroyed; it is retried when the conversation is next rebuilt");
            }
            self.key_cache.insert((tenant, customer), None);
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }

    async fn key(
        &mut self,
        tenant: &TenantId,
        customer: &CustomerId,
    ) -> Result<Option<DataKey>, CommandError> {
        let cache_key = (tenant.clone(), customer.clone());
        if let Some(key) = self.key_cache.get(&cache_key) {
            return Ok(key.clone());
        }
        let key = self.keys.key(tenant, customer).await?;
        if self.key_cache.len() > 100_000 {
            self.key_cache.clear();
        }
        self.key_cache.insert(cache_key, key.clone());
        Ok(key)
    }

    async fn decide_one(
        &mut self,
        job: &Job,
        now: Timestamp,
        touched: &mut bool,
        records: &mut Vec<NewRecord>,
        erasures: &mut Vec<(TenantId, CustomerId)>,
    ) -> Result<Ack, CommandError> {
        if let Some(reason) = self.poisoned.get(&job.conversation) {
            return Err(CommandError::Internal(format!(
                "conversation cannot be rebuilt from the log: {reason}"
            )));
        }
        let tenant = &job.principal.tenant;
        let customer = match (self.states.get(&job.conversation), &job.command) {
            (Some(state), _) => Some(state.customer.clone()),
            (None, ConversationCommand::Open(open)) => Some(open.customer_id.clone()),
            (None, _) => None,
        };
        // The key of the conversation's own tenant: a foreign principal is refused by the rules
        // before any sealing, and must not make us create keys in its name.
        let key_tenant = self
            .states
            .get(&job.conversation)
            .map_or(tenant, |s| &s.tenant)
            .clone();
        let key = match &customer {
            Some(customer) => self.key(&key_tenant, customer).await?,
            None => None,
        };
        let nobody = CustomerId::new("unknown").expect("valid id");
        let sealer = KeySealer {
            tenant: &key_tenant,
            customer: customer.as_ref().unwrap_or(&nobody),
            key: key.as_ref(),
        };
        let ctx = Context {
            principal: &job.principal,
            now,
            limits: &self.limits,
            sealer: &sealer,
            message_id: new_message_id(),
        };
        let state = self.states.get(&job.conversation);
        let decision = decide(state, &job.command, &ctx)?;
        let payloads = match decision {
            Decision::AlreadyDone(seq) => return Ok(self.ack(job, seq, true)),
            Decision::Append(payloads) => payloads,
        };
        let cause = Cause {
            actor: job.principal.actor(),
            correlation_id: job.correlation,
            causation_id: None,
            now,
        };
        let stamped = stamp(state, tenant, &job.conversation, &cause, payloads)?;
        *touched = true;
        let mut last = Seq(0);
        for (event, frame) in stamped {
            if let ConversationPayload::CustomerDataErased(erased) = &event.payload {
                erasures.push((event.envelope.tenant_id.clone(), erased.customer_id.clone()));
            }
            let timestamp_ms = event.envelope.occurred_at.as_micros() / 1000;
            records.push(
                NewRecord::new(job.conversation.as_str(), frame).with_timestamp_ms(timestamp_ms),
            );
            last = event.envelope.seq;
            match self.states.get_mut(&job.conversation) {
                Some(state) => state
                    .apply(&event)
                    .map_err(|e| CommandError::Internal(e.to_string()))?,
                None => {
                    let state = ConversationState::opened(&event)
                        .map_err(|e| CommandError::Internal(e.to_string()))?;
                    self.states.insert(job.conversation.clone(), state);
                }
            }
        }
        Ok(self.ack(job, last, false))
    }

    fn ack(&self, job: &Job, seq: Seq, unchanged: bool) -> Ack {
        let (seq, message_id) = match &job.command {
            ConversationCommand::PostMessage(post) => self
                .states
                .get(&job.conversation)
                .and_then(|s| s.sends.get(&post.client_msg_id))
                .map_or((seq, None), |sent| {
                    (sent.seq, Some(sent.message_id.clone()))
                }),
            _ => (seq, None),
        };
        Ack {
            stream_id: job.conversation.to_string(),
            seq,
            unchanged,
            message_id,
        }
    }
}

fn new_message_id() -> MessageId {
    MessageId::new(format!("m-{}", uuid::Uuid::now_v7().simple())).expect("a valid id")
}

pub(crate) fn unavailable(e: switchboard_log::LogError) -> CommandError {
    CommandError::Unavailable(e.to_string())
}
