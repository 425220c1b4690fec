//! The verifier: which issuers are trusted, with which keys, for which tenants, and the checks
//! every token passes (`token.md` is the design).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::dangerous::insecure_decode;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::{Deserialize, Serialize};

use super::{Claims, KeyError, TokenError, Unauthenticated, now_seconds};
use crate::id::{PrincipalId, TenantId};
use crate::principal::{Principal, Role};

/// How tokens are verified, and the instance's own issuer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// The `iss` of the instance's own tokens.
    pub issuer: String,
    /// The `aud` every token must name.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: u64,
    /// The longest a token may live, per role.
    pub max_lifetime: Lifetimes,
    /// Issuers other than the instance's own (a tenant's OpenID Connect provider), each bound
    /// to the tenants it may speak for.
    pub trusted: Vec<TrustedIssuer>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            issuer: "switchboard".to_owned(),
            audience: "switchboard".to_owned(),
            leeway_seconds: 30,
            max_lifetime: Lifetimes::default(),
            trusted: Vec::new(),
        }
    }
}

impl TokenConfig {
    /// How long a superseded key must keep verifying: the longest lifetime and the leeway.
    pub fn keep_retired_keys_for(&self) -> u64 {
        self.max_lifetime.longest() + self.leeway_seconds
    }
}

/// The longest lifetime of a token (`exp - iat`, or `exp - now` without `iat`), per role.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lifetimes {
    /// Customers: the widget asks for a new token as often as it likes. 1 hour.
    pub customer_seconds: u64,
    /// Agents, supervisors and auditors: a working day. 12 hours.
    pub staff_seconds: u64,
    /// Services and integrations. 24 hours.
    pub service_seconds: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            customer_seconds: 3_600,
            staff_seconds: 12 * 3_600,
            service_seconds: 24 * 3_600,
        }
    }
}

impl Lifetimes {
    pub fn of(&self, role: Role) -> u64 {
        match role {
            Role::Customer => self.customer_seconds,
            Role::Agent | Role::Supervisor | Role::Auditor => self.staff_seconds,
            Role::Service => self.service_seconds,
        }
    }

    pub fn longest(&self) -> u64 {
        self.customer_seconds
            .max(self.staff_seconds)
            .max(self.service_seconds)
    }
}

/// An external issuer in the configuration: its `iss`, its tenants and where its JWKS is.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    pub issuer: String,
    /// The tenants its tokens may name.
    pub tenants: Vec<TenantId>,
    /// The issuer's JWKS document, read by the binary (this crate reads no files).
    pub jwks_file: PathBuf,
}

/// The tenants an issuer may speak for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenants {
    /// Every tenant this instance hosts: only the instance's own issuer.
    All,
    Only(BTreeSet<TenantId>),
}

impl Tenants {
    pub fn only(tenants: impl IntoIterator<Item = TenantId>) -> Self {
        Self::Only(tenants.into_iter().collect())
    }

    fn admits(&self, tenant: &TenantId) -> bool {
        match self {
            Self::All => true,
            Self::Only(tenants) => tenants.contains(tenant),
        }
    }
}

/// A public key and the one algorithm it verifies.
#[derive(Clone)]
struct PinnedKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

struct Issuer {
    tenants: Tenants,
    keys: HashMap<String, PinnedKey>,
}

/// The algorithm a JWK verifies: fixed by its key type, and by its `alg` when it names one.
/// Symmetric keys are refused: a JWKS is public.
fn pin(jwk: &Jwk) -> Result<(String, PinnedKey), KeyError> {
    let kid = jwk.common.key_id.clone().unwrap_or_default();
    let unusable = |reason: &str| KeyError::Unusable {
        kid: kid.clone(),
        reason: reason.to_owned(),
    };
    if kid.is_empty() {
        return Err(unusable("a JWK without kid"));
    }
    let (algorithm, wanted) = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        _ => {
            return Err(unusable(
                "only Ed25519, P-256 and RSA public keys verify tokens",
            ));
        }
    };
    if jwk.common.key_algorithm.is_some_and(|alg| alg != wanted) {
        return Err(unusable("its alg does not match its key type"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| unusable(&e.to_string()))?;
    Ok((kid, PinnedKey { algorithm, key }))
}

fn pin_all(jwks: &JwkSet) -> Result<HashMap<String, PinnedKey>, KeyError> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let (kid, key) = pin(jwk)?;
        if keys.insert(kid.clone(), key).is_some() {
            return Err(KeyError::DuplicateKid(kid));
        }
    }
    Ok(keys)
}

#[derive(Debug)]
struct Policy {
    audience: String,
    leeway: u64,
    lifetimes: Lifetimes,
}

/// Verifies bearer tokens: from trusted issuers only, each with its keys (named by `kid`, one
/// algorithm each) and its tenants. Clones share the trusted issuers, so that a rotation
/// through [`TokenVerifier::set_keys`] reaches every service holding a clone.
#[derive(Clone)]
pub struct TokenVerifier {
    policy: Arc<Policy>,
    issuers: Arc<RwLock<HashMap<String, Issuer>>>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers = self.issuers.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = issuers.keys().collect();
        names.sort();
        f.debug_struct("TokenVerifier")
            .field("audience", &self.policy.audience)
            .field("issuers", &names)
            .finish_non_exhaustive()
    }
}

/// The part of the claims read before the signature is checked: only to choose the keys.
#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

impl TokenVerifier {
    /// A verifier with `config`'s policy that trusts no issuer yet.
    pub fn new(config: &TokenConfig) -> Self {
        Self {
            policy: Arc::new(Policy {
                audience: config.audience.clone(),
                leeway: config.leeway_seconds,
                lifetimes: config.max_lifetime.clone(),
            }),
            issuers: Arc::default(),
        }
    }

