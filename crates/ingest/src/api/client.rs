//! The command API from the other side: [`GrpcCommands`] is the [`CommandHandler`] of a process
//! that does not write events itself (a split edge), and sends every command over
//! `switchboard.ingest.v1` to the ingest instances.
//!
//! Which instance it hits must not matter to its caller. An instance that does not own the
//! conversation's partition answers `not_owner`, one in the middle of a handover (or with its
//! log away) `unavailable`, one that is down does not answer at all: the command goes to the
//! next endpoint at once, and when every endpoint was tried, to the first again after a short
//! backoff, until the deadline. A retried post keeps its `client_msg_id`, so the owner answers
//! the original seq instead of writing it twice (see `writer/ownership.md`). Every other
//! answer is the caller's, with the code, kind and message it had on the instance.
//!
//! Endpoints named `https://` are reached over TLS (rustls, ring), trusting only the CA
//! certificates of `ca_file`: the ingest gRPC listener's `listen.tls` with `ingest_grpc`.
//!
//! The client authenticates with one service token and sends every command `on_behalf_of`
//! the principal it was given, so ingest applies that principal's rights; the token must be
//! of a service that may act for every tenant it serves (`all_tenants` for the edge).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use switchboard_events::id::{AgentId, ConversationId, CorrelationId};
use switchboard_events::principal::Principal;
use switchboard_events::status::StatusKind;
use thiserror::Error;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::convert::{AgentRequest, ConversationRequest};
use super::grpc::CODE_METADATA;
use super::proto::{self, ingest_client::IngestClient};
use super::{Ack, CommandHandler};
use crate::command::{AgentCommand, ConversationCommand};
use crate::error::CommandError;

/// Where the ingest instances are and how long a command may take to reach one.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcCommandsConfig {
    /// The gRPC endpoints of the ingest instances, e.g. `http://ingest-0:7101`, or
    /// `https://ingest-0:7101` with `ca_file`. Order does not matter; every instance can be
    /// asked about every conversation.
    pub endpoints: Vec<String>,
    /// PEM: the CA certificates that sign the ingest instances' certificates. With it every
    /// endpoint must be `https://`, and the server's certificate must name the endpoint's host.
    pub ca_file: Option<PathBuf>,
    /// The token this process authenticates with: a service of every tenant it serves.
    pub service_token: String,
    /// How long a command may take in all, retries included, before the caller is answered
    /// `unavailable`. Default: 5 s, room for a partition to change owner.
    #[serde(rename = "deadline_ms", deserialize_with = "millis")]
    pub deadline: Duration,
    /// How long connecting to one endpoint may take before the next is tried. Default: 1 s.
    #[serde(rename = "connect_timeout_ms", deserialize_with = "millis")]
    pub connect_timeout: Duration,
}

fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

