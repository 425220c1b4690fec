//! The errors of the query service, classified once through [`StatusKind`] so that HTTP and
//! gRPC answer the same refusal the same way.
//!
//! A conversation of another tenant is [`QueryError::NotFound`], worded exactly like one that
//! does not exist: an answer never tells a caller what another tenant holds.

use switchboard_events::status::StatusKind;
use switchboard_events::token::Unauthenticated;
use switchboard_store::{ErrorDomain, StoreError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum QueryError {
    #[error("missing or malformed bearer token")]
    MissingToken,
    #[error("{0}")]
    Token(#[from] Unauthenticated),
    #[error("{role} may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The principal read more than its rate allows.
    #[error("too many requests: try again in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    #[error("{0} is unavailable")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    pub fn kind(&self) -> StatusKind {
        match self {
            Self::MissingToken | Self::Token(_) => StatusKind::Unauthenticated,
            Self::Forbidden { .. } => StatusKind::Forbidden,
            Self::NotFound { .. } => StatusKind::NotFound,
            Self::Invalid(_) => StatusKind::InvalidArgument,
            Self::RateLimited { .. } => StatusKind::RateLimited,
            Self::Unavailable(_) => StatusKind::Unavailable,
            Self::Internal(_) => StatusKind::Internal,
        }
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::Token(_) => "unauthenticated",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Invalid(_) => "invalid_argument",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// How long to wait before asking again, when waiting helps.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited { retry_after_ms } => {
                Some(std::time::Duration::from_millis(*retry_after_ms))
            }
            _ => None,
        }
    }

    pub(crate) fn conversation_not_found() -> Self {
        Self::NotFound {
            what: "conversation",
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid(reason.into())
    }
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        match e.domain() {
            ErrorDomain::User => Self::Invalid(e.to_string()),
            ErrorDomain::External => Self::Unavailable(format!("the read-model store ({e})")),
            ErrorDomain::Internal => Self::Internal(e.to_string()),
        }
    }
}

impl From<switchboard_log::LogError> for QueryError {
    fn from(e: switchboard_log::LogError) -> Self {
        Self::Unavailable(format!("the event log ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_distinct_statuses() {
        assert_eq!(QueryError::MissingToken.kind().http(), 401);
        let forbidden = QueryError::Forbidden {
            role: "a customer",
            action: "replay history",
        };
        assert_eq!(forbidden.kind().http(), 403);
        assert_eq!(forbidden.to_string(), "a customer may not replay history");
        assert_eq!(QueryError::conversation_not_found().kind().grpc(), 5);
        let limited = QueryError::RateLimited {
            retry_after_ms: 200,
        };
        assert_eq!(
            (limited.code(), limited.kind().http(), limited.kind().grpc()),
            ("rate_limited", 429, 8)
        );
        assert_eq!(
            QueryError::from(StoreError::InvalidRequest {
                reason: "limit".into()
            })
            .kind()
            .http(),
            400
        );
    }
}
