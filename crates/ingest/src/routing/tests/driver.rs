//! The driver on paused time: events go in as the log's tails would deliver them, and a fake
//! writer turns the router's commands into events and feeds them back. Nothing here does I/O,
//! so tokio's clock only moves when the driver waits for a deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_events::id::TenantId;
use switchboard_events::principal::Principal;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::*;
use crate::api::{Ack, CommandHandler};
use crate::command::{AgentCommand, ConversationCommand};
use crate::error::CommandError;
use crate::routing::driver::{Driver, Leadership};

/// Leads the tenants while its flag is up, as an instance owning their agent partition.
#[derive(Debug, Default)]
struct Lead(std::sync::atomic::AtomicBool);

impl Leadership for Lead {
    fn leads(&self, _: &TenantId) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Appends what the router commands to the shared [`Given`] log and forwards it to the driver.
struct FakeWriter {
    given: Arc<Mutex<Given>>,
    clock: Clock,
    start: Timestamp,
    forward: mpsc::Sender<AnyEvent>,
    commands: watch::Sender<Vec<String>>,
    /// How many commands to fail, first, as an unavailable log would.
    failures: AtomicUsize,
}

impl CommandHandler for FakeWriter {
    async fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        _correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let id = conversation.expect("the router names the conversation");
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if fail.is_ok() {
            return Err(CommandError::Unavailable("the log is down".to_owned()));
        }
        let now = self.clock.now();
        let (event, seq, line) = {
            let mut g = self.given.lock().unwrap_or_else(PoisonError::into_inner);
            g.now = now;
            let previous = g.router.state().conversations[&id].assignee.clone();
            let decision = match command {
                ConversationCommand::Assign { agent_id, policy } => Decision::Assign {
                    conversation: id.clone(),
                    agent: agent_id,
                    policy,
                    previous,
                    need: Need::Waiting,
                },
                ConversationCommand::Queue { team_id, reason } => Decision::Queue {
                    conversation: id.clone(),
                    team: team_id,
                    reason: reason.unwrap_or_default(),
                },
                ConversationCommand::PostMessage(post) => Decision::PostOfflineMessage {
                    conversation: id.clone(),
                    client_msg_id: post.client_msg_id,
                    body: post.body,
                },
                other => panic!("the router sent {other:?}"),
            };
            g.carry_out(&decision, principal.actor());
            let seq = g.router.state().conversations[&id].last_seq;
            let event = g.log.last().cloned().expect("an event");
            let at = (now.as_micros() - self.start.as_micros()) / 1_000_000;
            (event, seq, format!("{} at {at}s", summary(&decision)))
        };
        self.commands.send_modify(|c| c.push(line));
        let _ = self.forward.send(event).await;
        Ok(Ack {
            stream_id: id.to_string(),
            seq,
            unchanged: false,
            message_id: None,
        })
    }

    async fn agent(
        &self,
        _principal: Principal,
        _agent: AgentId,
        _command: AgentCommand,
        _correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        Err(CommandError::Internal(
            "the router never commands agents".to_owned(),
        ))
    }
}

struct Harness {
    given: Arc<Mutex<Given>>,
    clock: Clock,
    forward: mpsc::Sender<AnyEvent>,
    commands: watch::Receiver<Vec<String>>,
    handle: RouterHandle,
}

fn harness(config: RoutingConfig, start: Timestamp) -> Harness {
    harness_failing(config, start, 0)
}

fn harness_failing(config: RoutingConfig, start: Timestamp, failures: usize) -> Harness {
    harness_leading(config, start, failures, None)
}

fn harness_leading(
    config: RoutingConfig,
    start: Timestamp,
    failures: usize,
    leadership: Option<Arc<dyn Leadership>>,
) -> Harness {
    let mut g = given(config.clone());
    g.now = start;
    let given = Arc::new(Mutex::new(g));
    let clock = Clock::starting_at(start);
    let (forward, events) = mpsc::channel(64);
    let (commands, watched) = watch::channel(Vec::new());
    let writer = FakeWriter {
        given: given.clone(),
        clock,
        start,
        forward: forward.clone(),
        commands,
        failures: AtomicUsize::new(failures),
    };
    let driver_config = DriverConfig {
        routing: RoutingConfigs::new(config),
        ..DriverConfig::default()
    };
    let driver = Driver::new(Arc::new(writer), driver_config, clock).leading(leadership);
    Harness {
        given,
        clock,
        forward,
        commands: watched,
        handle: driver.spawn(events, JoinSet::new()),
    }
}

impl Harness {
    /// Events that happen now, delivered to the router as the log would.
    async fn when(&self, happen: impl FnOnce(&mut Given)) {
        let events = {
            let mut g = self.given.lock().unwrap_or_else(PoisonError::into_inner);
            g.now = self.clock.now();
            let before = g.log.len();
            happen(&mut g);
            g.log[before..].to_vec()
        };
        for event in events {
            self.forward.send(event).await.expect("the driver runs");
        }
    }