impl Default for GrpcCommandsConfig {
    fn default() -> Self {
        Self {
            // The gRPC listener of `switchboard serve` and `switchboard ingest` by default.
            endpoints: vec!["http://127.0.0.1:7101".to_owned()],
            ca_file: None,
            service_token: String::new(),
            deadline: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for GrpcCommandsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcCommandsConfig")
            .field("endpoints", &self.endpoints)
            .field("ca_file", &self.ca_file)
            .field("service_token", &"<redacted>")
            .field("deadline", &self.deadline)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Why a [`GrpcCommandsConfig`] was refused at start-up.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum ClientConfigError {
    #[error("no ingest endpoints configured")]
    NoEndpoints,
    #[error("the ingest endpoint {endpoint:?} is not a URL such as http://ingest-0:7101: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("no service token configured: the client must authenticate as a service")]
    NoToken,
    #[error("the service token is not valid in an HTTP header (visible ASCII only)")]
    BadToken,
    #[error("the CA certificates of {file} cannot be used: {reason}")]
    BadCa { file: PathBuf, reason: String },
}

/// One ingest instance: its address (for messages) and a channel that connects on first use
/// and reconnects by itself.
struct Target {
    url: String,
    client: IngestClient<Channel>,
}

/// Sends commands to the ingest instances; see the module documentation.
pub struct GrpcCommands {
    targets: Vec<Target>,
    authorization: MetadataValue<Ascii>,
    rounds: Rounds,
}

impl fmt::Debug for GrpcCommands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcCommands")
            .field(
                "endpoints",
                &self.targets.iter().map(|t| &t.url).collect::<Vec<_>>(),
            )
            .field("deadline", &self.rounds.deadline)
            .finish_non_exhaustive()
    }
}

impl GrpcCommands {
    /// Checks the configuration; no endpoint is contacted until the first command. Call it
    /// within a tokio runtime: each endpoint's channel runs on a task.
    pub fn new(config: GrpcCommandsConfig) -> Result<Self, ClientConfigError> {
        if config.endpoints.is_empty() {
            return Err(ClientConfigError::NoEndpoints);
        }
        if config.service_token.is_empty() {
            return Err(ClientConfigError::NoToken);
        }
        let mut authorization: MetadataValue<Ascii> = format!("Bearer {}", config.service_token)
            .parse()
            .map_err(|_| ClientConfigError::BadToken)?;
        authorization.set_sensitive(true);
        let tls = config.ca_file.as_deref().map(trusting).transpose()?;
        let targets = config
            .endpoints
            .iter()
            .map(|url| {
                let bad = |reason: String| ClientConfigError::BadEndpoint {
                    endpoint: url.clone(),
                    reason,
                };
                let mut endpoint =
                    Endpoint::from_shared(url.clone()).map_err(|e| bad(e.to_string()))?;
                let secure = endpoint.uri().scheme_str() == Some("https");
                match (&tls, secure) {
                    (Some(tls), true) => {
                        endpoint = endpoint
                            .tls_config(tls.clone())
                            .map_err(|e| bad(e.to_string()))?;
                    }
                    (None, false) => {}
                    (Some(_), false) => {
                        return Err(bad(
                            "ingest.ca_file is set: name the endpoint https://".to_owned()
                        ));
                    }
                    (None, true) => {
                        return Err(bad(
                            "an https:// endpoint needs ingest.ca_file, the CA to trust".to_owned(),
                        ));
                    }
                }
                let channel = endpoint
                    .connect_timeout(config.connect_timeout)
                    .tcp_nodelay(true)
                    .connect_lazy();
                Ok(Target {
                    url: url.clone(),
                    client: IngestClient::new(channel),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rounds: Rounds::new(targets.len(), config.deadline),
            targets,
            authorization,
        })
    }

    /// A request with this client's token, the time left before `deadline` as its
    /// `grpc-timeout` (so the instance stops working on a command the caller no longer waits
    /// for) and, when the caller's span is traced, its `traceparent`, so the instance's spans
    /// continue the caller's trace.
    fn request<T>(
        &self,
        message: T,
        deadline: Instant,
        trace: Option<&MetadataValue<Ascii>>,
    ) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        if let Some(trace) = trace {
            metadata.insert(switchboard_log::trace::TRACEPARENT, trace.clone());
        }
        request
    }
}

/// TLS that trusts only the CA certificates in `file`.
fn trusting(file: &Path) -> Result<ClientTlsConfig, ClientConfigError> {
    let bad = |reason: String| ClientConfigError::BadCa {
        file: file.to_owned(),
        reason,
    };
    let pem = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(bad("no PEM certificate in it".to_owned()));
    }
    Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
}

/// The caller's trace context as metadata, read once per command (every attempt carries it).
fn trace_metadata() -> Option<MetadataValue<Ascii>> {
    switchboard_log::trace::traceparent(&tracing::Span::current())?
        .parse()
        .ok()
}

impl CommandHandler for GrpcCommands {
    async fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let trace = trace_metadata();
        let message = proto::ConversationCommand::from(&ConversationRequest {
            conversation,
            on_behalf_of: Some(principal),
            correlation,
            command,
        });
        let deadline = Instant::now() + self.rounds.deadline;
        self.rounds
            .run(|i| {
                let target = &self.targets[i];
                let mut client = target.client.clone();
                let request = self.request(message.clone(), deadline, trace.as_ref());
                async move { acked(&target.url, client.execute(request).await) }
            })
            .await
    }

