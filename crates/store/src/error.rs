//! Errors of the store, with the classification the services map to gRPC and HTTP codes.

use thiserror::Error;

/// Whose problem an error is: the caller's, a system we depend on, or ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorDomain {
    /// The request cannot succeed as asked (bad page size, erased key); retrying will not help.
    User,
    /// A system we depend on failed (a node down, a timeout, the disk full).
    External,
    /// A bug or corruption: stored data that cannot be read, an invariant broken.
    Internal,
}

/// What went wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    #[error(
        "data key of customer {customer} of tenant {tenant} was erased and is never re-created"
    )]
    KeyErased { tenant: String, customer: String },

    #[error("{operation} failed in the store backend: {reason}")]
    Backend {
        operation: &'static str,
        reason: String,
        retriable: bool,
    },

    #[error("{operation} timed out after {millis} ms")]
    Timeout {
        operation: &'static str,
        millis: u64,
    },

    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },

    #[error(transparent)]
    Kek(#[from] crate::keywrap::KeyWrapError),

    #[error("row in {table} has format version {version}, this build reads up to {newest}")]
    UnknownVersion {
        table: &'static str,
        version: u8,
        newest: u8,
    },
}

impl StoreError {
    pub fn domain(&self) -> ErrorDomain {
        match self {
            Self::InvalidRequest { .. } | Self::KeyErased { .. } => ErrorDomain::User,
            Self::Backend { .. } | Self::Timeout { .. } => ErrorDomain::External,
            Self::Corrupt { .. } | Self::UnknownVersion { .. } => ErrorDomain::Internal,
            // A wrong or missing KEK is the operator's to fix; a KMS that fails is external.
            Self::Kek(crate::keywrap::KeyWrapError::Service(_)) => ErrorDomain::External,
            Self::Kek(_) => ErrorDomain::Internal,
        }
    }

    /// Whether the same call may succeed later. Every write of the store is idempotent, so a
    /// retriable write may simply be repeated.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Backend { retriable, .. } => *retriable,
            Self::Timeout { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(table: &'static str, reason: impl ToString) -> Self {
        Self::Corrupt {
            table,
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_and_say_what_failed() {
        let erased = StoreError::KeyErased {
            tenant: "acme".into(),
            customer: "cust-1".into(),
        };
        assert_eq!(erased.domain(), ErrorDomain::User);
        assert!(!erased.is_retriable());
        assert_eq!(
            erased.to_string(),
            "data key of customer cust-1 of tenant acme was erased and is never re-created"
        );
        let down = StoreError::Backend {
            operation: "apply batch",
            reason: "no node reachable".into(),
            retriable: true,
        };
        assert_eq!(down.domain(), ErrorDomain::External);
        assert!(down.is_retriable());
        let corrupt = StoreError::corrupt("timeline", "row is 3 bytes");
        assert_eq!(corrupt.domain(), ErrorDomain::Internal);
        assert_eq!(
            corrupt.to_string(),
            "corrupt row in timeline: row is 3 bytes"
        );
    }
}
