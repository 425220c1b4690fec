//! The writer on a real embedded log: acknowledgements match the log, retries create nothing,
//! concurrent senders get a gapless sequence, and a restart or a failed append loses nothing
//! and repeats nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use switchboard_events::conversation::{Channel, ConversationPayload, Priority};
use switchboard_events::id::*;
use switchboard_events::principal::{Principal, Role};
use switchboard_events::{ConversationEvent, Seq, Topic};
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use switchboard_log::{
    AppendOptions, EventLog, GroupMember, NewRecord, OffsetRange, Position, Record, StartAt, Tail,
    TopicSpec,
};

use super::keys::{DataKeys, InMemoryKeys};
use super::*;
use crate::command::{OpenConversation, PostMessage};

mod state;
mod tenancy;

fn customer() -> Principal {
    customer_of("acme")
}

fn customer_of(tenant: &str) -> Principal {
    Principal::new(
        TenantId::new(tenant).unwrap(),
        Role::Customer,
        PrincipalId::new("cust-1").unwrap(),
    )
}

fn supervisor() -> Principal {
    Principal::new(
        TenantId::new("acme").unwrap(),
        Role::Supervisor,
        PrincipalId::new("sup-1").unwrap(),
    )
}

fn correlation() -> CorrelationId {
    CorrelationId(uuid::Uuid::now_v7())
}

fn open() -> ConversationCommand {
    ConversationCommand::Open(OpenConversation {
        customer_id: CustomerId::new("cust-1").unwrap(),
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: BTreeMap::new(),
        customer_name: None,
        customer_email: None,
    })
}

fn post(client: &str, body: &str) -> ConversationCommand {
    ConversationCommand::PostMessage(PostMessage {
        client_msg_id: ClientMsgId::new(client).unwrap(),
        body: body.to_owned(),
        attachments: vec![],
        private_note: false,
    })
}

fn embedded(dir: &std::path::Path) -> Arc<EmbeddedLog> {
    Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir)).unwrap())
}

async fn start(log: Arc<dyn EventLog>, keys: Arc<dyn DataKeys>) -> Writer {
    let config = WriterConfig {
        conversation_partitions: 4,
        agent_partitions: 2,
        ..WriterConfig::default()
    };
    Writer::start(log, keys, config).await.unwrap()
}

