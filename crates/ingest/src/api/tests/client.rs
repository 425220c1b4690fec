//! [`GrpcCommands`] against real API servers on 127.0.0.1:0: every command answers as the
//! handler behind it would answer directly, and which instance the client hits (one that
//! refuses, one that is down, one that lost its answer) never shows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchboard_events::Seq;
use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::id::{AgentId, ClientMsgId, ConversationId, CorrelationId, CustomerId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::status::StatusKind;
use switchboard_log::embedded::{EmbeddedConfig, EmbeddedLog};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{EDGE, Fake, every_error, principal, tokens};
use crate::api::client::{Failure, Rounds, from_wire};
use crate::api::convert::tests::every_command;
use crate::api::{
    Ack, Api, ApiError, ClientConfigError, CommandHandler, GrpcCommands, GrpcCommandsConfig,
    ServeError, serve,
};
use crate::command::{AgentCommand, ConversationCommand, OpenConversation, PostMessage};
use crate::error::CommandError;
use crate::writer::keys::InMemoryKeys;
use crate::writer::{Writer, WriterConfig};

/// The API serving `handler`, with the test tokens, until dropped.
struct Server {
    grpc: SocketAddr,
    _stop: oneshot::Sender<()>,
    _task: JoinHandle<Result<(), ServeError>>,
}

impl Server {
    async fn start<H: CommandHandler>(handler: Arc<H>) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let api = Api::new(handler, Arc::new(tokens()));
        let task = tokio::spawn(serve(api, grpc, http, async {
            let _ = stopped.await;
        }));
        Self {
            grpc: addr,
            _stop: stop,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }
}

fn client(endpoints: Vec<String>, token: &str) -> GrpcCommands {
    GrpcCommands::new(GrpcCommandsConfig {
        endpoints,
        service_token: token.to_owned(),
        ..GrpcCommandsConfig::default()
    })
    .unwrap()
}

/// An address nobody listens on.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn customer() -> Principal {
    principal("acme", Role::Customer, "cust-1")
}

fn correlation(n: u128) -> CorrelationId {
    CorrelationId(uuid::Uuid::from_u128(n))
}

