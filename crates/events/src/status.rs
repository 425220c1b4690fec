//! The one mapping from error kinds to HTTP statuses and gRPC codes, shared by every service,
//! so that the same refusal reads the same over either protocol.

/// What kind of failure an error is, as a client needs to know it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum StatusKind {
    InvalidArgument,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// The request conflicts with what exists (an id already taken, an idempotency key reused).
    Conflict,
    /// The state does not allow it now (a resolved conversation, an erased customer).
    FailedPrecondition,
    TooLarge,
    RateLimited,
    /// Try again, maybe elsewhere: a dependency is down, the service is busy or draining.
    Unavailable,
    Internal,
}

impl StatusKind {
    pub fn http(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict | Self::FailedPrecondition => 409,
            Self::TooLarge => 413,
            Self::RateLimited => 429,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// The numeric gRPC status code (`google.rpc.Code`).
    pub fn grpc(self) -> i32 {
        match self {
            Self::InvalidArgument | Self::TooLarge => 3,
            Self::NotFound => 5,
            Self::Conflict => 6,
            Self::Forbidden => 7,
            Self::RateLimited => 8,
            Self::FailedPrecondition => 9,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::Unauthenticated => 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StatusKind::*;

    #[test]
    fn every_kind_maps_to_a_distinct_meaning_on_both_protocols() {
        let kinds = [
            InvalidArgument,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            FailedPrecondition,
            TooLarge,
            RateLimited,
            Unavailable,
            Internal,
        ];
        for kind in kinds {
            assert!((400..600).contains(&kind.http()), "{kind:?}");
            assert!((1..=16).contains(&kind.grpc()), "{kind:?}");
        }
        assert_eq!((NotFound.http(), NotFound.grpc()), (404, 5));
        assert_eq!((Unavailable.http(), Unavailable.grpc()), (503, 14));
    }
}
