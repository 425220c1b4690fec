//! Bearer tokens of end users and services: JWTs whose claims name the tenant, the role and
//! the subject. Every service that faces users (edge, query, the ingest HTTP API) verifies them
//! the same way, here.
//!
//! The algorithm is pinned by the verifier's key (a token that names another algorithm, `none`
//! included, is refused, so an RSA public key can never be used as an HMAC secret); `exp`,
//! `aud`, `iss` and `sub` are required; a token is never logged, and errors never quote it.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::id::{PrincipalId, TenantId};
use crate::principal::{Principal, Role};

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Why a token was refused. Messages say what is wrong without quoting the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not for this service (audience)")]
    WrongAudience,
    #[error("the token is from an unknown issuer")]
    WrongIssuer,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token uses an algorithm this service does not accept")]
    WrongAlgorithm,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token is malformed")]
    Malformed,
    #[error("the token names an invalid {field}: {reason}")]
    InvalidClaim { field: &'static str, reason: String },
    #[error("the verification key is unusable: {0}")]
    Key(String),
}

fn classify(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => TokenError::Expired,
        K::InvalidAudience => TokenError::WrongAudience,
        K::InvalidIssuer => TokenError::WrongIssuer,
        K::InvalidSignature => TokenError::BadSignature,
        K::InvalidAlgorithm | K::InvalidAlgorithmName => TokenError::WrongAlgorithm,
        K::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        K::InvalidRsaKey(_) | K::InvalidEcdsaKey | K::InvalidKeyFormat => {
            TokenError::Key(e.to_string())
        }
        _ => TokenError::Malformed,
    }
}

/// Verifies tokens of one issuer for one audience, with one pinned algorithm.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    fn with(key: DecodingKey, algorithm: Algorithm, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 30;
        Self { key, validation }
    }

    /// HS256 with a shared secret (at least 32 bytes).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, TokenError> {
        if secret.len() < 32 {
            return Err(TokenError::Key(format!(
                "an HS256 secret needs at least 32 bytes, got {}",
                secret.len()
            )));
        }
        Ok(Self::with(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            issuer,
            audience,
        ))
    }

    /// RS256 with the issuer's RSA public key in PEM.
    pub fn rs256(public_pem: &[u8], issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let key =
            DecodingKey::from_rsa_pem(public_pem).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Self::with(key, Algorithm::RS256, issuer, audience))
    }

    /// EdDSA with the issuer's Ed25519 public key in PEM.
    pub fn ed25519(public_pem: &[u8], issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let key =
            DecodingKey::from_ed_pem(public_pem).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Self::with(key, Algorithm::EdDSA, issuer, audience))
    }

    /// The principal a valid token stands for.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(classify)?;
        let claims = data.claims;
        let tenant = TenantId::new(claims.tenant).map_err(|e| TokenError::InvalidClaim {
            field: "tenant",
            reason: e.to_string(),
        })?;
        let subject = PrincipalId::new(claims.sub).map_err(|e| TokenError::InvalidClaim {
            field: "sub",
            reason: e.to_string(),
        })?;
        Ok(Principal::new(tenant, claims.role, subject))
    }
}

