//! What both protocols share — authenticate, hand the command to the handler, report the
//! outcome — and the function that serves both on their listeners.

use std::fmt;
use std::sync::Arc;

use switchboard_events::principal::Principal;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::Instrument;

use super::auth::Authenticator;
use super::convert::{AgentRequest, ConversationRequest};
use super::error::ApiError;
use super::{Ack, CommandHandler};
use crate::error::{CommandError, ErrorDomain};

/// The command API: a handler that executes commands and an authenticator that says for whom.
/// Cheap to clone; both servers hold one.
pub struct Api<H, A> {
    handler: Arc<H>,
    auth: Arc<A>,
    max_body_bytes: usize,
}

impl<H, A> Clone for Api<H, A> {
    fn clone(&self) -> Self {
        Self {
            handler: Arc::clone(&self.handler),
            auth: Arc::clone(&self.auth),
            max_body_bytes: self.max_body_bytes,
        }
    }
}

impl<H, A> fmt::Debug for Api<H, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl<H: CommandHandler, A: Authenticator> Api<H, A> {
    /// The largest request accepted by default: a 16 KiB message with its attachments'
    /// metadata and the JSON or protobuf around it fit with room to spare.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

    pub fn new(handler: Arc<H>, auth: Arc<A>) -> Self {
        Self {
            handler,
            auth,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The largest request body (HTTP) or message (gRPC) accepted.
    pub fn with_max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The principal a caller's token (and the principal it acts for) authenticates.
    pub(crate) async fn authenticate(
        &self,
        token: Option<&str>,
        on_behalf_of: Option<Principal>,
    ) -> Result<Principal, ApiError> {
        self.auth
            .authenticate(token, on_behalf_of)
            .await
            .map_err(|err| {
                tracing::debug!(code = err.code(), %err, "refused credentials");
                ApiError::from(err)
            })
    }

    /// Executes a conversation command for the caller of `token`, in a span that continues
    /// the caller's trace when it sent a `traceparent`.
    pub(crate) async fn conversation(
        &self,
        token: Option<&str>,
        traceparent: Option<&[u8]>,
        request: ConversationRequest,
    ) -> Result<Ack, ApiError> {
        let principal = self.authenticate(token, request.on_behalf_of).await?;
        let span = tracing::debug_span!(
            "ingest.command",
            kind = request.command.name(),
            tenant = %principal.tenant,
            conversation = request.conversation.as_ref().map(|c| c.as_str()),
            correlation = %request.correlation.0,
        );
        switchboard_log::trace::set_parent(&span, traceparent);
        let result = self
            .handler
            .conversation(
                principal,
                request.conversation,
                request.command,
                request.correlation,
            )
            .instrument(span.clone())
            .await;
        span.in_scope(|| report(&result));
        Ok(result?)
    }

    pub(crate) async fn agent(
        &self,
        token: Option<&str>,
        traceparent: Option<&[u8]>,
        request: AgentRequest,
    ) -> Result<Ack, ApiError> {
        let principal = self
            .authenticate(token, request.on_behalf_of.clone())
            .await?;
        self.agent_as(principal, traceparent, request).await
    }

    /// An agent command of a principal already authenticated, in the trace of `traceparent`
    /// when the caller sent one.
    pub(crate) async fn agent_as(
        &self,
        principal: Principal,
        traceparent: Option<&[u8]>,
        request: AgentRequest,
    ) -> Result<Ack, ApiError> {
        let span = tracing::debug_span!(
            "ingest.agent_command",
            kind = request.command.name(),
            tenant = %principal.tenant,
            agent = request.agent.as_str(),
            correlation = %request.correlation.0,
        );
        switchboard_log::trace::set_parent(&span, traceparent);
        let result = self
            .handler
            .agent(
                principal,
                request.agent,
                request.command,
                request.correlation,
            )
            .instrument(span.clone())
            .await;
        span.in_scope(|| report(&result));
        Ok(result?)
    }
}

/// Refusals are the caller's business (debug); failures of a dependency may need a look
/// (warn); internal errors always do (error).
fn report(result: &Result<Ack, CommandError>) {
    match result {
        Ok(ack) => tracing::debug!(seq = ack.seq.0, unchanged = ack.unchanged, "acknowledged"),
        // Not owning the partition is routine with several instances: the caller retries
        // on the next one.
        Err(err @ CommandError::NotOwner { .. }) => {
            tracing::debug!(code = err.code(), %err, "not the owner")
        }
        Err(err) => match err.domain() {
            ErrorDomain::User => tracing::debug!(code = err.code(), %err, "refused"),
            ErrorDomain::External => tracing::warn!(code = err.code(), %err, "failed"),
            ErrorDomain::Internal => tracing::error!(code = err.code(), %err, "failed"),
        },
    }
}

/// Why a server stopped other than by the shutdown signal.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("the gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// Serves the gRPC API on `grpc` and the HTTP API on `http` until `shutdown` completes; then
/// both stop accepting, finish the requests under way and return.
pub async fn serve<H, A>(
    api: Api<H, A>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError>
where
    H: CommandHandler,
    A: Authenticator,
{
    let (stop, stopped) = watch::channel(false);
    let stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            // An error means the sender is gone, which happens only once we return.
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let incoming = tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true));
    let grpc = tonic::transport::Server::builder()
        .add_service(super::grpc::service(api.clone()))
        .serve_with_incoming_shutdown(incoming, stopped());
    let http = axum::serve(http, super::http::router(api)).with_graceful_shutdown(stopped());
    let signal = async move {
        shutdown.await;
        tracing::info!("command API shutting down");
        // Nobody listening only means both servers already stopped.
        let _ = stop.send(true);
        Ok(())
    };
    tokio::try_join!(
        async { grpc.await.map_err(ServeError::Grpc) },
        async { http.await.map_err(ServeError::Http) },
        signal,
    )?;
    Ok(())
}