    /// Trusts `issuer` for `tenants`, with the public keys of `jwks` (replacing what it had).
    pub fn trust(&self, issuer: &str, tenants: Tenants, jwks: &JwkSet) -> Result<(), KeyError> {
        self.insert(issuer, tenants, pin_all(jwks)?);
        Ok(())
    }

    /// Replaces the keys of a trusted issuer, its tenants unchanged: a rotation. Tokens signed
    /// by a key still in `jwks` stay valid, tokens of a key no longer in it are refused.
    pub fn set_keys(&self, issuer: &str, jwks: &JwkSet) -> Result<(), KeyError> {
        let keys = pin_all(jwks)?;
        let mut issuers = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
        let trusted = issuers
            .get_mut(issuer)
            .ok_or_else(|| KeyError::Jwks(format!("{issuer:?} is not a trusted issuer")))?;
        trusted.keys = keys;
        Ok(())
    }

    fn insert(&self, issuer: &str, tenants: Tenants, keys: HashMap<String, PinnedKey>) {
        let mut issuers = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
        issuers.insert(issuer.to_owned(), Issuer { tenants, keys });
    }

    /// Also accepts, from the trusted `issuer`, tokens signed with an HS256 `secret` (at least
    /// 32 bytes) that name `kid: "hs256"`: the shim for roles that share one secret file
    /// rather than one key directory. A later [`TokenVerifier::set_keys`] drops it.
    pub fn accept_secret(&self, issuer: &str, secret: &[u8]) -> Result<(), KeyError> {
        let key = hs256_key(secret)?;
        let mut issuers = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
        let trusted = issuers
            .get_mut(issuer)
            .ok_or_else(|| KeyError::Jwks(format!("{issuer:?} is not a trusted issuer")))?;
        trusted.keys.insert(super::HS256_KID.to_owned(), key);
        Ok(())
    }

    /// A development verifier that trusts one issuer for every tenant with an HS256 secret
    /// (at least 32 bytes), its tokens naming `kid: "hs256"`. Kept while `switchboard serve`
    /// still signs with a shared secret; the instance's keys replace it.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, KeyError> {
        let key = hs256_key(secret)?;
        let verifier = Self::new(&TokenConfig {
            audience: audience.to_owned(),
            ..TokenConfig::default()
        });
        verifier.insert(
            issuer,
            Tenants::All,
            HashMap::from([(super::HS256_KID.to_owned(), key)]),
        );
        Ok(verifier)
    }

    /// The principal a valid token stands for. Every refusal reads the same; its reason is in
    /// [`Unauthenticated::reason`], for a debug log.
    pub fn verify(&self, token: &str) -> Result<Principal, Unauthenticated> {
        self.verify_at(token, now_seconds())
    }

    /// [`TokenVerifier::verify`] as of `now`, seconds since the Unix epoch.
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Principal, Unauthenticated> {
        self.check(token, now)
            .map_err(|reason| Unauthenticated { reason })
    }

    fn check(&self, token: &str, now: u64) -> Result<Principal, TokenError> {
        let unverified = insecure_decode::<Unverified>(token).map_err(|_| TokenError::Malformed)?;
        let kid = unverified.header.kid.ok_or(TokenError::MissingKid)?;
        let iss = unverified
            .claims
            .iss
            .ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
        let claims = {
            let issuers = self.issuers.read().unwrap_or_else(PoisonError::into_inner);
            let issuer = issuers
                .get(&iss)
                .ok_or_else(|| TokenError::UnknownIssuer(shorten(&iss)))?;
            let pinned = issuer
                .keys
                .get(&kid)
                .ok_or_else(|| TokenError::UnknownKey {
                    issuer: shorten(&iss),
                    kid: shorten(&kid),
                })?;
            let mut validation = Validation::new(pinned.algorithm);
            validation.set_issuer(&[&iss]);
            validation.set_audience(&[&self.policy.audience]);
            validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            // exp and nbf are checked below, against `now`.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            let claims = decode::<Claims>(token, &pinned.key, &validation)
                .map_err(super::classify)?
                .claims;
            let tenant = TenantId::new(&claims.tenant).map_err(|e| TokenError::InvalidClaim {
                field: "tenant",
                reason: e.to_string(),
            })?;
            if !issuer.tenants.admits(&tenant) {
                return Err(TokenError::ForeignTenant {
                    issuer: iss,
                    tenant,
                });
            }
            claims
        };
        self.check_times(&claims, now)?;
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

    fn check_times(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        let leeway = self.policy.leeway;
        if claims.exp.saturating_add(leeway) < now {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(TokenError::NotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return Err(TokenError::IssuedInTheFuture);
        }
        let lifetime = claims
            .exp
            .saturating_sub(claims.iat.map_or(now, |iat| iat.min(now)));
        let max = self.policy.lifetimes.of(claims.role);
        if lifetime > max {
            return Err(TokenError::TooLong { lifetime, max });
        }
        Ok(())
    }
}

/// The development HS256 secret as a key pinned to HS256; short secrets are refused.
fn hs256_key(secret: &[u8]) -> Result<PinnedKey, KeyError> {
    if secret.len() < 32 {
        return Err(KeyError::Unusable {
            kid: super::HS256_KID.to_owned(),
            reason: format!(
                "an HS256 secret needs at least 32 bytes, got {}",
                secret.len()
            ),
        });
    }
    Ok(PinnedKey {
        algorithm: Algorithm::HS256,
        key: DecodingKey::from_secret(secret),
    })
}

/// An unverified string, cut for a log line.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}
