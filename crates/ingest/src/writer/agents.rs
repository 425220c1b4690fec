//! One partition of the agent topic (keyed by tenant): the single writer of the agents of the
//! tenants that land on it. Same batching and recovery as the conversation shards.

use std::collections::HashMap;
use std::sync::Arc;

use switchboard_events::id::{AgentId, CorrelationId, TenantId};
use switchboard_events::principal::Principal;
use switchboard_events::{AgentEvent, Timestamp, Topic};
use switchboard_log::{AppendOptions, EventLog, Fence, LogError, NewRecord};
use tokio::sync::{mpsc, oneshot};

use crate::agent::AgentState;
use crate::api::Ack;
use crate::command::{AgentCommand, Limits};
use crate::conversation::stamp::Cause;
use crate::error::CommandError;
use crate::writer::replay;
use crate::writer::shard::unavailable;

pub(crate) struct AgentJob {
    pub principal: Principal,
    pub agent: AgentId,
    pub command: AgentCommand,
    pub correlation: CorrelationId,
    pub reply: oneshot::Sender<Result<Ack, CommandError>>,
}

pub(crate) struct AgentShard {
    pub partition: u32,
    pub log: Arc<dyn EventLog>,
    pub limits: Limits,
    states: HashMap<(TenantId, AgentId), AgentState>,
    next_offset: u64,
    stale: bool,
    fence: Option<Fence>,
    deposed: bool,
}

impl AgentShard {
    pub fn new(partition: u32, log: Arc<dyn EventLog>, limits: Limits) -> Self {
        Self {
            partition,
            log,
            limits,
            states: HashMap::new(),
            next_offset: 0,
            stale: true,
            fence: None,
            deposed: false,
        }
    }

    /// Claims the partition and folds it to its end.
    pub async fn take_ownership(&mut self, fencing: bool) -> Result<(), CommandError> {
        self.fence =
            replay::claim(self.log.as_ref(), Topic::Agents, self.partition, fencing).await?;
        self.catch_up().await
    }

    pub async fn catch_up(&mut self) -> Result<(), CommandError> {
        let log = self.log.clone();
        let mut next = self.next_offset;
        let read = replay::read_to_end(
            log.as_ref(),
            Topic::Agents,
            self.partition,
            &mut next,
            |record| self.fold(&record),
        )
        .await;
        self.next_offset = next;
        read?;
        self.stale = false;
        Ok(())
    }

    fn fold(&mut self, record: &switchboard_log::Record) {
        match AgentEvent::decode(&record.value) {
            Ok(event) => {
                let key = (
                    event.envelope.tenant_id.clone(),
                    event.envelope.agent_id.clone(),
                );
                let state = self
                    .states
                    .entry(key.clone())
                    .or_insert_with(|| AgentState::new(key.0, key.1));
                if let Err(e) = state.apply(&event) {
                    tracing::error!(partition = self.partition, error = %e, "agent events do not fold");
                }
            }
            Err(e) => {
                tracing::error!(partition = self.partition, offset = record.offset, error = %e, "undecodable agent event")
            }
        }
    }

    pub async fn run(mut self, mut jobs: mpsc::Receiver<AgentJob>) {
        while let Some(first) = jobs.recv().await {
            let mut batch = vec![first];
            while batch.len() < 512 {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            crate::metrics::queued(-(batch.len() as i64));
            self.process(batch).await;
        }
    }

    async fn process(&mut self, batch: Vec<AgentJob>) {
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
        let mut undo: HashMap<(TenantId, AgentId), Option<AgentState>> = HashMap::new();
        let mut records = Vec::new();
        let mut answers = Vec::new();
        for job in batch {
            let answer = self.decide_one(&job, now, &mut undo, &mut records);
            answers.push((job.reply, answer));
        }
        if !records.is_empty()
            && let Err(e) = self
                .log
                .append(
                    Topic::Agents.name(),
                    records,
                    &self.fence.map(AppendOptions::fenced).unwrap_or_default(),
                )
                .await
        {
            for (key, before) in undo {
                match before {
                    Some(state) => self.states.insert(key, state),
                    None => self.states.remove(&key),
                };
            }
            self.stale = true;
            let error = if matches!(e, LogError::Fenced { .. }) {
                self.deposed = true;
                CommandError::NotOwner { owner: None }
            } else {
                unavailable(e)
            };
            for (reply, answer) in answers {
                let _ = reply.send(answer.and(Err(error.clone())));
            }
            return;
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
    }

    fn decide_one(
        &mut self,
        job: &AgentJob,
        now: Timestamp,
        undo: &mut HashMap<(TenantId, AgentId), Option<AgentState>>,
        records: &mut Vec<NewRecord>,
    ) -> Result<Ack, CommandError> {
        let key = (job.principal.tenant.clone(), job.agent.clone());
        let existing = self.states.get(&key).cloned();
        let state = existing
            .clone()
            .unwrap_or_else(|| AgentState::new(key.0.clone(), key.1.clone()));
        let Some(payload) = state.decide(&job.principal, &job.command, &self.limits)? else {
            return Ok(Ack {
                stream_id: job.agent.to_string(),
                seq: state.last_seq,
                unchanged: true,
                message_id: None,
            });
        };
        let cause = Cause {
            actor: job.principal.actor(),
            correlation_id: job.correlation,
            causation_id: None,
            now,
        };
        let (event, frame) = state.stamp(&cause, payload)?;
        undo.entry(key.clone()).or_insert(existing);
        let mut state = state;
        state
            .apply(&event)
            .map_err(|e| CommandError::Internal(e.to_string()))?;
        let seq = state.last_seq;
        self.states.insert(key, state);
        // Keyed by tenant: one router instance sees all of a tenant's agents, in order.
        records.push(
            NewRecord::new(job.principal.tenant.as_str(), frame)
                .with_timestamp_ms(now.as_micros() / 1000),
        );
        Ok(Ack {
            stream_id: job.agent.to_string(),
            seq,
            unchanged: false,
            message_id: None,
        })
    }
}