/// Every event of a conversation in the log, in log order.
async fn history(log: &dyn EventLog, conversation: &ConversationId) -> Vec<ConversationEvent> {
    let topic = Topic::Conversations.name();
    let mut out = Vec::new();
    for partition in 0..log.partitions(topic).await.unwrap() {
        let range = log.offsets(topic, partition).await.unwrap();
        let mut offset = range.start;
        while offset < range.end {
            let records = log.read(topic, partition, offset, 1000).await.unwrap();
            offset = records.last().unwrap().offset + 1;
            for record in records {
                if record.key == conversation.as_str().as_bytes() {
                    out.push(ConversationEvent::decode(&record.value).unwrap());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn acks_come_after_the_log_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Arc<dyn DataKeys> = Arc::new(InMemoryKeys::default());
    let log = embedded(dir.path());
    let writer = start(log.clone(), keys.clone()).await;
    let opened = writer
        .conversation(customer(), None, open(), correlation())
        .await
        .unwrap();
    assert_eq!((opened.seq, opened.unchanged), (Seq(1), false));
    let id = ConversationId::new(opened.stream_id).unwrap();
    let first = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!(first.seq, Seq(2));
    assert!(first.message_id.is_some());
    assert_eq!(
        history(log.as_ref(), &id).await.len(),
        2,
        "acknowledged means in the log"
    );
    log.shutdown();
    drop(writer);
    drop(log);

    let log = embedded(dir.path());
    let writer = start(log.clone(), keys).await;
    let retry = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!(
        (retry.seq, retry.unchanged, retry.message_id.clone()),
        (Seq(2), true, first.message_id)
    );
    let next = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c2", "still there?"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!(next.seq, Seq(3), "the rebuilt state continues the sequence");
    let conflict = writer
        .conversation(customer(), Some(id), post("c1", "other"), correlation())
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), "idempotency_conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_and_retries_get_a_gapless_sequence_matching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = embedded(dir.path());
    let writer = start(log.clone(), Arc::new(InMemoryKeys::default())).await;
    let opened = writer
        .conversation(customer(), None, open(), correlation())
        .await
        .unwrap();
    let id = ConversationId::new(opened.stream_id).unwrap();

    const CLIENTS: usize = 16;
    const SENDS: usize = 25;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let writer = writer.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for n in 0..SENDS {
                let client_msg_id = format!("client{client}-{n}");
                let body = format!("message {n} from client {client}");
                // Every send goes out twice at once, as a client that retries too early would.
                let (a, b) = tokio::join!(
                    writer.conversation(
                        customer(),
                        Some(id.clone()),
                        post(&client_msg_id, &body),
                        correlation()
                    ),
                    writer.conversation(
                        customer(),
                        Some(id.clone()),
                        post(&client_msg_id, &body),
                        correlation()
                    ),
                );
                let (a, b) = (a.unwrap(), b.unwrap());
                assert_eq!(a.seq, b.seq, "a retry answers with the original seq");
                assert!(
                    a.unchanged != b.unchanged,
                    "exactly one of the two created the message"
                );
                acks.push((client_msg_id, a.seq));
            }
            acks
        }));
    }
    let mut acked = HashMap::new();
    for task in tasks {
        for (client_msg_id, seq) in task.await.unwrap() {
            acked.insert(client_msg_id, seq);
        }
    }

    let events = history(log.as_ref(), &id).await;
    assert_eq!(events.len(), 1 + CLIENTS * SENDS, "no duplicate, none lost");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.envelope.seq,
            Seq(i as u64 + 1),
            "gapless and in log order"
        );
        if let ConversationPayload::MessagePosted(m) = &event.payload {
            assert_eq!(
                acked[m.client_msg_id.as_str()],
                event.envelope.seq,
                "the ack matches the log"
            );
        }
    }
}

#[tokio::test]
async fn erasure_destroys_the_key_only_after_the_event_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(InMemoryKeys::default());
    let writer = start(embedded(dir.path()), keys.clone()).await;
    let opened = writer
        .conversation(customer(), None, open(), correlation())
        .await
        .unwrap();
    let id = ConversationId::new(opened.stream_id).unwrap();
    writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "my address is ..."),
            correlation(),
        )
        .await
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let cust = CustomerId::new("cust-1").unwrap();
    assert!(keys.key(&tenant, &cust).await.unwrap().is_some());
    writer
        .conversation(
            supervisor(),
            Some(id.clone()),
            ConversationCommand::EraseCustomer { reason: None },
            correlation(),
        )
        .await
        .unwrap();
    assert!(
        keys.key(&tenant, &cust).await.unwrap().is_none(),
        "the key is gone"
    );
    let refused = writer
        .conversation(customer(), Some(id), post("c2", "hello"), correlation())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "customer_erased");
}

/// A log whose appends can be made to fail — after writing, as a broker that times out
/// after accepting a batch would.
#[derive(Debug)]
struct FlakyLog {
    inner: Arc<EmbeddedLog>,
    fail_after_write: AtomicBool,
    /// Appends wait this long before they are written.
    append_delay_ms: std::sync::atomic::AtomicU64,
    /// The offset every read started at.
    reads_from: std::sync::Mutex<Vec<u64>>,
}

