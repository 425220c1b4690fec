//! The router as a task: rebuilds every tenant's [`Router`] from the log (both topics, every
//! partition), then follows the log and issues each round of decisions through the
//! [`CommandHandler`], waking on its own for no-answer deadlines and business hours.
//!
//! A decision stays in flight from its command until its events come back through the tail
//! (see [`Router::settle`]), so nothing is decided twice. A command that failed for a passing
//! reason is decided again at the next round, at the latest [`RETRY_AFTER`] later; one the
//! writer refused by its rules waits for the conversation's next event. After a restart the log alone
//! says what was decided: the rebuilt routers decide only what is still undone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use switchboard_events::id::{ConversationId, CorrelationId, PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{AnyEvent, Timestamp, Topic};
use switchboard_log::{EventLog, LogError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::api::{Ack, CommandHandler};
use crate::error::CommandError;
use crate::routing::admission::Admission;
use crate::routing::clock::Clock;
use crate::routing::config::{RoutingConfigs, micros};
use crate::routing::decide::Decision;
use crate::routing::follow::{decode, follow};
use crate::routing::router::Router;
use crate::routing::signals::{Publisher, QueueSignal};

/// How soon a failed decision is tried again when nothing else happens.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Events from the tails waiting for the driver.
const INPUT_DEPTH: usize = 4096;

/// How often a router that leads only some tenants looks whether that changed.
const LEADERSHIP_POLL: Duration = Duration::from_millis(250);

/// Which tenants this driver decides for. Every driver folds every tenant (admission and queue
/// signals need the state), but only one decides per tenant: with several ingest instances,
/// the one whose writer owns the tenant's partition of the agent topic (keyed by tenant), so
/// the lead moves with that partition when an instance dies.
pub trait Leadership: Send + Sync + std::fmt::Debug + 'static {
    fn leads(&self, tenant: &TenantId) -> bool;
}

/// How the driver is set up.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub routing: RoutingConfigs,
    /// The subject of the service principal the router's commands are sent as.
    pub principal: PrincipalId,
    /// Queue signals buffered per subscriber; a slower subscriber misses the oldest.
    pub signal_capacity: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            routing: RoutingConfigs::default(),
            principal: PrincipalId::new("router").expect("a valid id"),
            signal_capacity: 1024,
        }
    }
}

/// The running router. Dropping it stops the task.
#[derive(Debug)]
pub struct RouterHandle {
    admission: Admission,
    signals: broadcast::Sender<QueueSignal>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RouterHandle {
    /// The admission gate the command API asks before opening a conversation.
    pub fn admission(&self) -> Admission {
        self.admission.clone()
    }

    /// Queue positions and wait estimates, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<QueueSignal> {
        self.signals.subscribe()
    }

    /// Stops the router after the round it is in.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RouterHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Rebuilds the routers from `log` and starts following it, deciding for every tenant. The
/// topics must exist (the writer creates them).
pub async fn start<H: CommandHandler>(
    log: Arc<dyn EventLog>,
    handler: Arc<H>,
    config: DriverConfig,
    clock: Clock,
) -> Result<RouterHandle, CommandError> {
    start_leading(log, handler, config, clock, None).await
}

/// [`start`], deciding only for the tenants `leadership` says this instance leads, when given.
pub async fn start_leading<H: CommandHandler>(
    log: Arc<dyn EventLog>,
    handler: Arc<H>,
    config: DriverConfig,
    clock: Clock,
    leadership: Option<Arc<dyn Leadership>>,
) -> Result<RouterHandle, CommandError> {
    let mut driver = Driver::new(handler, config, clock).leading(leadership);
    let (input, events) = mpsc::channel(INPUT_DEPTH);
    let mut tails = JoinSet::new();
    for topic in Topic::ALL {
        let partitions = log.partitions(topic.name()).await.map_err(unavailable)?;
        for partition in 0..partitions {
            let end = driver.rebuild(log.as_ref(), topic, partition).await?;
            if topic == Topic::Agents {
                crate::metrics::routing_partition(partition);
            }
            tails.spawn(follow(log.clone(), topic, partition, end, input.clone()));
        }
    }
    Ok(driver.spawn(events, tails))
}

fn unavailable(e: LogError) -> CommandError {
    CommandError::Unavailable(e.to_string())
}

pub(crate) struct Driver<H> {
    handler: Arc<H>,
    config: DriverConfig,
    clock: Clock,
    routers: BTreeMap<TenantId, Router>,
    /// Tenants to decide for at the next round.
    dirty: BTreeSet<TenantId>,
    /// Tenants whose failed decisions are retried at a time.
    retry: BTreeMap<TenantId, Timestamp>,
    admission: Admission,
    publisher: Publisher,
    signals: broadcast::Sender<QueueSignal>,
    /// `None`: this driver leads every tenant.
    leadership: Option<Arc<dyn Leadership>>,
    /// The tenants led at the last look, when leadership is partial.
    led: BTreeSet<TenantId>,
}

impl<H: CommandHandler> Driver<H> {
    pub fn new(handler: Arc<H>, config: DriverConfig, clock: Clock) -> Self {
        let (signals, _) = broadcast::channel(config.signal_capacity.max(1));
        Self {
            handler,
            clock,
            routers: BTreeMap::new(),
            dirty: BTreeSet::new(),
            retry: BTreeMap::new(),
            admission: Admission::new(config.routing.clone()),
            publisher: Publisher::new(signals.clone()),
            signals,
            config,
            leadership: None,
            led: BTreeSet::new(),
        }
    }

