//! The one shape every refusal takes on the wire: a kind (which picks the HTTP status and the
//! gRPC code), a stable code, and a message for people.

use std::time::Duration;

use switchboard_events::status::StatusKind;

use super::auth::AuthError;
use crate::error::CommandError;

/// A refused request, as either protocol answers it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ApiError {
    pub kind: StatusKind,
    pub code: &'static str,
    pub message: String,
    /// When waiting helps: how long (HTTP `Retry-After`, gRPC `retry-after-ms` metadata).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(kind: StatusKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusKind::InvalidArgument, "invalid_argument", message)
    }

    pub(crate) fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusKind::TooLarge, "too_large", message)
    }

    /// Turns the error into a gRPC status: the code from [`StatusKind::grpc`], the message,
    /// and the stable code in the `switchboard-code` metadata.
    pub fn to_status(&self) -> tonic::Status {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            super::grpc::CODE_METADATA,
            tonic::metadata::MetadataValue::from_static(self.code),
        );
        if let Some(wait) = self.retry_after {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            metadata.insert(
                RETRY_AFTER_METADATA,
                tonic::metadata::MetadataValue::from(ms),
            );
        }
        tonic::Status::with_metadata(
            tonic::Code::from_i32(self.kind.grpc()),
            self.message.clone(),
            metadata,
        )
    }
}

/// The gRPC response metadata key that says how many milliseconds to wait before a retry.
pub const RETRY_AFTER_METADATA: &str = "retry-after-ms";

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        Self {
            retry_after: err.retry_after(),
            ..Self::new(err.status(), err.code(), err.to_string())
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        Self::new(err.status(), err.code(), err.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
