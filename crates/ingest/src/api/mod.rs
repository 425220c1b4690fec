//! The command API: the same commands over gRPC (tonic) and HTTP/JSON (axum), both answered by
//! one [`CommandHandler`].
//!
//! A request goes the same way on either protocol: its message (the JSON body becomes the
//! protobuf message first) is checked field by field in [`convert`], the caller is
//! authenticated by an [`Authenticator`] (which also decides whether it may act on behalf of
//! someone else), and the handler executes the command. A refusal at any step is an
//! [`ApiError`], mapped once to an HTTP status and a gRPC code.

pub mod auth;
pub mod client;
pub mod convert;
mod error;
pub mod grpc;
pub mod http;
pub mod keys;
mod server;

pub use auth::{AuthError, Authenticator, JwtOrTokens, ServiceToken, StaticTokens};
pub use client::{ClientConfigError, GrpcCommands, GrpcCommandsConfig};
pub use convert::{AgentRequest, ConversationRequest};
pub use error::{ApiError, RETRY_AFTER_METADATA};
pub use keys::{KeyDir, KeyDirError};
pub use server::{Api, ServeError, serve};

use switchboard_events::Seq;
use switchboard_events::id::{AgentId, ConversationId, CorrelationId, MessageId};
use switchboard_events::principal::Principal;

use crate::command::{AgentCommand, ConversationCommand};
use crate::error::CommandError;

/// The answer to a command, given once its events are durable.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ack {
    /// The conversation (or agent) the command acted on; for an open, the new conversation.
    pub stream_id: String,
    /// The seq of the command's last event, or the current seq when nothing changed.
    pub seq: Seq,
    /// True when the command had already been applied (a retry) or changed nothing.
    pub unchanged: bool,
    /// For a posted message: its id.
    pub message_id: Option<MessageId>,
}

/// What executes commands: the writer, or a forwarder to the instance that owns the stream.
pub trait CommandHandler: Send + Sync + 'static {
    /// Executes a command on a conversation. `conversation` is `None` only for an open, for
    /// which the handler picks a new id.
    fn conversation(
        &self,
        principal: Principal,
        conversation: Option<ConversationId>,
        command: ConversationCommand,
        correlation: CorrelationId,
    ) -> impl Future<Output = Result<Ack, CommandError>> + Send;

    fn agent(
        &self,
        principal: Principal,
        agent: AgentId,
        command: AgentCommand,
        correlation: CorrelationId,
    ) -> impl Future<Output = Result<Ack, CommandError>> + Send;
}

/// The generated protobuf types, gRPC server and client of `switchboard.ingest.v1`.
#[allow(missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("switchboard.ingest.v1");
}

#[cfg(test)]
mod tests;
