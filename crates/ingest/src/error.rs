//! Why a command was refused. Every refusal has a stable code (clients and tests match on it)
//! and a message a person can act on.

use switchboard_events::status::StatusKind;
use thiserror::Error;

/// Who has to act on an error.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ErrorDomain {
    /// The caller: fix the request.
    User,
    /// A dependency (the log, the store) failed; retrying may help.
    External,
    /// A bug or corrupt data; an operator must look.
    Internal,
}

/// A refused or failed command.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum CommandError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{role} may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("{field} is {len} bytes, the limit is {max}")]
    TooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("conversation {0} already exists")]
    ConversationExists(String),
    #[error("tenant {0} already exists")]
    TenantExists(String),
    #[error("conversation is resolved: reopen it first")]
    ConversationResolved,
    #[error("client_msg_id {0} was already used for a different message")]
    IdempotencyConflict(String),
    #[error("the customer's data was erased: the conversation takes no more personal data")]
    CustomerErased,
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("we are very busy, please try again later")]
    Overloaded,
    /// The principal sent more commands than its rate allows.
    #[error("too many requests: try again in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The customer already has as many conversations open (or waiting) as the tenant allows.
    #[error("the customer already has {count} {which} conversations, the limit is {max}")]
    TooManyOpenConversations {
        which: &'static str,
        count: usize,
        max: usize,
    },
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    #[error("conversation is owned by another ingest instance")]
    NotOwner { owner: Option<String> },
    #[error("internal error: {0}")]
    Internal(String),
    /// A refusal relayed from another ingest instance (`api::client`) whose original carries
    /// fields that cannot cross the wire (`forbidden`, `invalid_argument`, `too_large`): the
    /// original's code, kind and message, unchanged.
    #[error("{message}")]
    Relayed {
        code: &'static str,
        status: StatusKind,
        message: String,
    },
}

impl CommandError {
    /// The stable, machine-readable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Forbidden { .. } => "forbidden",
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::TooLarge { .. } => "too_large",
            Self::ConversationExists(_) => "conversation_exists",
            Self::TenantExists(_) => "tenant_exists",
            Self::ConversationResolved => "conversation_resolved",
            Self::IdempotencyConflict(_) => "idempotency_conflict",
            Self::CustomerErased => "customer_erased",
            Self::FailedPrecondition(_) => "failed_precondition",
            Self::Overloaded => "overloaded",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooManyOpenConversations { .. } => "too_many_open_conversations",
            Self::Unavailable(_) => "unavailable",
            Self::NotOwner { .. } => "not_owner",
            Self::Internal(_) => "internal",
            Self::Relayed { code, .. } => code,
        }
    }

    pub fn domain(&self) -> ErrorDomain {
        match self {
            Self::Unavailable(_) | Self::NotOwner { .. } | Self::Overloaded => {
                ErrorDomain::External
            }
            Self::Internal(_) => ErrorDomain::Internal,
            Self::Relayed { status, .. } => match status {
                StatusKind::Unavailable => ErrorDomain::External,
                StatusKind::Internal => ErrorDomain::Internal,
                _ => ErrorDomain::User,
            },
            _ => ErrorDomain::User,
        }
    }

    /// Whether the same command may succeed if sent again unchanged.
    pub fn retriable(&self) -> bool {
        self.domain() == ErrorDomain::External || matches!(self, Self::RateLimited { .. })
    }

    /// How long a client should wait before sending the command again, when waiting helps.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited { retry_after_ms } => {
                Some(std::time::Duration::from_millis(*retry_after_ms))
            }
            Self::Overloaded | Self::Unavailable(_) | Self::NotOwner { .. } => {
                Some(std::time::Duration::from_secs(1))
            }
            _ => None,
        }
    }

    /// How the error reads over HTTP and gRPC.
    pub fn status(&self) -> StatusKind {
        match self {
            Self::NotFound { .. } => StatusKind::NotFound,
            Self::Forbidden { .. } => StatusKind::Forbidden,
            Self::InvalidArgument { .. } => StatusKind::InvalidArgument,
            Self::TooLarge { .. } => StatusKind::TooLarge,
            Self::ConversationExists(_) | Self::TenantExists(_) | Self::IdempotencyConflict(_) => {
                StatusKind::Conflict
            }
            Self::ConversationResolved | Self::CustomerErased | Self::FailedPrecondition(_) => {
                StatusKind::FailedPrecondition
            }
            Self::RateLimited { .. } | Self::TooManyOpenConversations { .. } => {
                StatusKind::RateLimited
            }
            Self::Overloaded | Self::Unavailable(_) | Self::NotOwner { .. } => {
                StatusKind::Unavailable
            }
            Self::Internal(_) => StatusKind::Internal,
            Self::Relayed { status, .. } => *status,
        }
    }

    /// Refused by a rate limit; a token is there again after `wait`.
    pub(crate) fn rate_limited(wait: std::time::Duration) -> Self {
        let ms = wait.as_nanos().div_ceil(1_000_000);
        Self::RateLimited {
            retry_after_ms: u64::try_from(ms).unwrap_or(u64::MAX),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}
