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
use switchboard_events::{ChainHash, ConversationEvent, Seq, Timestamp, Topic};
use switchboard_log::{AppendOptions, EventLog, Fence, LogError, NewRecord, Position};
use tokio::sync::{mpsc, oneshot};

use crate::api::Ack;
use crate::command::{ConversationCommand, Limits};
use crate::conversation::stamp::{Cause, stamp};
use crate::conversation::{Context, ConversationState, Decision, Status, decide};
use crate::error::CommandError;
use crate::writer::StateConfig;
use crate::writer::keys::{DataKeys, KeySealer};
use crate::writer::replay;
use crate::writer::snapshot::{Held, Proof};

/// A command waiting for its shard.
pub(crate) struct Job {
    pub principal: Principal,
    pub conversation: ConversationId,
    /// The writer minted the id for this open: nothing can be parked under it.
    pub minted: bool,
    pub command: ConversationCommand,
    pub correlation: CorrelationId,
    pub reply: oneshot::Sender<Result<Ack, CommandError>>,
    /// The caller's span (disabled when nobody traces): the parent of the write's span.
    pub span: tracing::Span,
}

/// A conversation as the writer knows it: ids are scoped by tenant, so the same id in two
/// tenants is two conversations, and one tenant's id says nothing about another's.
pub(crate) type Key = (TenantId, ConversationId);

/// The most commands decided and appended together.
const MAX_BATCH: usize = 512;

/// A conversation in memory, and when a command or an event last used it.
pub(super) struct Resident {
    pub held: Held,
    pub used: u64,
}

pub(crate) struct Shard {
    pub partition: u32,
    pub log: Arc<dyn EventLog>,
    pub keys: Arc<dyn DataKeys>,
    pub limits: Limits,
    pub(super) config: StateConfig,
    pub(super) states: HashMap<Key, Resident>,
    /// Conversations whose events do not fold: the log holds something the writer never wrote.
    pub(super) poisoned: HashMap<Key, String>,
    /// Ids with a record that does not decode: its tenant is unknown, so the id refuses
    /// commands in every tenant (the log is damaged; an operator must act).
    pub(super) undecodable: HashMap<ConversationId, String>,
    /// Events read while catching up for conversations not in memory: folded onto their
    /// parked states once the read is done.
    pub(super) pending: HashMap<Key, Vec<(u64, ConversationEvent)>>,
    key_cache: HashMap<(TenantId, CustomerId), Option<DataKey>>,
    /// The next offset of the partition this shard has folded.
    pub(super) next_offset: u64,
    /// The record at `next_offset - 1`, when it decoded: what a snapshot is proved by.
    pub(super) last: Option<Proof>,
    /// The `next_offset` of the last snapshot written or loaded.
    pub(super) snapshot_at: u64,
    /// Bumped by every use, to find the conversations used least recently.
    pub(super) tick: u64,
    /// Set after a failed append: the tail must be read before deciding anything.
    pub(super) stale: bool,
    /// Set after a failed append that had changed states: they are rebuilt, not caught up.
    rebuild: bool,
    /// Customers whose erasure was read from the log: their keys must be gone.
    pub(super) erased_in_log: Vec<(TenantId, CustomerId)>,
    /// This shard's claim on its partition; every append is made under it.
    fence: Option<Fence>,
    /// A newer claim took the partition: the shard answers `not_owner` from now on.
    deposed: bool,
    /// Conversations the last batches resolved: parked after the batch, whatever the bound.
    pub(super) resolved: Vec<Key>,
    /// Resolved conversations brought back from the cache, with the seq they came back at:
    /// dropped again after the batch if it left them as parked (a refused command, a retry).
    pub(super) unparked: Vec<(Key, Seq)>,
    /// The conversations in memory as the metrics gauge counts them.
    pub(super) counted: usize,
}

impl Drop for Shard {
    fn drop(&mut self) {
        crate::metrics::held_conversations(-(self.counted as i64));
    }
}

