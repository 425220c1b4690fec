//! Signing tokens with an issuer's active key: the instance's own tokens (the development
//! `switchboard token`, tests, load generators); production end users get theirs from the
//! tenant's identity provider, or from an application that holds the instance's keys.

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;

use super::keys::{IssuerKeys, KeyError};
use super::{Claims, HS256_KID, now_seconds};
use crate::principal::Principal;

/// Signs tokens for one issuer and audience with one key, named in the header by its `kid`.
#[derive(Clone)]
pub struct TokenIssuer {
    kid: String,
    algorithm: Algorithm,
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Signs with the active key of `keys`. After a rotation, make a new issuer.
    pub fn new(keys: &IssuerKeys, issuer: &str, audience: &str) -> Self {
        let active = keys.active();
        Self {
            kid: active.kid().to_owned(),
            algorithm: active.algorithm(),
            key: active.encoding_key().clone(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// A development issuer with a shared HS256 secret, for [`super::TokenVerifier::hs256`].
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            kid: HS256_KID.to_owned(),
            algorithm: Algorithm::HS256,
            key: EncodingKey::from_secret(secret),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// A token for `principal`, issued now, that expires at `exp` (seconds since the Unix
    /// epoch). Its lifetime must fit the verifier's cap for the principal's role.
    pub fn issue(&self, principal: &Principal, exp: u64) -> Result<String, KeyError> {
        self.sign(&Claims {
            sub: principal.subject.to_string(),
            tenant: principal.tenant.to_string(),
            role: principal.role,
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            exp,
            nbf: None,
            iat: Some(now_seconds()),
        })
    }

    /// Signs any claims as they are: for tests that need a well-signed token with bad claims.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.key).map_err(|e| KeyError::Signing(e.to_string()))
    }
}