    async fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> Result<Ack, CommandError> {
        let trace = trace_metadata();
        let message = proto::AgentCommand::from(&AgentRequest {
            agent,
            on_behalf_of: Some(principal),
            correlation,
            command,
        });
        let deadline = Instant::now() + self.rounds.deadline;
        self.rounds
            .run(|i| {
                let target = &self.targets[i];
                let mut client = target.client.clone();
                let request = self.request(message.clone(), deadline, trace.as_ref());
                async move { acked(&target.url, client.execute_agent(request).await) }
            })
            .await
    }
}

/// How an attempt ended when it did not give the caller its answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// The caller's answer (a refusal): no other instance would answer differently.
    Final(CommandError),
    /// Another instance (or this one, later) may take the command.
    Retry(CommandError),
}

fn acked(url: &str, answer: Result<tonic::Response<proto::Ack>, Status>) -> Result<Ack, Failure> {
    let ack = answer.map_err(|status| failure(url, &status))?;
    Ack::try_from(ack.into_inner()).map_err(|e| {
        Failure::Final(CommandError::Internal(format!(
            "ingest at {url} answered an invalid ack: {e}"
        )))
    })
}

/// Sorts an instance's answer into the caller's error or a reason to try elsewhere.
fn failure(url: &str, status: &Status) -> Failure {
    let code = status
        .metadata()
        .get(CODE_METADATA)
        .and_then(|v| v.to_str().ok());
    match code {
        Some(code) => match from_wire(code, status.message()) {
            // `overloaded` is the owner pushing back: another instance cannot help.
            err @ (CommandError::NotOwner { .. } | CommandError::Unavailable(_)) => {
                Failure::Retry(err)
            }
            err => Failure::Final(err),
        },
        // No code of ours: the instance was not reached or the connection broke (tonic's
        // and hyper's own errors, or a proxy in between). A post is safe to send again; see
        // the module documentation.
        // `DeadlineExceeded`: the instance gave up at the caller's own deadline, which the
        // rounds then answer as `unavailable`.
        None => match status.code() {
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => {
                Failure::Retry(CommandError::Unavailable(format!(
                    "ingest at {url} did not answer: {}",
                    status.message()
                )))
            }
            other => Failure::Final(CommandError::Internal(format!(
                "ingest at {url} answered {other:?} without a code: {}",
                status.message()
            ))),
        },
    }
}

/// Every stable code an instance answers with, and its kind. `rate_limited` is the API's own
/// (a caller over its rate); the rest are [`CommandError::code`]'s.
const CODES: [(&str, StatusKind); 15] = [
    ("not_found", StatusKind::NotFound),
    ("forbidden", StatusKind::Forbidden),
    ("invalid_argument", StatusKind::InvalidArgument),
    ("too_large", StatusKind::TooLarge),
    ("conversation_exists", StatusKind::Conflict),
    ("conversation_resolved", StatusKind::FailedPrecondition),
    ("idempotency_conflict", StatusKind::Conflict),
    ("customer_erased", StatusKind::FailedPrecondition),
    ("failed_precondition", StatusKind::FailedPrecondition),
    ("overloaded", StatusKind::Unavailable),
    ("unavailable", StatusKind::Unavailable),
    ("not_owner", StatusKind::Unavailable),
    ("internal", StatusKind::Internal),
    ("rate_limited", StatusKind::RateLimited),
    ("too_many_open_conversations", StatusKind::RateLimited),
];

/// The error an instance answered with `code` and `message`: the very variant when its
/// fields can be read back from the message (checked: it must display the same message),
/// else the code, kind and message as they were ([`CommandError::Relayed`]).
pub(crate) fn from_wire(code: &str, message: &str) -> CommandError {
    if code == "unauthenticated" {
        // Our own token was refused: a configuration an operator must fix, not the user's.
        return CommandError::Internal(format!("ingest refused this service's token: {message}"));
    }
    if let Some(err) = rebuild(code, message).filter(|e| e.to_string() == message) {
        return err;
    }
    match CODES.iter().find(|(c, _)| *c == code) {
        Some(&(code, status)) => CommandError::Relayed {
            code,
            status,
            message: message.to_owned(),
        },
        None => CommandError::Internal(format!(
            "ingest answered an unknown code {code:?}: {message}"
        )),
    }
}