    /// The router's commands so far, once there are `count`. Fails if the driver goes idle
    /// for a virtual day without reaching them.
    async fn commands(&mut self, count: usize) -> Vec<String> {
        let reached = self.commands.wait_for(|c| c.len() >= count);
        tokio::time::timeout(Duration::from_secs(86_400), reached)
            .await
            .expect("the router decides in time")
            .expect("the writer lives")
            .clone()
    }
}

#[tokio::test(start_paused = true)]
async fn an_agent_who_does_not_answer_loses_the_conversation_after_the_timeout() {
    let mut h = harness(RoutingConfig::default(), secs(0));
    h.when(|g| {
        g.online("a1", 5, &[])
            .online("a2", 5, &[])
            .open("c1")
            .open("c2");
    })
    .await;
    assert_eq!(
        h.commands(2).await,
        [
            "assign c1 to a1 (RoundRobin) at 0s",
            "assign c2 to a2 (RoundRobin) at 0s"
        ]
    );
    h.when(|g| {
        g.reply("c2", "a2");
    })
    .await;
    assert_eq!(
        h.commands(3).await[2],
        "assign c1 to a2 from a1 (RoundRobin) at 120s"
    );
    h.when(|g| {
        g.reply("c1", "a2");
    })
    .await;
    // A virtual hour on: both conversations are answered, nothing moves.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.commands(0).await.len(), 3);
    h.handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn outside_business_hours_the_router_waits_for_opening() {
    let config = RoutingConfig {
        business_hours: Some(BusinessHours::weekdays(9 * 60, 17 * 60, 0)),
        ..RoutingConfig::default()
    };
    let mut h = harness(config, secs(8 * 3600)); // Monday 18:00
    h.when(|g| {
        g.online("a1", 5, &[]).open("c1");
    })
    .await;
    assert_eq!(
        h.commands(3).await,
        [
            "queue c1: outside business hours at 0s",
            "offline message in c1 as router-offline-c1-0 at 0s",
            "assign c1 to a1 (RoundRobin) at 54000s"
        ],
        "assigned when support opens on Tuesday at 09:00, 15 hours later"
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_customers_get_positions_and_a_full_queue_sheds_load() {
    let mut h = harness(
        RoutingConfig {
            queue_limit: 2,
            ..RoutingConfig::default()
        },
        secs(0),
    );
    let mut signals = h.handle.subscribe();
    let admission = h.handle.admission();
    let supervisor = Principal::new(
        fixtures::tenant(),
        switchboard_events::principal::Role::Supervisor,
        PrincipalId::new("sup-1").unwrap(),
    );
    let admit = || {
        let now = tokio::time::Instant::now().into_std();
        admission
            .admit(&supervisor, &customer("cust-9"), now)
            .map(drop)
    };
    assert_eq!(admit(), Ok(()));
    h.when(|g| {
        g.open("c1").at(1).open("c2");
    })
    .await;
    let mut positions = BTreeMap::new();
    while positions.get("c1") != Some(&1) || positions.get("c2") != Some(&2) {
        if let QueueSignal::Waiting { entry, .. } = signals.recv().await.expect("signals flow") {
            positions.insert(entry.conversation.to_string(), entry.position);
        }
    }
    assert_eq!(
        admit().unwrap_err().to_string(),
        "we are very busy, please try again later"
    );
    h.when(|g| {
        g.online("a1", 1, &[]);
    })
    .await;
    loop {
        match signals.recv().await.expect("signals flow") {
            QueueSignal::Left { conversation, .. } if conversation.as_str() == "c1" => break,
            _ => {}
        }
    }
    assert_eq!(admit(), Ok(()), "c1 left the queue");
    assert_eq!(h.commands(3).await[2], "assign c1 to a1 (RoundRobin) at 0s");
}

#[tokio::test(start_paused = true)]
async fn a_decision_that_failed_is_tried_again() {
    let mut h = harness_failing(RoutingConfig::default(), secs(0), 2);
    h.when(|g| {
        g.online("a1", 5, &[]).open("c1");
    })
    .await;
    assert_eq!(
        h.commands(1).await,
        ["assign c1 to a1 (RoundRobin) at 2s"],
        "tried at once, after a second, and again after another"
    );
}

#[tokio::test(start_paused = true)]
async fn a_router_that_does_not_lead_the_tenant_decides_nothing_until_it_takes_over() {
    let lead = Arc::new(Lead::default());
    let mut h = harness_leading(RoutingConfig::default(), secs(0), 0, Some(lead.clone()));
    h.when(|g| {
        g.online("a1", 5, &[]).open("c1");
    })
    .await;
    // Another instance leads the tenant: a virtual minute passes without a decision here.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.commands(0).await.len(), 0, "only the leader decides");
    // The leader died and its agent partition came here: what it left undone is decided.
    lead.0.store(true, Ordering::SeqCst);
    assert_eq!(h.commands(1).await, ["assign c1 to a1 (RoundRobin) at 60s"]);
    h.handle.stop().await;
}
