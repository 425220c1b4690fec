//! The writer: the [`CommandHandler`] that owns partitions of the log and is the single writer
//! of every conversation (and agent) on them. See `ownership.md` for how ownership moves
//! between instances.

mod agents;
pub mod cache;
pub mod directory;
pub mod keys;
mod memory;
mod replay;
mod shard;
mod snapshot;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;
use switchboard_events::Topic;
use switchboard_events::id::{AgentId, ConversationId, CorrelationId};
use switchboard_events::partition::partition_for_key;
use switchboard_events::principal::Principal;

use switchboard_log::{EventLog, GroupEvent, GroupMember, StartAt, TopicSpec};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::api::{Ack, CommandHandler};
use crate::command::{AgentCommand, ConversationCommand, Limits};
use crate::error::CommandError;
use crate::metrics;
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
    /// Claim each partition before writing it, so that a deposed owner cannot append (see
    /// `ownership.md`). Turn it off only for a single writer on a broker without transactions
    /// (tansu in tests): several instances without fencing may write the same seq twice.
    pub fencing: bool,
    pub state: StateConfig,
}

/// How much conversation state a writer keeps in memory, and how often it snapshots it (see
/// `state.md`). The `ingest.writer_state` section of the binary's configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Conversations one partition keeps in memory; beyond it, the least recently used are
    /// parked in the writer's cache until they are used again.
    pub max_conversations: usize,
    /// Records folded or appended between two snapshots of a partition.
    pub snapshot_every: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            max_conversations: 20_000,
            snapshot_every: 20_000,
        }
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            conversation_partitions: 12,
            agent_partitions: 4,
            limits: Limits::default(),
            queue_depth: 4096,
            fencing: true,
            state: StateConfig::default(),
        }
    }
}

/// One sender per partition of a topic: `None` while another instance owns the partition.
type Slots<T> = Arc<Vec<RwLock<Option<mpsc::Sender<T>>>>>;

/// The single writer of the partitions it owns.
#[derive(Clone, Debug)]
pub struct Writer {
    conversations: Slots<Job>,
    agents: Slots<AgentJob>,
    running: Arc<Running>,
}

/// The writer's tasks: what [`Writer::stop`] ends and waits for.
#[derive(Debug, Default)]
struct Running {
    /// Set by [`Writer::stop`]: commands are refused from then on.
    stopping: AtomicBool,
    /// The tasks that follow the consumer group, when ownership comes from one.
    membership: Mutex<Vec<JoinHandle<()>>>,
    /// Every shard task started, conversation and agent alike.
    shards: Tasks,
}