/// What a caller can tell of an answer: the ack, or the error's code, kind, message and
/// whether to retry.
type Seen = Result<Ack, (&'static str, StatusKind, String, bool)>;

fn seen(result: Result<Ack, CommandError>) -> Seen {
    result.map_err(|e| (e.code(), e.status(), e.to_string(), e.retriable()))
}

/// Every command kind, and every refusal the fake answers that no instance retries, sent to
/// `handler` the way the edge sends them.
async fn scenario(handler: &impl CommandHandler) -> Vec<Seen> {
    let mut out = Vec::new();
    let conv = Some(ConversationId::new("conv-1").unwrap());
    for (n, command) in every_command().into_iter().enumerate() {
        let answer = handler
            .conversation(customer(), conv.clone(), command, correlation(n as u128))
            .await;
        out.push(seen(answer));
    }
    let open = every_command().remove(0);
    out.push(seen(
        handler
            .conversation(customer(), None, open, correlation(100))
            .await,
    ));
    for err in every_error().into_iter().filter(|e| !retried(e)) {
        let id = ConversationId::new(err.code()).unwrap();
        let post = every_command().remove(1);
        out.push(seen(
            handler
                .conversation(customer(), Some(id), post, correlation(200))
                .await,
        ));
    }
    let agent = AgentId::new("agent-7").unwrap();
    for command in [
        AgentCommand::SetStatus {
            status: switchboard_events::agent::AgentStatus::Online,
        },
        AgentCommand::SetCapacity {
            max_conversations: 5,
        },
        AgentCommand::SetSkills {
            skills: vec![switchboard_events::id::Label::new("de").unwrap()],
        },
    ] {
        let who = principal("acme", Role::Supervisor, "boss");
        out.push(seen(
            handler
                .agent(who, agent.clone(), command, correlation(300))
                .await,
        ));
    }
    out
}

/// The refusals the client retries elsewhere rather than answer.
fn retried(err: &CommandError) -> bool {
    matches!(
        err,
        CommandError::NotOwner { .. } | CommandError::Unavailable(_)
    )
}

#[tokio::test]
async fn every_command_answers_over_grpc_as_the_handler_answers_directly() {
    let direct = Fake::default();
    let expected = scenario(&direct).await;

    let remote = Arc::new(Fake::default());
    let server = Server::start(Arc::clone(&remote)).await;
    let answered = scenario(&client(vec![server.url()], EDGE)).await;

    assert_eq!(answered, expected);
    // The handler behind the API was asked exactly what the direct one was: the same
    // principal (acted for by the edge's token), command and correlation id.
    assert_eq!(remote.calls(), direct.calls());
    assert!(expected.iter().any(Result::is_err) && expected.iter().any(Result::is_ok));
}

#[test]
fn every_refusal_reads_back_as_it_was_sent() {
    for err in every_error() {
        let status = ApiError::from(err.clone()).to_status();
        let code = status.metadata().get("switchboard-code").unwrap();
        let back = from_wire(code.to_str().unwrap(), status.message());
        assert_eq!(seen(Err(back.clone())), seen(Err(err.clone())), "{err}");
        match err {
            // Their fields are static names that cannot be rebuilt from the wire.
            CommandError::Forbidden { .. }
            | CommandError::InvalidArgument { .. }
            | CommandError::TooLarge { .. }
            | CommandError::TooManyOpenConversations { .. } => {
                assert!(matches!(back, CommandError::Relayed { .. }), "{back:?}");
            }
            // The owner an instance names does not cross the wire.
            CommandError::NotOwner { .. } => {
                assert_eq!(back, CommandError::NotOwner { owner: None });
            }
            err => assert_eq!(back, err),
        }
    }
    let unknown = from_wire("brand_new", "something new");
    assert_eq!(unknown.code(), "internal");
}

/// Refuses every command as an instance that does not own the partition does.
#[derive(Default)]
struct NotOwner {
    asked: AtomicUsize,
}

impl CommandHandler for NotOwner {
    async fn conversation(
        &self,
        _: Principal,
        _: Option<ConversationId>,
        _: ConversationCommand,
        _: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        Err(CommandError::NotOwner { owner: None })
    }

    async fn agent(
        &self,
        _: Principal,
        _: AgentId,
        _: AgentCommand,
        _: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        Err(CommandError::NotOwner { owner: None })
    }
}

fn post(client_msg_id: &str) -> ConversationCommand {
    ConversationCommand::PostMessage(PostMessage {
        client_msg_id: ClientMsgId::new(client_msg_id).unwrap(),
        body: "hello".into(),
        attachments: vec![],
        private_note: false,
    })
}

#[tokio::test]
async fn a_command_refused_as_not_owner_is_taken_by_the_next_instance() {
    let refuser = Arc::new(NotOwner::default());
    let first = Server::start(Arc::clone(&refuser)).await;
    let owner = Arc::new(Fake::default());
    let second = Server::start(Arc::clone(&owner)).await;
    let commands = client(vec![first.url(), second.url()], EDGE);

    let conv = ConversationId::new("conv-1").unwrap();
    let ack = commands
        .conversation(customer(), Some(conv), post("c-1"), correlation(1))
        .await
        .unwrap();
    assert_eq!((ack.stream_id.as_str(), ack.seq), ("conv-1", Seq(2)));
    let agent = commands
        .agent(
            principal("acme", Role::Supervisor, "boss"),
            AgentId::new("agent-7").unwrap(),
            AgentCommand::SetCapacity {
                max_conversations: 2,
            },
            correlation(2),
        )
        .await
        .unwrap();
    assert_eq!(agent.stream_id, "agent-7");
    // The first call started at the refusing instance; the owner took both.
    assert!(refuser.asked.load(Ordering::Relaxed) >= 1);
    assert_eq!(owner.calls().len(), 2);
}

#[tokio::test]
async fn an_instance_that_is_down_is_skipped() {
    let up = Arc::new(Fake::default());
    let server = Server::start(Arc::clone(&up)).await;
    let commands = client(vec![closed_port().await, server.url()], EDGE);
    for n in 0..3 {
        let conv = ConversationId::new("conv-1").unwrap();
        let ack = commands
            .conversation(customer(), Some(conv), post("c-1"), correlation(n))
            .await
            .unwrap();
        assert_eq!(ack.seq, Seq(2));
    }
    assert_eq!(up.calls().len(), 3);
}

#[tokio::test]
async fn a_token_ingest_refuses_is_an_internal_error_not_the_users() {
    let server = Server::start(Arc::new(Fake::default())).await;
    let commands = client(vec![server.url()], "not-a-known-token-at-all");
    let conv = ConversationId::new("conv-1").unwrap();
    let err = commands
        .conversation(customer(), Some(conv), post("c-1"), correlation(1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "internal", "{err}");
    assert!(
        err.to_string().contains("refused this service's token"),
        "{err}"
    );
}

/// Executes every command on the writer, then answers as if the append's answer was lost on
/// the way: the events are in the log, the caller hears `unavailable`.
struct AnswerLost(Writer);

impl CommandHandler for AnswerLost {
    async fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.0
            .conversation(principal, conversation, command, correlation)
            .await?;
        Err(CommandError::Unavailable("the answer was lost".into()))
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.0.agent(principal, agent, command, correlation).await?;
        Err(CommandError::Unavailable("the answer was lost".into()))
    }
}

#[tokio::test]
async fn a_retried_post_answers_the_original_seq_and_writes_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(EmbeddedConfig::new(dir.path())).unwrap());
    let config = WriterConfig {
        conversation_partitions: 4,
        agent_partitions: 2,
        ..WriterConfig::default()
    };
    let writer = Writer::start(log, Arc::new(InMemoryKeys::default()), config)
        .await
        .unwrap();
    let lossy = Server::start(Arc::new(AnswerLost(writer.clone()))).await;
    let owner = Server::start(Arc::new(writer.clone())).await;
    let commands = client(vec![lossy.url(), owner.url()], EDGE);

    let open = ConversationCommand::Open(OpenConversation {
        customer_id: CustomerId::new("cust-1").unwrap(),
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: Default::default(),
        customer_name: None,
        customer_email: None,
    });
    let opened = writer
        .conversation(customer(), None, open, correlation(1))
        .await
        .unwrap();
    let conv = ConversationId::new(opened.stream_id).unwrap();

    // The first instance writes the post and loses the answer; the retry on the second meets
    // the client_msg_id and answers the original seq.
    let retried = commands
        .conversation(customer(), Some(conv.clone()), post("c-1"), correlation(2))
        .await
        .unwrap();
    assert!(retried.unchanged, "{retried:?}");
    let again = writer
        .conversation(customer(), Some(conv.clone()), post("c-1"), correlation(3))
        .await
        .unwrap();
    assert_eq!(
        (again.seq, again.message_id),
        (retried.seq, retried.message_id)
    );
    let next = writer
        .conversation(customer(), Some(conv), post("c-2"), correlation(4))
        .await
        .unwrap();
    assert_eq!(
        next.seq,
        Seq(retried.seq.0 + 1),
        "one message was written, not two"
    );
}