/// Signs tokens: for development, tests and load generators. Production tokens come from the
/// tenant's identity provider.
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    algorithm: Algorithm,
    issuer: String,
    audience: String,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
            algorithm: Algorithm::HS256,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    pub fn rs256(private_pem: &[u8], issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let key =
            EncodingKey::from_rsa_pem(private_pem).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Self {
            key,
            algorithm: Algorithm::RS256,
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    /// A token for `principal` that expires at `exp` (seconds since the Unix epoch).
    pub fn issue(&self, principal: &Principal, exp: u64) -> Result<String, TokenError> {
        let claims = Claims {
            sub: principal.subject.to_string(),
            tenant: principal.tenant.to_string(),
            role: principal.role,
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            exp,
            iat: None,
        };
        encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|e| TokenError::Key(e.to_string()))
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn principal() -> Principal {
        Principal::new(
            TenantId::new("acme").unwrap(),
            Role::Agent,
            PrincipalId::new("agent-7").unwrap(),
        )
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::hs256(SECRET, "https://id.acme.test", "switchboard").unwrap()
    }

    fn forge(header: &str, claims: &serde_json::Value) -> String {
        use base64_like::encode as b64;
        format!(
            "{}.{}.",
            b64(header.as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    }

    /// Unpadded base64url, enough to forge unsigned tokens in tests.
    mod base64_like {
        pub fn encode(bytes: &[u8]) -> String {
            const A: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = (u32::from(chunk[0]) << 16)
                    | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*chunk.get(2).unwrap_or(&0));
                for i in 0..=chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }

    #[test]
    fn a_valid_token_gives_its_principal() {
        let issuer = TokenIssuer::hs256(SECRET, "https://id.acme.test", "switchboard");
        let token = issuer.issue(&principal(), now_seconds() + 60).unwrap();
        assert_eq!(verifier().verify(&token).unwrap(), principal());
    }

    #[test]
    fn negatives_are_refused_with_their_reason() {
        let exp = now_seconds() + 60;
        let wrong_key = TokenIssuer::hs256(
            b"another-secret-another-secret-xx",
            "https://id.acme.test",
            "switchboard",
        );
        assert_eq!(
            verifier().verify(&wrong_key.issue(&principal(), exp).unwrap()),
            Err(TokenError::BadSignature)
        );
        let wrong_aud = TokenIssuer::hs256(SECRET, "https://id.acme.test", "other-app");
        assert_eq!(
            verifier().verify(&wrong_aud.issue(&principal(), exp).unwrap()),
            Err(TokenError::WrongAudience)
        );
        let wrong_iss = TokenIssuer::hs256(SECRET, "https://evil.test", "switchboard");
        assert_eq!(
            verifier().verify(&wrong_iss.issue(&principal(), exp).unwrap()),
            Err(TokenError::WrongIssuer)
        );
        let expired = TokenIssuer::hs256(SECRET, "https://id.acme.test", "switchboard");
        assert_eq!(
            verifier().verify(&expired.issue(&principal(), now_seconds() - 120).unwrap()),
            Err(TokenError::Expired)
        );
        assert_eq!(verifier().verify("not.a.token"), Err(TokenError::Malformed));
    }

    #[test]
    fn alg_none_and_algorithm_confusion_are_refused() {
        let claims = serde_json::json!({
            "sub": "agent-7", "tenant": "acme", "role": "supervisor",
            "aud": "switchboard", "iss": "https://id.acme.test", "exp": now_seconds() + 60
        });
        let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims);
        assert!(verifier().verify(&none).is_err());
        let rs = forge(r#"{"alg":"RS256","typ":"JWT"}"#, &claims);
        assert_eq!(verifier().verify(&rs), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn missing_claims_are_refused() {
        #[derive(Serialize)]
        struct NoExp<'a> {
            sub: &'a str,
            tenant: &'a str,
            role: &'a str,
            aud: &'a str,
            iss: &'a str,
        }
        let token = encode(
            &Header::new(Algorithm::HS256),
            &NoExp {
                sub: "a",
                tenant: "acme",
                role: "agent",
                aud: "switchboard",
                iss: "https://id.acme.test",
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(matches!(
            verifier().verify(&token),
            Err(TokenError::MissingClaim(_) | TokenError::Malformed)
        ));
    }

    #[test]
    fn short_secrets_and_bad_claims_are_refused() {
        assert!(TokenVerifier::hs256(b"short", "i", "a").is_err());
        let issuer = TokenIssuer::hs256(SECRET, "https://id.acme.test", "switchboard");
        let bad = Principal {
            tenant: TenantId::new("acme").unwrap(),
            role: Role::Agent,
            subject: PrincipalId::new("ok").unwrap(),
        };
        let mut token = issuer.issue(&bad, now_seconds() + 60).unwrap();
        // Still verifies: the claim checks run after the signature check.
        assert!(verifier().verify(&token).is_ok());
        token.push('x');
        assert_eq!(verifier().verify(&token), Err(TokenError::BadSignature));
    }
}