impl Shard {
    pub fn new(
        partition: u32,
        log: Arc<dyn EventLog>,
        keys: Arc<dyn DataKeys>,
        limits: Limits,
        config: StateConfig,
    ) -> Self {
        Self {
            partition,
            log,
            keys,
            limits,
            config,
            states: HashMap::new(),
            poisoned: HashMap::new(),
            undecodable: HashMap::new(),
            pending: HashMap::new(),
            key_cache: HashMap::new(),
            next_offset: 0,
            last: None,
            snapshot_at: 0,
            tick: 0,
            stale: true,
            rebuild: true,
            erased_in_log: Vec::new(),
            fence: None,
            deposed: false,
            resolved: Vec::new(),
            unparked: Vec::new(),
            counted: 0,
        }
    }

    /// Claims the partition (fencing any earlier writer of it) and folds it to its end: the
    /// new owner's first two steps (see `ownership.md`), from the latest snapshot the log
    /// proves (see `state.md`).
    pub async fn take_ownership(&mut self, fencing: bool) -> Result<(), CommandError> {
        self.fence = replay::claim(
            self.log.as_ref(),
            Topic::Conversations,
            self.partition,
            fencing,
        )
        .await?;
        self.catch_up().await?;
        self.snapshot_if_due().await;
        Ok(())
    }

    /// Folds every event of the partition not yet folded; after a failed append that had
    /// changed states, from the latest snapshot again.
    pub async fn catch_up(&mut self) -> Result<(), CommandError> {
        if self.rebuild {
            self.restore().await;
            self.rebuild = false;
        }
        let log = self.log.clone();
        let mut next = self.next_offset;
        let read = replay::read_to_end(
            log.as_ref(),
            Topic::Conversations,
            self.partition,
            &mut next,
            |record| self.fold(&record.key, &record.value, record.offset),
        )
        .await;
        self.next_offset = next;
        read?;
        self.fold_pending().await?;
        // An erasure whose key destruction was cut short by a crash is finished here.
        for (tenant, customer) in std::mem::take(&mut self.erased_in_log) {
            self.keys.destroy(&tenant, &customer).await?;
            self.key_cache.insert((tenant, customer), None);
        }
        self.stale = false;
        self.evict().await;
        Ok(())
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
        // The writer is going away: leave a snapshot for whoever folds the partition next.
        self.snapshot_if_due_every(1).await;
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
        let mut written = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        let mut erasures = Vec::new();
        for job in batch {
            let span = tracing::debug_span!(
                parent: &job.span,
                "ingest.write",
                partition = self.partition,
                kind = job.command.name(),
                seq = tracing::field::Empty,
                offset = tracing::field::Empty,
            );
            let first = records.len();
            let answer = self
                .decide_one(
                    &job,
                    now,
                    &mut touched,
                    &mut records,
                    &mut written,
                    &mut erasures,
                )
                .await;
            // Every record of the command carries its trace, so the projector's and the
            // edge's spans continue it.
            if let Some(header) = switchboard_log::trace::header(&span) {
                for record in &mut records[first..] {
                    record.headers.push(header.clone());
                }
            }
            answers.push((job.reply, answer, Traced::new(span, first..records.len())));
        }
        if !records.is_empty() {
            let appended = self
                .log
                .append(Topic::Conversations.name(), records, &self.append_options())
                .await;
            match appended {
                Ok(positions) => {
                    for (_, answer, traced) in &answers {
                        traced.appended(answer, &positions);
                    }
                    self.appended(&positions, written)
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
                    // The states hold events the log may not have: rebuild them from the
                    // latest snapshot and the log before the next batch.
                    self.rebuild |= touched;
                    self.stale = true;
                    for (reply, answer, _) in answers {
                        let _ = reply.send(answer.and(Err(error.clone())));
                    }
                    return;
                }
            }
        }
        // The erasure events are durable: now the keys can go. One that fails is retried
        // after the next batch, and no snapshot is taken until it is gone.
        erasures.append(&mut self.erased_in_log);
        for (tenant, customer) in erasures {
            if let Err(e) = self.keys.destroy(&tenant, &customer).await {
                tracing::error!(%tenant, %customer, error = %e, "erasure event written but the data key was not destroyed; retried after the next batch");
                self.erased_in_log.push((tenant.clone(), customer.clone()));
            }
            self.key_cache.insert((tenant, customer), None);
        }
        for (reply, answer, _) in answers {
            let _ = reply.send(answer);
        }
        self.evict().await;
        self.snapshot_if_due().await;
    }