    /// Decides only for the tenants `leadership` says this instance leads, when given.
    pub(crate) fn leading(mut self, leadership: Option<Arc<dyn Leadership>>) -> Self {
        self.leadership = leadership;
        self
    }

    /// Folds a partition up to its current end; returns the end.
    async fn rebuild(
        &mut self,
        log: &dyn EventLog,
        topic: Topic,
        partition: u32,
    ) -> Result<u64, CommandError> {
        let range = log
            .offsets(topic.name(), partition)
            .await
            .map_err(unavailable)?;
        let mut next = range.start;
        while next < range.end {
            let records = log
                .read(topic.name(), partition, next, 1024)
                .await
                .map_err(unavailable)?;
            let Some(last) = records.last() else { break };
            next = last.offset + 1;
            for record in &records {
                if let Some(event) = decode(topic, record) {
                    self.apply(event);
                }
            }
        }
        Ok(next.max(range.end))
    }

    /// Starts the task: a first round for every tenant, then one per batch of events or
    /// deadline. `tails` are stopped with it.
    pub fn spawn(mut self, events: mpsc::Receiver<AnyEvent>, tails: JoinSet<()>) -> RouterHandle {
        let (stop, stopped) = oneshot::channel();
        let admission = self.admission.clone();
        let signals = self.signals.clone();
        self.dirty = self.routers.keys().cloned().collect();
        let task = tokio::spawn(async move {
            let _tails = tails;
            self.run(events, stopped).await;
        });
        RouterHandle {
            admission,
            signals,
            stop: Some(stop),
            task,
        }
    }

    async fn run(&mut self, mut events: mpsc::Receiver<AnyEvent>, mut stop: oneshot::Receiver<()>) {
        let partial = self.leadership.is_some();
        let mut poll = tokio::time::interval(LEADERSHIP_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.rounds().await;
            let now = self.clock.now();
            let deadline = self.next_deadline(now);
            let wake = deadline.as_ref().map(|(at, _)| self.clock.instant(*at));
            tokio::select! {
                biased;
                _ = &mut stop => return,
                _ = poll.tick(), if partial => self.take_over(),
                event = events.recv() => {
                    let Some(event) = event else { return };
                    self.apply(event);
                    // A batch, bounded so that a flood of events still leaves room for rounds.
                    for _ in 0..INPUT_DEPTH {
                        let Ok(event) = events.try_recv() else { break };
                        self.apply(event);
                    }
                }
                () = sleep_until(wake), if wake.is_some() => {
                    if let Some((_, due)) = deadline {
                        self.dirty.extend(due);
                    }
                }
            }
        }
    }

    fn apply(&mut self, event: AnyEvent) {
        let tenant = match &event {
            AnyEvent::Conversation(e) => &e.envelope.tenant_id,
            AnyEvent::Agent(e) => &e.envelope.tenant_id,
        };
        let router = self.routers.entry(tenant.clone()).or_insert_with(|| {
            Router::new(tenant.clone(), self.config.routing.get(tenant).clone())
        });
        match &event {
            AnyEvent::Conversation(e) => router.apply_conversation(e),
            AnyEvent::Agent(e) => router.apply_agent(e),
        }
        self.dirty.insert(tenant.clone());
    }