fn rebuild(code: &str, message: &str) -> Option<CommandError> {
    use CommandError as E;
    let between = |prefix: &str, suffix: &str| {
        message
            .strip_prefix(prefix)?
            .strip_suffix(suffix)
            .map(str::to_owned)
    };
    Some(match code {
        "not_found" => E::NotFound {
            what: between("", " not found")?,
        },
        "conversation_exists" => {
            E::ConversationExists(between("conversation ", " already exists")?)
        }
        "tenant_exists" => E::TenantExists(between("tenant ", " already exists")?),
        "conversation_resolved" => E::ConversationResolved,
        "rate_limited" => E::RateLimited {
            retry_after_ms: between("too many requests: try again in ", " ms")?
                .parse()
                .ok()?,
        },
        "idempotency_conflict" => E::IdempotencyConflict(between(
            "client_msg_id ",
            " was already used for a different message",
        )?),
        "customer_erased" => E::CustomerErased,
        "failed_precondition" => E::FailedPrecondition(message.to_owned()),
        "overloaded" => E::Overloaded,
        "unavailable" => E::Unavailable(between("the event log is unavailable: ", "")?),
        // The instance's idea of the owner does not cross the wire (none has one today).
        "not_owner" => E::NotOwner { owner: None },
        "internal" => E::Internal(between("internal error: ", "")?),
        _ => return None,
    })
}

/// When to try which endpoint: calls start at successive endpoints (so load spreads), a
/// failed attempt moves to the next one at once, and a round over all of them that found no
/// taker waits a backoff before the next round, all within the deadline.
#[derive(Debug)]
pub(super) struct Rounds {
    endpoints: usize,
    deadline: Duration,
    next: AtomicUsize,
}

impl Rounds {
    const FIRST_BACKOFF: Duration = Duration::from_millis(20);
    const MAX_BACKOFF: Duration = Duration::from_millis(500);

    pub(super) fn new(endpoints: usize, deadline: Duration) -> Self {
        Self {
            endpoints,
            deadline,
            next: AtomicUsize::new(0),
        }
    }

    pub(super) async fn run<F, Fut>(&self, mut attempt: F) -> Result<Ack, CommandError>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = Result<Ack, Failure>>,
    {
        let deadline = Instant::now() + self.deadline;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        let mut backoff = Self::FIRST_BACKOFF;
        let mut tries = 0usize;
        loop {
            let endpoint = (first + tries) % self.endpoints;
            tries += 1;
            let last = match tokio::time::timeout_at(deadline, attempt(endpoint)).await {
                Ok(Ok(ack)) => {
                    if tries > 1 {
                        crate::metrics::forwarded(&Ok::<_, CommandError>(&ack));
                    }
                    return Ok(ack);
                }
                Ok(Err(Failure::Final(err))) => {
                    if tries > 1 {
                        crate::metrics::forwarded(&Err::<(), _>(err.clone()));
                    }
                    return Err(err);
                }
                Ok(Err(Failure::Retry(err))) => err,
                Err(_) => return Err(self.gave_up(tries, None)),
            };
            tracing::debug!(endpoint, tries, code = last.code(), %last, "retrying elsewhere");
            if tries.is_multiple_of(self.endpoints) {
                let now = Instant::now();
                if now + backoff >= deadline {
                    return Err(self.gave_up(tries, Some(last)));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Self::MAX_BACKOFF);
            } else if Instant::now() >= deadline {
                return Err(self.gave_up(tries, Some(last)));
            }
        }
    }

    /// No instance took the command in time: the caller may try again later.
    fn gave_up(&self, tries: usize, last: Option<CommandError>) -> CommandError {
        let err = CommandError::Unavailable(match &last {
            Some(last) => format!(
                "no ingest instance took the command within {:?} ({tries} attempts, the last \
                 answered {}: {last})",
                self.deadline,
                last.code()
            ),
            None => format!(
                "no ingest instance answered within {:?} ({tries} attempts)",
                self.deadline
            ),
        });
        tracing::warn!(%err, "command not delivered");
        err
    }
}