    /// Records where the batch's events landed: the proofs of their conversations' states.
    fn appended(&mut self, positions: &[Position], written: Vec<(Key, ChainHash)>) {
        for (position, (id, hash)) in positions.iter().zip(written) {
            let proof = Proof {
                offset: position.offset,
                hash: hash.0,
            };
            if let Some(resident) = self.states.get_mut(&id) {
                resident.held.last = proof;
                if resident.held.state.status == Status::Resolved {
                    self.resolved.push(id);
                }
            }
            if position.offset + 1 >= self.next_offset {
                self.next_offset = position.offset + 1;
                self.last = Some(proof);
            }
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
        written: &mut Vec<(Key, ChainHash)>,
        erasures: &mut Vec<(TenantId, CustomerId)>,
    ) -> Result<Ack, CommandError> {
        let tenant = &job.principal.tenant;
        let id: Key = (tenant.clone(), job.conversation.clone());
        if !job.minted {
            self.bring_back(&id).await?;
        }
        if let Some(reason) = self
            .poisoned
            .get(&id)
            .or_else(|| self.undecodable.get(&job.conversation))
        {
            return Err(CommandError::Internal(format!(
                "conversation cannot be rebuilt from the log: {reason}"
            )));
        }
        let customer = match (self.state(&id), &job.command) {
            (Some(state), _) => Some(state.customer.clone()),
            (None, ConversationCommand::Open(open)) => Some(open.customer_id.clone()),
            (None, _) => None,
        };
        // States are found by the principal's tenant, so the key is always of its own tenant.
        let key = match &customer {
            Some(customer) => self.key(tenant, customer).await?,
            None => None,
        };
        let nobody = CustomerId::new("unknown").expect("valid id");
        let sealer = KeySealer {
            tenant,
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
        let state = self.state(&id);
        let decision = decide(state, &job.command, &ctx)?;
        let payloads = match decision {
            Decision::AlreadyDone(seq) => return Ok(self.ack(job, &id, seq, true)),
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
            written.push((id.clone(), event.envelope.hash));
            match self.states.get_mut(&id) {
                Some(resident) => resident
                    .held
                    .state
                    .apply(&event)
                    .map_err(|e| CommandError::Internal(e.to_string()))?,
                None => {
                    let state = ConversationState::opened(&event)
                        .map_err(|e| CommandError::Internal(e.to_string()))?;
                    // Where it lands is known once the append returns (`appended`).
                    let last = Proof {
                        offset: u64::MAX,
                        hash: event.envelope.hash.0,
                    };
                    self.hold(id.clone(), Held { state, last });
                }
            }
        }
        Ok(self.ack(job, &id, last, false))
    }

    fn ack(&self, job: &Job, id: &Key, seq: Seq, unchanged: bool) -> Ack {
        let (seq, message_id) = match &job.command {
            ConversationCommand::PostMessage(post) => self
                .state(id)
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

/// A command's span in the shard and the records it appended in the batch.
struct Traced {
    span: tracing::Span,
    records: std::ops::Range<usize>,
}

impl Traced {
    fn new(span: tracing::Span, records: std::ops::Range<usize>) -> Self {
        Self { span, records }
    }

    /// Records where the command's last event landed, once the log acknowledged it.
    fn appended(&self, answer: &Result<Ack, CommandError>, positions: &[Position]) {
        if self.span.is_disabled() {
            return;
        }
        if let Ok(ack) = answer {
            self.span.record("seq", ack.seq.0);
        }
        if let Some(position) = self.records.clone().last().and_then(|i| positions.get(i)) {
            self.span.record("offset", position.offset);
        }
    }
}

fn new_message_id() -> MessageId {
    MessageId::new(format!("m-{}", uuid::Uuid::now_v7().simple())).expect("a valid id")
}

pub(crate) fn unavailable(e: switchboard_log::LogError) -> CommandError {
    CommandError::Unavailable(e.to_string())
}