impl FlakyLog {
    fn new(inner: Arc<EmbeddedLog>) -> Self {
        Self {
            inner,
            fail_after_write: AtomicBool::new(false),
            append_delay_ms: std::sync::atomic::AtomicU64::new(0),
            reads_from: std::sync::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl EventLog for FlakyLog {
    async fn create_topic(&self, spec: &TopicSpec) -> switchboard_log::Result<()> {
        self.inner.create_topic(spec).await
    }
    async fn partitions(&self, topic: &str) -> switchboard_log::Result<u32> {
        self.inner.partitions(topic).await
    }
    async fn append(
        &self,
        topic: &str,
        records: Vec<NewRecord>,
        options: &AppendOptions,
    ) -> switchboard_log::Result<Vec<Position>> {
        let delay = self.append_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let written = self.inner.append(topic, records, options).await?;
        if self.fail_after_write.swap(false, Ordering::SeqCst) {
            return Err(switchboard_log::LogError::Invalid {
                reason: "the broker timed out".into(),
            });
        }
        Ok(written)
    }
    async fn claim(
        &self,
        topic: &str,
        partition: u32,
    ) -> switchboard_log::Result<switchboard_log::Fence> {
        self.inner.claim(topic, partition).await
    }
    async fn offsets(&self, topic: &str, partition: u32) -> switchboard_log::Result<OffsetRange> {
        self.inner.offsets(topic, partition).await
    }
    async fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max: usize,
    ) -> switchboard_log::Result<Vec<Record>> {
        self.reads_from.lock().unwrap().push(from);
        self.inner.read(topic, partition, from, max).await
    }
    async fn tail(
        &self,
        topic: &str,
        partition: u32,
        start: StartAt,
    ) -> switchboard_log::Result<Box<dyn Tail>> {
        self.inner.tail(topic, partition, start).await
    }
    async fn join_group(
        &self,
        group: &str,
        topic: &str,
        start: StartAt,
    ) -> switchboard_log::Result<Box<dyn GroupMember>> {
        self.inner.join_group(group, topic, start).await
    }
}

/// A writer on a log whose faults the test sets, with one conversation opened.
async fn flaky_with_a_conversation(
    dir: &std::path::Path,
) -> (Arc<FlakyLog>, Writer, ConversationId) {
    let flaky = Arc::new(FlakyLog::new(embedded(dir)));
    let writer = start(flaky.clone(), Arc::new(InMemoryKeys::default())).await;
    let opened = writer
        .conversation(customer(), None, open(), correlation())
        .await
        .unwrap();
    (
        flaky,
        writer,
        ConversationId::new(opened.stream_id).unwrap(),
    )
}

#[tokio::test]
async fn a_failed_append_that_was_written_anyway_is_folded_in_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let (flaky, writer, id) = flaky_with_a_conversation(dir.path()).await;

    flaky.fail_after_write.store(true, Ordering::SeqCst);
    let failed = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap_err();
    assert_eq!(failed.code(), "unavailable");
    assert!(failed.retriable());

    // The client retries: the message the log kept is found, not written twice.
    let retry = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!((retry.seq, retry.unchanged), (Seq(2), true));
    let next = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c2", "next"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!(next.seq, Seq(3));
    let seqs: Vec<u64> = history(flaky.inner.as_ref(), &id)
        .await
        .iter()
        .map(|e| e.envelope.seq.0)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[tokio::test]
async fn a_command_whose_caller_gave_up_after_handing_it_over_is_still_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let (flaky, writer, id) = flaky_with_a_conversation(dir.path()).await;

    // The caller's deadline passes while the append is under way: its future is dropped, as
    // the gRPC deadline and a client that goes away drop it.
    flaky.append_delay_ms.store(300, Ordering::SeqCst);
    let send = writer.conversation(
        customer(),
        Some(id.clone()),
        post("c1", "hello"),
        correlation(),
    );
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), send).await;
    assert!(
        gave_up.is_err(),
        "the append takes longer than the caller waits"
    );
    flaky.append_delay_ms.store(0, Ordering::SeqCst);

    // The retry waits behind the handed-over command, and finds it written.
    let retry = writer
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!((retry.seq, retry.unchanged), (Seq(2), true));
    let events = history(flaky.as_ref(), &id).await;
    let posts = events
        .iter()
        .filter(|e| matches!(e.payload, ConversationPayload::MessagePosted(_)))
        .count();
    assert_eq!(posts, 1, "written once: {events:?}");
}

