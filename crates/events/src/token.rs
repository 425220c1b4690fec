//! Bearer tokens of end users and services: JWTs whose claims name the tenant, the role and
//! the subject, signed per issuer with asymmetric keys named by `kid`. Every service that faces
//! callers (edge, query, the ingest API) verifies them the same way, here; `token.md` is the
//! design: keys and rotation, the issuer ↔ tenant binding, and what is refused.
//!
//! A token is never logged, and no error quotes it. Every refusal reads the same to the caller
//! ([`Unauthenticated`]); the reason ([`TokenError`]) is for a debug log line.

mod issue;
mod keys;
mod verify;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use issue::TokenIssuer;
pub use jsonwebtoken::jwk::JwkSet;
pub use keys::{IssuerKeys, KeyError, SigningKey, parse_jwks};
pub use verify::{Lifetimes, Tenants, TokenConfig, TokenVerifier, TrustedIssuer};

use crate::id::TenantId;
use crate::principal::Role;

/// The `kid` of the development HS256 secret.
const HS256_KID: &str = "hs256";

/// The claims switchboard reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tenant: String,
    pub role: Role,
    pub aud: String,
    pub iss: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Why a token was refused: for a debug log line and for tests, never for the caller. Values
/// taken from an unverified token are cut short; none is a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token names no kid")]
    MissingKid,
    #[error("the token is from an untrusted issuer {0:?}")]
    UnknownIssuer(String),
    #[error("issuer {issuer:?} has no key {kid:?}")]
    UnknownKey { issuer: String, kid: String },
    #[error("the token uses an algorithm its key does not verify")]
    WrongAlgorithm,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is not for this service (audience)")]
    WrongAudience,
    #[error("the token names another issuer than its key's")]
    WrongIssuer,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token names an invalid {field}: {reason}")]
    InvalidClaim { field: &'static str, reason: String },
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token is issued in the future (iat)")]
    IssuedInTheFuture,
    #[error("the token lives {lifetime} s, its role at most {max} s")]
    TooLong { lifetime: u64, max: u64 },
    #[error("issuer {issuer:?} may not speak for tenant {tenant}")]
    ForeignTenant { issuer: String, tenant: TenantId },
}

/// A refused token, as every caller sees it: one message whatever the reason. Services answer
/// it with 401 `unauthenticated` and log [`Unauthenticated::reason`] at debug level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the bearer token is not valid")]
pub struct Unauthenticated {
    reason: TokenError,
}

impl Unauthenticated {
    /// Why, for the debug log.
    pub fn reason(&self) -> &TokenError {
        &self.reason
    }
}

fn classify(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidAudience => TokenError::WrongAudience,
        K::InvalidIssuer => TokenError::WrongIssuer,
        K::InvalidSignature => TokenError::BadSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => {
            TokenError::WrongAlgorithm
        }
        K::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        _ => TokenError::Malformed,
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
