//! The real servers, bound to 127.0.0.1:0 and answered by a fake handler, called over the
//! network with the generated gRPC client and plain HTTP/1.1.

mod admission;
mod client;
mod grpc;
mod http;
mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use switchboard_events::Seq;
use switchboard_events::id::{
    AgentId, ConversationId, CorrelationId, MessageId, PrincipalId, TenantId,
};
use switchboard_events::principal::{Principal, Role};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use super::{
    Ack, Api, Authenticator, CommandHandler, ServeError, ServiceToken, StaticTokens, serve,
};
use crate::command::{AgentCommand, ConversationCommand};
use crate::error::CommandError;

/// A service of every tenant (the edge).
const EDGE: &str = "edge-token-0123456789abcdef";
/// A service of tenant acme only (an integration).
const CRM: &str = "crm-token-0123456789abcdef";
/// A supervisor of acme.
const BOSS: &str = "boss-token-0123456789abcdef";

fn principal(tenant: &str, role: Role, subject: &str) -> Principal {
    Principal::new(
        TenantId::new(tenant).unwrap(),
        role,
        PrincipalId::new(subject).unwrap(),
    )
}

fn tokens() -> StaticTokens {
    let token = |token: &str, p: Principal, all_tenants| ServiceToken {
        token: token.into(),
        tenant: p.tenant,
        role: p.role,
        subject: p.subject,
        all_tenants,
    };
    StaticTokens::new([
        token(EDGE, principal("switchboard", Role::Service, "edge"), true),
        token(CRM, principal("acme", Role::Service, "crm"), false),
        token(BOSS, principal("acme", Role::Supervisor, "boss"), false),
    ])
    .unwrap()
}

/// Every refusal a handler can answer, one per stable code.
fn every_error() -> Vec<CommandError> {
    vec![
        CommandError::NotFound {
            what: "conversation c9".into(),
        },
        CommandError::Forbidden {
            role: "a customer",
            action: "post private notes",
        },
        CommandError::InvalidArgument {
            field: "body",
            reason: "is empty".into(),
        },
        CommandError::TooLarge {
            field: "body",
            len: 20000,
            max: 16384,
        },
        CommandError::ConversationExists("c9".into()),
        CommandError::ConversationResolved,
        CommandError::IdempotencyConflict("m-1".into()),
        CommandError::CustomerErased,
        CommandError::FailedPrecondition("not assigned".into()),
        CommandError::Overloaded,
        CommandError::RateLimited {
            retry_after_ms: 1500,
        },
        CommandError::TooManyOpenConversations {
            which: "waiting",
            count: 3,
            max: 3,
        },
        CommandError::Unavailable("log down".into()),
        CommandError::NotOwner {
            owner: Some("ingest-2".into()),
        },
        CommandError::Internal("broken chain".into()),
    ]
}

/// What the fake handler was asked.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Call {
    Conversation {
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    },
    Agent {
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
    },
}

/// Answers by the conversation id: an id that is an error's code gets that error; an open
/// of the id `retry` is a retry; `slow` waits for [`Fake::release`]; anything else succeeds.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Call>>,
    /// Notified when a `slow` command has reached the handler.
    entered: Notify,
    release: Notify,
}

impl Fake {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl CommandHandler for Fake {
    async fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.calls.lock().unwrap().push(Call::Conversation {
            principal,
            conversation: conversation.clone(),
            command: command.clone(),
            correlation,
        });
        let id = conversation.map_or_else(|| "conv-new".to_owned(), |c| c.to_string());
        if id == "slow" {
            self.entered.notify_one();
            self.release.notified().await;
        }
        if let Some(err) = every_error().into_iter().find(|e| e.code() == id) {
            return Err(err);
        }
        Ok(match command {
            ConversationCommand::Open(_) => Ack {
                unchanged: id == "retry",
                stream_id: id,
                seq: Seq(1),
                message_id: None,
            },
            ConversationCommand::PostMessage(_) => Ack {
                stream_id: id,
                seq: Seq(2),
                unchanged: false,
                message_id: Some(MessageId::new("m-1").unwrap()),
            },
            _ => Ack {
                stream_id: id,
                seq: Seq(3),
                unchanged: true,
                message_id: None,
            },
        })
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        _correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        self.calls.lock().unwrap().push(Call::Agent {
            principal,
            agent: agent.clone(),
            command,
        });
        Ok(Ack {
            stream_id: agent.to_string(),
            seq: Seq(1),
            unchanged: false,
            message_id: None,
        })
    }
}

/// Both servers, running on a task until [`Harness::stop`].
struct Harness {
    grpc: SocketAddr,
    http: SocketAddr,
    fake: Arc<Fake>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ServeError>>,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with_limit(Api::<Fake, StaticTokens>::DEFAULT_MAX_BODY_BYTES).await
    }

    async fn start_with_limit(max_body_bytes: usize) -> Self {
        Self::start_with(tokens(), max_body_bytes).await
    }

    /// Both servers with `auth` as the authenticator.
    async fn start_with<A: Authenticator>(auth: A, max_body_bytes: usize) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let fake = Arc::new(Fake::default());
        let api = Api::new(Arc::clone(&fake), Arc::new(auth)).with_max_body_bytes(max_body_bytes);
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(serve(api, grpc, http, async {
            let _ = stopped.await;
        }));
        Self {
            grpc: grpc_addr,
            http: http_addr,
            fake,
            stop,
            server,
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn shutdown_stops_both_servers_and_closes_their_listeners() {
    let h = Harness::start().await;
    let (grpc, http) = (h.grpc, h.http);
    h.stop().await;
    for addr in [grpc, http] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr}"
        );
    }
}