    /// The earliest time something is due, and the tenants due then.
    fn next_deadline(&self, now: Timestamp) -> Option<(Timestamp, Vec<TenantId>)> {
        let deadlines = self.routers.iter().filter_map(|(tenant, router)| {
            let retry = self.retry.get(tenant).copied();
            let due = match (router.next_deadline(now), retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            due.map(|at| (at, tenant))
        });
        let mut earliest: Option<(Timestamp, Vec<TenantId>)> = None;
        for (at, tenant) in deadlines {
            match &mut earliest {
                Some((e, tenants)) if *e == at => tenants.push(tenant.clone()),
                Some((e, _)) if *e < at => {}
                _ => earliest = Some((at, vec![tenant.clone()])),
            }
        }
        earliest
    }

    fn leads(&self, tenant: &TenantId) -> bool {
        self.leadership.as_ref().is_none_or(|l| l.leads(tenant))
    }

    /// Tenants this instance has come to lead get a round: what their previous leader left
    /// undecided is decided here.
    fn take_over(&mut self) {
        let led: BTreeSet<TenantId> = self
            .routers
            .keys()
            .filter(|t| self.leads(t))
            .cloned()
            .collect();
        for tenant in led.difference(&self.led) {
            tracing::info!(%tenant, "routing this tenant here");
            self.dirty.insert(tenant.clone());
        }
        self.led = led;
    }

    /// Decides for every dirty tenant and carries the decisions out.
    async fn rounds(&mut self) {
        let now = self.clock.now();
        for tenant in std::mem::take(&mut self.dirty) {
            self.retry.remove(&tenant);
            let leads = self.leads(&tenant);
            let Some(router) = self.routers.get_mut(&tenant) else {
                continue;
            };
            // Another instance decides for this tenant; this one keeps its state for admission.
            let decisions = if leads {
                router.decide(now)
            } else {
                Vec::new()
            };
            if !decisions.is_empty() {
                let results = execute(&self.handler, &self.config.principal, &tenant, decisions);
                let mut failed = false;
                for (conversation, result) in results.await {
                    match result {
                        Ok(ack) => router.settle(&conversation, ack.seq),
                        Err(e) if e.retriable() => {
                            tracing::warn!(%tenant, %conversation, error = %e, "routing decision failed; it is decided again");
                            router.abandon(&conversation);
                            failed = true;
                        }
                        Err(e) => {
                            tracing::warn!(%tenant, %conversation, error = %e, "routing decision refused; the conversation waits for its next event");
                            router.refuse(&conversation);
                        }
                    }
                }
                if failed {
                    let at = Timestamp(now.as_micros() + micros(RETRY_AFTER));
                    self.retry.insert(tenant.clone(), at);
                }
            }
            self.admission
                .update(router, tokio::time::Instant::now().into_std());
            self.publisher.publish(router, now);
        }
        let waiting = self.routers.values().map(Router::waiting_count).sum();
        let remembered = self
            .routers
            .values()
            .map(|r| r.state().conversations.len())
            .sum();
        crate::metrics::routing_load(self.routers.len(), waiting, remembered);
    }
}

/// Carries out a round's decisions: conversations in parallel, each one's decisions in order,
/// stopping at its first failure. Returns each conversation's last answer.
async fn execute<H: CommandHandler>(
    handler: &Arc<H>,
    subject: &PrincipalId,
    tenant: &TenantId,
    decisions: Vec<Decision>,
) -> Vec<(ConversationId, Result<Ack, CommandError>)> {
    let mut by_conversation: BTreeMap<ConversationId, Vec<Decision>> = BTreeMap::new();
    for decision in decisions {
        tracing::debug!(%tenant, ?decision, "routing");
        by_conversation
            .entry(decision.conversation().clone())
            .or_default()
            .push(decision);
    }
    let principal = Principal::new(tenant.clone(), Role::Service, subject.clone());
    let mut running = JoinSet::new();
    let mut tasks = BTreeMap::new();
    for (conversation, decisions) in by_conversation {
        let handler = handler.clone();
        let principal = principal.clone();
        let task_conversation = conversation.clone();
        let task = running.spawn(async move {
            let mut last = Err(CommandError::Internal("no decision".to_owned()));
            for decision in decisions {
                let correlation = CorrelationId(uuid::Uuid::now_v7());
                last = handler
                    .conversation(
                        principal.clone(),
                        Some(conversation.clone()),
                        decision.command(),
                        correlation,
                    )
                    .await;
                if last.is_err() {
                    break;
                }
                crate::metrics::routed(&decision);
            }
            (conversation, last)
        });
        tasks.insert(task.id(), task_conversation);
    }
    let mut results = Vec::new();
    while let Some(done) = running.join_next().await {
        match done {
            Ok(result) => results.push(result),
            Err(e) => {
                tracing::error!(%tenant, error = %e, "a routing command task failed");
                if let Some(conversation) = tasks.remove(&e.id()) {
                    let failed = CommandError::Unavailable("the command task failed".to_owned());
                    results.push((conversation, Err(failed)));
                }
            }
        }
    }
    results
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}