/// Shard tasks, shared with whatever starts them (the group followers too).
type Tasks = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// Aborts the group-following tasks when the last handle of the writer goes without a stop.
impl Drop for Running {
    fn drop(&mut self) {
        for task in lock(&self.membership).iter() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything a shard needs to be built.
#[derive(Clone)]
struct Parts {
    log: Arc<dyn EventLog>,
    keys: Arc<dyn DataKeys>,
    config: WriterConfig,
    shards: Tasks,
}

impl Parts {
    async fn conversation_shard(&self, partition: u32) -> Result<mpsc::Sender<Job>, CommandError> {
        let mut shard = Shard::new(
            partition,
            self.log.clone(),
            self.keys.clone(),
            self.config.limits.clone(),
            self.config.state.clone(),
        );
        shard.take_ownership(self.config.fencing).await?;
        let (tx, rx) = mpsc::channel(self.config.queue_depth);
        self.spawn(shard.run(rx));
        Ok(tx)
    }

    /// Starts a shard's task and keeps its handle, forgetting those of shards that ended
    /// (a revoked partition's).
    fn spawn(&self, run: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut shards = lock(&self.shards);
        shards.retain(|task| !task.is_finished());
        shards.push(tokio::spawn(run));
    }

    async fn agent_shard(&self, partition: u32) -> Result<mpsc::Sender<AgentJob>, CommandError> {
        let mut shard = AgentShard::new(partition, self.log.clone(), self.config.limits.clone());
        shard.take_ownership(self.config.fencing).await?;
        let (tx, rx) = mpsc::channel(self.config.queue_depth);
        self.spawn(shard.run(rx));
        Ok(tx)
    }

    /// Creates both topics when missing and returns their partition counts.
    async fn topics(&self) -> Result<(u32, u32), CommandError> {
        let log = &self.log;
        let spec = |topic: Topic, n| TopicSpec::new(topic.name(), n);
        log.create_topic(&spec(
            Topic::Conversations,
            self.config.conversation_partitions,
        ))
        .await
        .map_err(unavailable)?;
        log.create_topic(&spec(Topic::Agents, self.config.agent_partitions))
            .await
            .map_err(unavailable)?;
        let conversations = log
            .partitions(Topic::Conversations.name())
            .await
            .map_err(unavailable)?;
        let agents = log
            .partitions(Topic::Agents.name())
            .await
            .map_err(unavailable)?;
        Ok((conversations, agents))
    }
}

fn empty_slots<T>(n: u32) -> Slots<T> {
    Arc::new((0..n).map(|_| RwLock::new(None)).collect())
}

fn set<T>(slots: &Slots<T>, partition: u32, sender: Option<mpsc::Sender<T>>) {
    if let Some(slot) = slots.get(partition as usize) {
        *slot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sender;
    }
}

impl Writer {
    /// Creates the topics if needed, claims every partition, rebuilds its state from the log,
    /// and only then starts taking commands. This instance owns every partition: the embedded
    /// deployment, or a single ingest instance.
    pub async fn start(
        log: Arc<dyn EventLog>,
        keys: Arc<dyn DataKeys>,
        config: WriterConfig,
    ) -> Result<Self, CommandError> {
        let running = Arc::new(Running::default());
        let parts = Parts {
            log,
            keys,
            config,
            shards: running.shards.clone(),
        };
        let (conversation_partitions, agent_partitions) = parts.topics().await?;
        let conversations = empty_slots(conversation_partitions);
        for partition in 0..conversation_partitions {
            set(
                &conversations,
                partition,
                Some(parts.conversation_shard(partition).await?),
            );
            metrics::ownership(Topic::Conversations, partition, true);
        }
        let agents = empty_slots(agent_partitions);
        for partition in 0..agent_partitions {
            set(
                &agents,
                partition,
                Some(parts.agent_shard(partition).await?),
            );
        }
        Ok(Self {
            conversations,
            agents,
            running,
        })
    }

    /// Starts as one of several ingest instances: the partitions this instance owns are the
    /// ones the consumer group `group` assigns it, on both topics, and they move as instances
    /// come and go (see `ownership.md`). Commands on a partition owned elsewhere are answered
    /// `not_owner`.
    pub async fn start_in_group(
        log: Arc<dyn EventLog>,
        keys: Arc<dyn DataKeys>,
        config: WriterConfig,
        group: &str,
    ) -> Result<Self, CommandError> {
        let running = Arc::new(Running::default());
        let parts = Parts {
            log,
            keys,
            config,
            shards: running.shards.clone(),
        };
        let (conversation_partitions, agent_partitions) = parts.topics().await?;
        let conversations = empty_slots(conversation_partitions);
        let agents = empty_slots(agent_partitions);
        let join = |topic: Topic| {
            let log = parts.log.clone();
            let group = format!("{group}.{}", topic.name());
            async move {
                log.join_group(&group, topic.name(), StartAt::Latest)
                    .await
                    .map_err(unavailable)
            }
        };
        let conversation_member = join(Topic::Conversations).await?;
        let agent_member = join(Topic::Agents).await?;
        let tasks = vec![
            tokio::spawn(follow_group(
                Topic::Conversations,
                conversation_member,
                conversations.clone(),
                {
                    let parts = parts.clone();
                    move |p| {
                        let parts = parts.clone();
                        async move { parts.conversation_shard(p).await }
                    }
                },
            )),
            tokio::spawn(follow_group(Topic::Agents, agent_member, agents.clone(), {
                let parts = parts.clone();
                move |p| {
                    let parts = parts.clone();
                    async move { parts.agent_shard(p).await }
                }
            })),
        ];
        *lock(&running.membership) = tasks;
        Ok(Self {
            conversations,
            agents,
            running,
        })
    }

    /// Stops writing, for a graceful stop of the process: new commands are refused
    /// (`unavailable`), the group is no longer followed, every command already queued is
    /// decided and appended, each conversation partition writes its last snapshot (so the
    /// next owner folds no tail), and every shard task has ended when this returns. Shared
    /// by every clone; calling it again returns once the tasks it finds have ended.
    pub async fn stop(&self) {
        self.running.stopping.store(true, Ordering::Release);
        let membership = std::mem::take(&mut *lock(&self.running.membership));
        for task in &membership {
            task.abort();
        }
        // Ended for certain before the slots are emptied, so none is filled again.
        for task in membership {
            let _ = task.await;
        }
        // The shards end once their queues are empty and no sender is left.
        for p in 0..self.conversations.len() as u32 {
            set(&self.conversations, p, None);
            metrics::ownership(Topic::Conversations, p, false);
        }
        for p in 0..self.agents.len() as u32 {
            set(&self.agents, p, None);
        }
        let shards = std::mem::take(&mut *lock(&self.running.shards));
        for task in shards {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a writer shard did not end cleanly");
            }
        }
    }

    /// The partitions of the conversation topic this instance writes now.
    pub fn owned_conversation_partitions(&self) -> Vec<u32> {
        owned(&self.conversations)
    }
}

/// An instance leads the routing of the tenants whose agent partition it writes.
impl crate::routing::driver::Leadership for Writer {
    fn leads(&self, tenant: &switchboard_events::id::TenantId) -> bool {
        let partition = partition_for_key(tenant.as_str().as_bytes(), self.agents.len() as u32);
        self.agents.get(partition as usize).is_some_and(|slot| {
            slot.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        })
    }
}

fn owned<T>(slots: &Slots<T>) -> Vec<u32> {
    (0..slots.len() as u32)
        .filter(|&p| {
            slots[p as usize]
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        })
        .collect()
}

/// Follows a consumer group: a partition assigned to this member gets a shard (claim,
/// rebuild, serve); a revoked one loses it. The group's records themselves are not used.
async fn follow_group<T, F, Fut>(
    topic: Topic,
    mut member: Box<dyn GroupMember>,
    slots: Slots<T>,
    shard: F,
) where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<mpsc::Sender<T>, CommandError>>,
{
    loop {
        match member.next().await {
            Ok(GroupEvent::Assigned(partitions)) => {
                for p in partitions {
                    // A claim that fails is retried: the partition must not stay unowned.
                    let mut attempt = 0u32;
                    loop {
                        match shard(p).await {
                            Ok(sender) => {
                                set(&slots, p, Some(sender));
                                metrics::ownership(topic, p, true);
                                tracing::info!(partition = p, "took ownership");
                                break;
                            }
                            Err(e) => {
                                attempt += 1;
                                tracing::warn!(partition = p, attempt, error = %e, "claiming a partition failed; retrying");
                                tokio::time::sleep(std::time::Duration::from_millis(
                                    100 * u64::from(attempt.min(50)),
                                ))
                                .await;
                            }
                        }
                    }
                }
            }
            Ok(GroupEvent::Revoked(partitions)) => {
                for p in partitions {
                    set(&slots, p, None);
                    metrics::ownership(topic, p, false);
                    tracing::info!(partition = p, "gave up ownership");
                }
            }
            Ok(GroupEvent::Record(_)) => {}
            Err(e) => {
                tracing::error!(error = %e, "the ingest group member failed; this instance stops writing");
                for p in 0..slots.len() as u32 {
                    set(&slots, p, None);
                    metrics::ownership(topic, p, false);
                }
                return;
            }
        }
    }
}

fn enqueue<T>(
    running: &Running,
    slot: &RwLock<Option<mpsc::Sender<T>>>,
    job: T,
) -> Result<(), CommandError> {
    if running.stopping.load(Ordering::Acquire) {
        return Err(CommandError::Unavailable(
            "the writer is stopping".to_owned(),
        ));
    }
    let queue = slot
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let Some(queue) = queue else {
        return Err(CommandError::NotOwner { owner: None });
    };
    queue
        .try_send(job)
        .map(|()| metrics::queued(1))
        .map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CommandError::Overloaded,
            // The shard stopped: the partition was revoked while the job was on its way.
            mpsc::error::TrySendError::Closed(_) => CommandError::NotOwner { owner: None },
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
        let (kind, started) = (command.name(), Instant::now());
        let answer = self
            .decide_conversation(principal, conversation, command, correlation)
            .await;
        metrics::answered(kind, started, &answer);
        answer
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let (kind, started) = (command.name(), Instant::now());
        let answer = self
            .decide_agent(principal, agent, command, correlation)
            .await;
        metrics::answered(kind, started, &answer);
        answer
    }
}