fn ack(n: u64) -> Ack {
    Ack {
        stream_id: "conv-1".into(),
        seq: Seq(n),
        unchanged: false,
        message_id: None,
    }
}

fn not_owner() -> Failure {
    Failure::Retry(CommandError::NotOwner { owner: None })
}

#[tokio::test(start_paused = true)]
async fn rounds_try_every_endpoint_then_back_off_until_the_deadline() {
    let rounds = Rounds::new(3, Duration::from_secs(2));
    let tried = std::sync::Mutex::new(Vec::new());
    let err = rounds
        .run(|i| {
            tried.lock().unwrap().push(i);
            async { Err::<Ack, _>(not_owner()) }
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert!(
        err.to_string().contains("the last answered not_owner"),
        "{err}"
    );
    let tried = tried.into_inner().unwrap();
    // Round after round over the three endpoints, in order, backing off 20, 40, 80 ... ms
    // up to 500 ms: 8 rounds fit in 2 s.
    assert_eq!(tried.len(), 24, "{tried:?}");
    assert!(tried.chunks(3).all(|round| round == [0, 1, 2]), "{tried:?}");
}

#[tokio::test(start_paused = true)]
async fn rounds_stop_at_an_answer_and_start_at_successive_endpoints() {
    let rounds = Rounds::new(2, Duration::from_secs(2));
    let tried = std::sync::Mutex::new(Vec::new());
    let first = rounds
        .run(|i| {
            tried.lock().unwrap().push(i);
            async move { if i == 1 { Ok(ack(1)) } else { Err(not_owner()) } }
        })
        .await;
    assert_eq!(first, Ok(ack(1)));
    let refused = rounds
        .run(|i| {
            tried.lock().unwrap().push(i);
            async { Err::<Ack, _>(Failure::Final(CommandError::CustomerErased)) }
        })
        .await;
    assert_eq!(refused, Err(CommandError::CustomerErased));
    assert_eq!(tried.into_inner().unwrap(), [0, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_never_answers_ends_at_the_deadline() {
    let rounds = Rounds::new(1, Duration::from_secs(2));
    let started = tokio::time::Instant::now();
    let err = rounds
        .run(|_| std::future::pending::<Result<Ack, Failure>>())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unavailable");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn the_configuration_is_checked_and_its_token_never_shows() {
    let config: GrpcCommandsConfig = serde_json::from_str(
        r#"{"endpoints": ["http://ingest-0:7101", "http://ingest-1:7101"],
            "service_token": "edge-token-0123456789abcdef", "deadline_ms": 3000}"#,
    )
    .unwrap();
    assert_eq!(config.deadline, Duration::from_secs(3));
    assert_eq!(config.connect_timeout, Duration::from_secs(1));
    let shown = format!(
        "{config:?} {:?}",
        GrpcCommands::new(config.clone()).unwrap()
    );
    assert!(!shown.contains("edge-token"), "{shown}");
    assert!(shown.contains("ingest-1"), "{shown}");

    let unknown = serde_json::from_str::<GrpcCommandsConfig>(r#"{"deadline": 3}"#);
    assert!(unknown.is_err());
    let with = |f: fn(&mut GrpcCommandsConfig)| {
        let mut c = config.clone();
        f(&mut c);
        GrpcCommands::new(c).map(|_| ()).unwrap_err()
    };
    assert_eq!(
        with(|c| c.endpoints.clear()),
        ClientConfigError::NoEndpoints
    );
    assert_eq!(
        with(|c| c.service_token.clear()),
        ClientConfigError::NoToken
    );
    assert_eq!(
        with(|c| c.service_token = "bad\ntoken".into()),
        ClientConfigError::BadToken
    );
    assert!(matches!(
        with(|c| c.endpoints = vec!["not a url".into()]),
        ClientConfigError::BadEndpoint { .. }
    ));
}

#[tokio::test]
async fn tls_needs_https_endpoints_and_a_ca_file_that_holds_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let config = |endpoint: &str, ca_file: Option<std::path::PathBuf>| GrpcCommandsConfig {
        endpoints: vec![endpoint.to_owned()],
        ca_file,
        service_token: "edge-token-0123456789abcdef".to_owned(),
        ..GrpcCommandsConfig::default()
    };
    let refused = |c| GrpcCommands::new(c).map(|_| ()).unwrap_err().to_string();
    let https = refused(config("https://ingest-0:7101", None));
    assert!(https.contains("needs ingest.ca_file"), "{https}");
    let not_a_certificate = refused(config("https://ingest-0:7101", Some(not_pem)));
    assert!(
        not_a_certificate.contains("no PEM certificate"),
        "{not_a_certificate}"
    );
    let pem = dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let clear = refused(config("http://ingest-0:7101", Some(pem)));
    assert!(clear.contains("name the endpoint https://"), "{clear}");
    let missing = refused(config(
        "https://ingest-0:7101",
        Some(dir.path().join("missing.pem")),
    ));
    assert!(missing.contains("missing.pem"), "{missing}");
}