#[tokio::test]
async fn agent_commands_are_written_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let log = embedded(dir.path());
    let writer = start(log.clone(), Arc::new(InMemoryKeys::default())).await;
    let agent = Principal::new(
        TenantId::new("acme").unwrap(),
        Role::Agent,
        PrincipalId::new("agent-7").unwrap(),
    );
    let id = AgentId::new("agent-7").unwrap();
    let online = AgentCommand::SetStatus {
        status: switchboard_events::agent::AgentStatus::Online,
    };
    let ack = writer
        .agent(agent.clone(), id.clone(), online.clone(), correlation())
        .await
        .unwrap();
    assert_eq!((ack.seq, ack.unchanged), (Seq(1), false));
    log.shutdown();
    drop(writer);
    drop(log);
    let writer = start(embedded(dir.path()), Arc::new(InMemoryKeys::default())).await;
    let again = writer
        .agent(agent, id, online, correlation())
        .await
        .unwrap();
    assert_eq!(
        (again.seq, again.unchanged),
        (Seq(1), true),
        "rebuilt from the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_writer_cannot_append_and_the_new_owner_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let log = embedded(dir.path());
    let keys: Arc<dyn DataKeys> = Arc::new(InMemoryKeys::default());
    let old = start(log.clone(), keys.clone()).await;
    let opened = old
        .conversation(customer(), None, open(), correlation())
        .await
        .unwrap();
    let id = ConversationId::new(opened.stream_id).unwrap();
    let first = old
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap();

    // A second instance takes every partition while the first still runs (a pause, a split).
    let new = start(log.clone(), keys).await;
    let refused = old
        .conversation(
            customer(),
            Some(id.clone()),
            post("c2", "lost?"),
            correlation(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "not_owner");
    assert!(refused.retriable(), "the client retries elsewhere");

    let retried = new
        .conversation(
            customer(),
            Some(id.clone()),
            post("c2", "lost?"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!(
        retried.seq,
        first.seq.next(),
        "the deposed writer wrote nothing"
    );
    let again = new
        .conversation(
            customer(),
            Some(id.clone()),
            post("c1", "hello"),
            correlation(),
        )
        .await
        .unwrap();
    assert_eq!(
        (again.seq, again.unchanged),
        (first.seq, true),
        "what the old owner acked is known"
    );
    let seqs: Vec<u64> = history(log.as_ref(), &id)
        .await
        .iter()
        .map(|e| e.envelope.seq.0)
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

/// Sends a command to whichever instance owns its conversation, retrying on `not_owner` (and
/// on `unavailable` during a handover) as a client of several instances would.
async fn send_anywhere(
    first: &Writer,
    later: &tokio::sync::OnceCell<Writer>,
    id: &ConversationId,
    command: ConversationCommand,
) -> crate::api::Ack {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut attempt = 0;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        // The instances a client knows of now: a second one may appear at any time.
        let writer = match later.get() {
            Some(second) if attempt % 2 == 1 => second,
            _ => first,
        };
        attempt += 1;
        match writer
            .conversation(customer(), Some(id.clone()), command.clone(), correlation())
            .await
        {
            Ok(ack) => return ack,
            // A client's back-off between retries, not a synchronization point.
            Err(e) if e.retriable() => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no instance took the command within 20 s; the last answer: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ownership_moves_between_instances_mid_load_without_gaps_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let log = embedded(dir.path());
    let keys: Arc<dyn DataKeys> = Arc::new(InMemoryKeys::default());
    let config = WriterConfig {
        conversation_partitions: 4,
        agent_partitions: 2,
        ..WriterConfig::default()
    };
    let a = Writer::start_in_group(
        log.clone(),
        keys.clone(),
        config.clone(),
        "switchboard.ingest",
    )
    .await
    .unwrap();
    let none = tokio::sync::OnceCell::new();
    let mut ids = Vec::new();
    for n in 0..8 {
        let id = ConversationId::new(format!("conv-{n}")).unwrap();
        send_anywhere(&a, &none, &id, open()).await;
        ids.push(id);
    }

    // Load from 8 clients; halfway through, a second instance joins and takes partitions.
    let b = Arc::new(tokio::sync::OnceCell::new());
    let mut clients = Vec::new();
    for (c, id) in ids.iter().cloned().enumerate() {
        let (a, b, log, keys, config) = (
            a.clone(),
            b.clone(),
            log.clone(),
            keys.clone(),
            config.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for n in 0..40 {
                if c == 0 && n == 20 {
                    let writer = Writer::start_in_group(
                        log.clone(),
                        keys.clone(),
                        config.clone(),
                        "switchboard.ingest",
                    )
                    .await
                    .unwrap();
                    b.set(writer).unwrap();
                }
                let client_msg_id = format!("c{c}-{n}");
                let ack = send_anywhere(&a, &b, &id, post(&client_msg_id, "hello")).await;
                acks.push((client_msg_id, ack.seq));
            }
            acks
        }));
    }
    let mut acked = HashMap::new();
    for client in clients {
        acked.extend(client.await.unwrap());
    }
    let b = b.get().unwrap();
    let moved = b.owned_conversation_partitions();
    assert!(!moved.is_empty(), "the second instance took partitions");

    for id in &ids {
        let events = history(log.as_ref(), id).await;
        let mut seen = std::collections::HashSet::new();
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                event.envelope.seq,
                Seq(i as u64 + 1),
                "{id}: no seq skipped or repeated"
            );
            if let ConversationPayload::MessagePosted(m) = &event.payload {
                assert!(
                    seen.insert(m.client_msg_id.clone()),
                    "{id}: {} written twice",
                    m.client_msg_id
                );
                assert_eq!(
                    acked[m.client_msg_id.as_str()],
                    event.envelope.seq,
                    "the ack matches the log"
                );
            }
        }
    }
    assert_eq!(acked.len(), 8 * 40, "every acknowledged send is in the log");
    let total: usize = {
        let mut n = 0;
        for id in &ids {
            n += history(log.as_ref(), id)
                .await
                .iter()
                .filter(|e| matches!(e.payload, ConversationPayload::MessagePosted(_)))
                .count();
        }
        n
    };
    assert_eq!(total, 8 * 40);
}

#[tokio::test]
async fn an_open_without_an_id_gets_one_on_a_partition_this_instance_owns() {
    // An instance of a group that owns partition 2 of 4, with its shard replaced by a queue
    // the test reads.
    let (shard, mut jobs) = mpsc::channel(8);
    let conversations = empty_slots(4);
    set(&conversations, 2, Some(shard));
    let writer = Writer {
        conversations,
        agents: empty_slots(2),
        running: Arc::default(),
    };
    for _ in 0..20 {
        let sent = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .conversation(customer(), None, open(), correlation())
                    .await
            }
        });
        let job = jobs.recv().await.unwrap();
        assert_eq!(
            partition_for_key(job.conversation.as_str().as_bytes(), 4),
            2
        );
        let ack = crate::api::Ack {
            stream_id: job.conversation.to_string(),
            seq: Seq(1),
            unchanged: false,
            message_id: None,
        };
        job.reply.send(Ok(ack)).unwrap();
        assert!(sent.await.unwrap().is_ok());
    }

    let owns_nothing = Writer {
        conversations: empty_slots(4),
        agents: empty_slots(2),
        running: Arc::default(),
    };
    assert_eq!(
        owns_nothing
            .conversation(customer(), None, open(), correlation())
            .await,
        Err(CommandError::NotOwner { owner: None })
    );
}
