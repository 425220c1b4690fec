//! The writer: the [`CommandHandler`] that owns partitions of the log and is the single writer
//! of every conversation (and agent) on them. See `ownership.md` for how ownership moves
//! between instances.

mod agents;
pub mod keys;
mod shard;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use switchboard_events::Topic;
use switchboard_events::id::{AgentId, ConversationId, CorrelationId};
use switchboard_events::partition::partition_for_key;
use switchboard_events::principal::Principal;
use switchboard_log::{EventLog, TopicSpec};
use tokio::sync::{mpsc, oneshot};

use crate::api::{Ack, CommandHandler};
use crate::command::{AgentCommand, ConversationCommand, Limits};
use crate::error::CommandError;
use agents::{AgentJob, AgentShard};
use keys::DataKeys;
use shard::{Job, Shard, unavailable};

/// How the writer is set up.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Partitions of the conversation topic (created with this many when missing).
    pub conversation_partitions: u32,
    /// Partitions of the agent topic.
    pub agent_partitions: u32,
    pub limits: Limits,
    /// Commands waiting per partition before callers are told the service is overloaded.
    pub queue_depth: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            conversation_partitions: 12,
            agent_partitions: 4,
            limits: Limits::default(),
            queue_depth: 4096,
        }
    }
}

/// The single writer of the partitions it owns.
#[derive(Clone, Debug)]
pub struct Writer {
    conversations: Arc<Vec<mpsc::Sender<Job>>>,
    agents: Arc<Vec<mpsc::Sender<AgentJob>>>,
}

impl Writer {
    /// Creates the topics if needed, rebuilds the state of every partition from the log, and
    /// only then starts taking commands. This instance owns every partition: the embedded
    /// deployment, or a single ingest instance.
    pub async fn start(
        log: Arc<dyn EventLog>,
        keys: Arc<dyn DataKeys>,
        config: WriterConfig,
    ) -> Result<Self, CommandError> {
        let conversations_topic =
            TopicSpec::new(Topic::Conversations.name(), config.conversation_partitions);
        log.create_topic(&conversations_topic)
            .await
            .map_err(unavailable)?;
        log.create_topic(&TopicSpec::new(
            Topic::Agents.name(),
            config.agent_partitions,
        ))
        .await
        .map_err(unavailable)?;
        let conversation_partitions = log
            .partitions(Topic::Conversations.name())
            .await
            .map_err(unavailable)?;
        let agent_partitions = log
            .partitions(Topic::Agents.name())
            .await
            .map_err(unavailable)?;

        let mut conversations = Vec::new();
        for partition in 0..conversation_partitions {
            let mut shard = Shard::new(partition, log.clone(), keys.clone(), config.limits.clone());
            shard.take_ownership().await?;
            let (tx, rx) = mpsc::channel(config.queue_depth);
            tokio::spawn(shard.run(rx));
            conversations.push(tx);
        }
        let mut agents = Vec::new();
        for partition in 0..agent_partitions {
            let mut shard = AgentShard::new(partition, log.clone(), config.limits.clone());
            shard.take_ownership().await?;
            let (tx, rx) = mpsc::channel(config.queue_depth);
            tokio::spawn(shard.run(rx));
            agents.push(tx);
        }
        Ok(Self {
            conversations: Arc::new(conversations),
            agents: Arc::new(agents),
        })
    }
}

fn enqueue<T>(queue: &mpsc::Sender<T>, job: T) -> Result<(), CommandError> {
    queue.try_send(job).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => CommandError::Overloaded,
        mpsc::error::TrySendError::Closed(_) => {
            CommandError::Unavailable("the writer stopped".to_owned())
        }
    })
}

async fn answer(reply: oneshot::Receiver<Result<Ack, CommandError>>) -> Result<Ack, CommandError> {
    reply
        .await
        .unwrap_or_else(|_| Err(CommandError::Unavailable("the writer stopped".to_owned())))
}

impl CommandHandler for Writer {
    async fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let conversation = match (conversation, &command) {
            (Some(id), _) => id,
            (None, ConversationCommand::Open(_)) => new_conversation_id(),
            (None, _) => return Err(CommandError::invalid("conversation_id", "it is required")),
        };
        let partition = partition_for_key(
            conversation.as_str().as_bytes(),
            self.conversations.len() as u32,
        );
        let (reply, answered) = oneshot::channel();
        enqueue(
            &self.conversations[partition as usize],
            Job {
                principal,
                conversation,
                command,
                correlation,
                reply,
            },
        )?;
        answer(answered).await
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let partition = partition_for_key(
            principal.tenant.as_str().as_bytes(),
            self.agents.len() as u32,
        );
        let (reply, answered) = oneshot::channel();
        enqueue(
            &self.agents[partition as usize],
            AgentJob {
                principal,
                agent,
                command,
                correlation,
                reply,
            },
        )?;
        answer(answered).await
    }
}

fn new_conversation_id() -> ConversationId {
    ConversationId::new(format!("c-{}", uuid::Uuid::now_v7().simple())).expect("a valid id")
}