impl Writer {
    async fn decide_conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let minted = conversation.is_none();
        let conversation = match (conversation, &command) {
            (Some(id), _) => id,
            (None, ConversationCommand::Open(_)) => self.new_conversation_id()?,
            (None, _) => return Err(CommandError::invalid("conversation_id", "it is required")),
        };
        let partition = partition_for_key(
            conversation.as_str().as_bytes(),
            self.conversations.len() as u32,
        );
        let (reply, answered) = oneshot::channel();
        enqueue(
            &self.running,
            &self.conversations[partition as usize],
            Job {
                principal,
                conversation,
                minted,
                command,
                correlation,
                reply,
                span: tracing::Span::current(),
            },
        )?;
        answer(answered).await
    }

    async fn decide_agent(
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
            &self.running,
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

    /// A fresh conversation id on a partition this instance owns, so that an open without an
    /// id succeeds on whichever instance it reaches: `not_owner` only when it owns none.
    fn new_conversation_id(&self) -> Result<ConversationId, CommandError> {
        let partitions = self.conversations.len() as u32;
        let owned = owned(&self.conversations);
        if owned.is_empty() {
            return Err(CommandError::NotOwner { owner: None });
        }
        // Ids hash uniformly: with one partition of P owned, P draws on average, and 64 P
        // miss it with a probability of about e^-64.
        for _ in 0..64 * partitions {
            let id = ConversationId::new(format!("c-{}", uuid::Uuid::now_v7().simple()))
                .expect("a valid id");
            if owned.contains(&partition_for_key(id.as_str().as_bytes(), partitions)) {
                return Ok(id);
            }
        }
        Err(CommandError::NotOwner { owner: None })
    }
}
