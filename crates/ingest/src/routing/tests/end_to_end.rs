//! The router with the real writer on an embedded log: its decisions are events of record, and a
//! router restarted from the log does not decide them again.

use std::sync::Arc;
use std::time::Duration;

use switchboard_events::Topic;
use switchboard_events::agent::AgentStatus;
use switchboard_events::partition::partition_for_key;
use switchboard_events::principal::{Principal, Role};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{EventLog, StartAt};

use super::*;
use crate::admission::Admitting;
use crate::api::CommandHandler;
use crate::command::{AgentCommand, ConversationCommand, OpenConversation};
use crate::error::CommandError;
use crate::writer::keys::InMemoryKeys;
use crate::writer::{Writer, WriterConfig};

fn principal(role: Role, subject: &str) -> Principal {
    Principal::new(fixtures::tenant(), role, PrincipalId::new(subject).unwrap())
}

fn correlation() -> CorrelationId {
    CorrelationId(Uuid::now_v7())
}

async fn open(handler: &impl CommandHandler) -> Result<ConversationId, CommandError> {
    let o = opened();
    let command = ConversationCommand::Open(OpenConversation {
        customer_id: o.customer_id,
        channel: o.channel,
        priority: o.priority,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: BTreeMap::new(),
        customer_name: None,
        customer_email: None,
    });
    let ack = handler
        .conversation(
            principal(Role::Customer, "cust-1"),
            None,
            command,
            correlation(),
        )
        .await?;
    Ok(ConversationId::new(ack.stream_id).unwrap())
}

/// The conversation's events in the log, up to and including its first assignment.
async fn until_assigned(log: &dyn EventLog, id: &ConversationId) -> Vec<ConversationEvent> {
    let topic = Topic::Conversations.name();
    let partitions = log.partitions(topic).await.unwrap();
    let partition = partition_for_key(id.as_str().as_bytes(), partitions);
    let mut tail = log.tail(topic, partition, StartAt::Earliest).await.unwrap();
    let mut events = Vec::new();
    let follow = async {
        loop {
            let record = tail.next().await.unwrap();
            let event = ConversationEvent::decode(&record.value).unwrap();
            if event.envelope.conversation_id != *id {
                continue;
            }
            let assigned = matches!(event.payload, ConversationPayload::AgentAssigned(_));
            events.push(event);
            if assigned {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), follow)
        .await
        .expect("the router assigns the conversation");
    events
}

/// Every event of the conversation now in the log.
async fn history(log: &dyn EventLog, id: &ConversationId) -> Vec<ConversationEvent> {
    let topic = Topic::Conversations.name();
    let partition = partition_for_key(id.as_str().as_bytes(), log.partitions(topic).await.unwrap());
    let end = log.offsets(topic, partition).await.unwrap().end;
    let records = log.read(topic, partition, 0, end as usize).await.unwrap();
    records
        .iter()
        .map(|r| ConversationEvent::decode(&r.value).unwrap())
        .filter(|e| e.envelope.conversation_id == *id)
        .collect()
}

fn assignments(events: &[ConversationEvent]) -> Vec<(AgentId, AssignmentPolicy, ActorKind)> {
    events
        .iter()
        .filter_map(|e| match &e.payload {
            ConversationPayload::AgentAssigned(a) => {
                Some((a.agent_id.clone(), a.policy, e.envelope.actor.kind))
            }
            _ => None,
        })
        .collect()
}

async fn writer(dir: &std::path::Path) -> (Arc<dyn EventLog>, Writer) {
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir)).unwrap());
    let config = WriterConfig {
        conversation_partitions: 4,
        agent_partitions: 2,
        ..WriterConfig::default()
    };
    let writer = Writer::start(log.clone(), Arc::new(InMemoryKeys::default()), config)
        .await
        .unwrap();
    (log, writer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_agent_gets_a_new_conversation_and_the_assignment_is_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = writer(dir.path()).await;
    let online = AgentCommand::SetStatus {
        status: AgentStatus::Online,
    };
    writer
        .agent(
            principal(Role::Agent, "a1"),
            agent("a1"),
            online,
            correlation(),
        )
        .await
        .unwrap();

    // The router starts after the agent went online: it learns that from the log.
    let handler = Arc::new(writer.clone());
    let router = crate::routing::driver::start(
        log.clone(),
        handler.clone(),
        DriverConfig::default(),
        Clock::system(),
    )
    .await
    .unwrap();
    let first = open(&writer).await.unwrap();
    let events = until_assigned(log.as_ref(), &first).await;
    assert_eq!(
        assignments(&events),
        [(agent("a1"), AssignmentPolicy::RoundRobin, ActorKind::System)]
    );
    let actor = &events.last().unwrap().envelope.actor;
    assert_eq!(
        actor.id.as_str(),
        "router",
        "the tenant's service principal decided"
    );

    // Restarted, the router rebuilds from the log and does not assign the first one again.
    router.stop().await;
    let router = crate::routing::driver::start(
        log.clone(),
        handler,
        DriverConfig::default(),
        Clock::system(),
    )
    .await
    .unwrap();
    let second = open(&writer).await.unwrap();
    let events = until_assigned(log.as_ref(), &second).await;
    assert_eq!(
        assignments(&events),
        [(agent("a1"), AssignmentPolicy::RoundRobin, ActorKind::System)]
    );
    assert_eq!(
        assignments(&history(log.as_ref(), &first).await).len(),
        1,
        "decided once, whatever the restarts"
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_conversations_with_a_clear_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (log, writer) = writer(dir.path()).await;
    let config = DriverConfig {
        routing: RoutingConfigs::new(RoutingConfig {
            queue_limit: 1,
            ..RoutingConfig::default()
        }),
        ..DriverConfig::default()
    };
    let router =
        crate::routing::driver::start(log, Arc::new(writer.clone()), config, Clock::system())
            .await
            .unwrap();
    let mut signals = router.subscribe();
    let api = Admitting::new(writer, router.admission());

    let first = open(&api).await.unwrap();
    let waits = async {
        loop {
            if let QueueSignal::Waiting { entry, .. } = signals.recv().await.unwrap()
                && entry.conversation == first
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), waits)
        .await
        .expect("the router sees the first conversation wait");
    let refused = open(&api).await.unwrap_err();
    assert_eq!(refused, CommandError::Overloaded);
    assert_eq!(
        refused.to_string(),
        "we are very busy, please try again later"
    );
    router.stop().await;
}
