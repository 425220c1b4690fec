//! Who is calling. Both protocols hand the bearer token (and the principal a service claims to
//! act for) to an [`Authenticator`], which answers with the principal the command runs as.
//!
//! [`StaticTokens`] are service tokens from configuration; [`JwtOrTokens`] adds end users with
//! JWTs, verified by `switchboard_events::token::TokenVerifier` (trusted issuers, each bound
//! to its tenants). End users mostly reach ingest through the edge, which authenticates them
//! and calls ingest as a service on their behalf. Every refused token answers the same
//! [`AuthError::InvalidToken`]; the reason is logged at debug level only.
//!
//! Tokens are secrets: they are never logged, never kept in clear after start-up (only their
//! SHA-256 digests are), and compared in constant time.

use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::status::StatusKind;
use thiserror::Error;

/// Turns credentials into the principal a command runs as.
pub trait Authenticator: Send + Sync + 'static {
    /// `token` is the bearer token, if the caller sent one; `on_behalf_of` the principal the
    /// caller asks to act for.
    fn authenticate(
        &self,
        token: Option<&str>,
        on_behalf_of: Option<Principal>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send;
}

/// Why a caller was not let in, or may not act for whom it asked.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum AuthError {
    #[error("missing bearer token: send the header `authorization: Bearer <token>`")]
    MissingToken,
    #[error("the authorization header is not of the form `Bearer <token>`")]
    NotBearer,
    #[error("the bearer token is not valid")]
    InvalidToken,
    #[error("{role} may not act on behalf of another principal")]
    OnBehalfNotAllowed { role: &'static str },
    #[error("a service of tenant {own} may not act on behalf of a principal of tenant {other}")]
    OtherTenant { own: TenantId, other: TenantId },
    #[error("on_behalf_of names a service: a service acts as itself")]
    OnBehalfOfService,
}

impl AuthError {
    /// The stable code, as for [`crate::CommandError::code`].
    pub fn code(&self) -> &'static str {
        match self.status() {
            StatusKind::Unauthenticated => "unauthenticated",
            _ => "forbidden",
        }
    }

    pub fn status(&self) -> StatusKind {
        match self {
            Self::MissingToken | Self::NotBearer | Self::InvalidToken => {
                StatusKind::Unauthenticated
            }
            Self::OnBehalfNotAllowed { .. }
            | Self::OtherTenant { .. }
            | Self::OnBehalfOfService => StatusKind::Forbidden,
        }
    }
}

/// The token of an `authorization` header value: `Bearer <token>`, the scheme in any case.
/// `Ok(None)` when there is no header.
pub fn bearer(header: Option<&[u8]>) -> Result<Option<&str>, AuthError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let header = std::str::from_utf8(header).map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = header.split_once(' ').ok_or(AuthError::NotBearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::NotBearer);
    }
    Ok(Some(token))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Customer => "a customer",
        Role::Agent => "an agent",
        Role::Supervisor => "a supervisor",
        Role::Auditor => "an auditor",
        Role::Service => "a service",
    }
}

/// The principal a command runs as: the caller itself, or — only for a service — the
/// principal it acts for, within its own tenant unless it serves every tenant.
pub fn act_as(
    caller: Principal,
    on_behalf_of: Option<Principal>,
    all_tenants: bool,
) -> Result<Principal, AuthError> {
    let Some(other) = on_behalf_of else {
        return Ok(caller);
    };
    if caller.role != Role::Service {
        return Err(AuthError::OnBehalfNotAllowed {
            role: role_name(caller.role),
        });
    }
    // A tenant's service acts as itself. Only the deployment's own all-tenants service (an
    // ingest instance forwarding its router's commands to the instance that owns the
    // conversation) may carry a tenant's service principal.
    if other.role == Role::Service && !all_tenants {
        return Err(AuthError::OnBehalfOfService);
    }
    if !all_tenants && other.tenant != caller.tenant {
        return Err(AuthError::OtherTenant {
            own: caller.tenant,
            other: other.tenant,
        });
    }
    Ok(other)
}

/// One configured token and the principal it authenticates.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceToken {
    pub token: String,
    pub tenant: TenantId,
    pub role: Role,
    pub subject: PrincipalId,
    /// A service that may act for principals of any tenant (switchboard's own edge); others
    /// act only within their tenant.
    #[serde(default)]
    pub all_tenants: bool,
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceToken")
            .field("token", &"<redacted>")
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .field("subject", &self.subject)
            .field("all_tenants", &self.all_tenants)
            .finish()
    }
}

/// Why a token configuration was refused at start-up.
#[derive(Clone, PartialEq, Eq, Debug, Error)]
pub enum TokenConfigError {
    #[error("the token of {subject} is {len} bytes, at least {min} are required")]
    TooShort {
        subject: PrincipalId,
        len: usize,
        min: usize,
    },
    #[error("the token of {subject} is also configured for {other}")]
    Duplicate {
        subject: PrincipalId,
        other: PrincipalId,
    },
    #[error("{subject} is not a service: only a service may act for every tenant")]
    AllTenantsNotService { subject: PrincipalId },
}

struct Entry {
    digest: [u8; 32],
    principal: Principal,
    all_tenants: bool,
}

/// Static tokens from configuration, each standing for one principal.
pub struct StaticTokens {
    entries: Vec<Entry>,
}

impl fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.principal))
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl StaticTokens {
    /// Guessing a token of this length is out of reach.
    pub const MIN_TOKEN_BYTES: usize = 16;

    pub fn new(tokens: impl IntoIterator<Item = ServiceToken>) -> Result<Self, TokenConfigError> {
        let mut entries: Vec<Entry> = Vec::new();
        for t in tokens {
            if t.token.len() < Self::MIN_TOKEN_BYTES {
                return Err(TokenConfigError::TooShort {
                    subject: t.subject,
                    len: t.token.len(),
                    min: Self::MIN_TOKEN_BYTES,
                });
            }
            if t.all_tenants && t.role != Role::Service {
                return Err(TokenConfigError::AllTenantsNotService { subject: t.subject });
            }
            let digest = digest(&t.token);
            if let Some(other) = entries.iter().find(|e| e.digest == digest) {
                return Err(TokenConfigError::Duplicate {
                    subject: t.subject,
                    other: other.principal.subject.clone(),
                });
            }
            entries.push(Entry {
                digest,
                principal: Principal::new(t.tenant, t.role, t.subject),
                all_tenants: t.all_tenants,
            });
        }
        Ok(Self { entries })
    }

    /// Finds the token's entry, comparing against every entry in constant time.
    fn find(&self, token: &str) -> Option<&Entry> {
        let presented = digest(token);
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        found
    }
}

impl Authenticator for StaticTokens {
    async fn authenticate(
        &self,
        token: Option<&str>,
        on_behalf_of: Option<Principal>,
    ) -> Result<Principal, AuthError> {
        let entry = self
            .find(token.ok_or(AuthError::MissingToken)?)
            .ok_or(AuthError::InvalidToken)?;
        act_as(entry.principal.clone(), on_behalf_of, entry.all_tenants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(tenant: &str, role: Role, subject: &str) -> Principal {
        Principal::new(
            TenantId::new(tenant).unwrap(),
            role,
            PrincipalId::new(subject).unwrap(),
        )
    }

    fn token(token: &str, p: &Principal, all_tenants: bool) -> ServiceToken {
        ServiceToken {
            token: token.to_owned(),
            tenant: p.tenant.clone(),
            role: p.role,
            subject: p.subject.clone(),
            all_tenants,
        }
    }

    const EDGE: &str = "edge-token-0123456789";
    const CRM: &str = "crm-token-0123456789";
    const BOSS: &str = "boss-token-0123456789";

    fn tokens() -> StaticTokens {
        StaticTokens::new([
            token(EDGE, &principal("sys", Role::Service, "edge"), true),
            token(CRM, &principal("acme", Role::Service, "crm"), false),
            token(BOSS, &principal("acme", Role::Supervisor, "boss"), false),
        ])
        .unwrap()
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_known_token_authenticates_its_principal() {
        let p = run(tokens().authenticate(Some(BOSS), None)).unwrap();
        assert_eq!(p, principal("acme", Role::Supervisor, "boss"));
    }

    #[test]
    fn missing_and_unknown_tokens_are_unauthenticated() {
        let t = tokens();
        assert_eq!(
            run(t.authenticate(None, None)),
            Err(AuthError::MissingToken)
        );
        let wrong = run(t.authenticate(Some("edge-token-012345678"), None)).unwrap_err();
        assert_eq!(wrong, AuthError::InvalidToken);
        assert_eq!(wrong.code(), "unauthenticated");
        assert_eq!(wrong.status().http(), 401);
    }

    #[test]
    fn only_services_act_on_behalf_of_others_within_their_reach() {
        let t = tokens();
        let customer = principal("acme", Role::Customer, "c1");
        let elsewhere = principal("globex", Role::Agent, "a1");
        assert_eq!(
            run(t.authenticate(Some(CRM), Some(customer.clone()))),
            Ok(customer.clone())
        );
        assert_eq!(
            run(t.authenticate(Some(EDGE), Some(elsewhere.clone()))),
            Ok(elsewhere.clone())
        );
        let err = run(t.authenticate(Some(CRM), Some(elsewhere))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a service of tenant acme may not act on behalf of a principal of tenant globex"
        );
        let err = run(t.authenticate(Some(BOSS), Some(customer))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a supervisor may not act on behalf of another principal"
        );
        assert_eq!((err.code(), err.status().http()), ("forbidden", 403));
        let other_service = principal("acme", Role::Service, "router");
        assert_eq!(
            run(t.authenticate(Some(CRM), Some(other_service.clone()))),
            Err(AuthError::OnBehalfOfService)
        );
        assert_eq!(
            run(t.authenticate(Some(EDGE), Some(other_service.clone()))),
            Ok(other_service),
            "the all-tenants service forwards a router's commands"
        );
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer(None), Ok(None));
        assert_eq!(bearer(Some(b"Bearer abc")), Ok(Some("abc")));
        assert_eq!(bearer(Some(b"bearer  abc ")), Ok(Some("abc")));
        for bad in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer  ",
            b"abc",
            b"Bearer \xff",
        ] {
            assert_eq!(bearer(Some(bad)), Err(AuthError::NotBearer), "{bad:?}");
        }
    }

    #[test]
    fn bad_configurations_are_refused_and_tokens_never_show() {
        let boss = principal("acme", Role::Supervisor, "boss");
        let short = StaticTokens::new([token("short", &boss, false)]).unwrap_err();
        assert!(matches!(short, TokenConfigError::TooShort { len: 5, .. }));
        let twice = StaticTokens::new([token(BOSS, &boss, false), token(BOSS, &boss, false)]);
        assert!(matches!(twice, Err(TokenConfigError::Duplicate { .. })));
        let wide = StaticTokens::new([token(BOSS, &boss, true)]);
        assert!(matches!(
            wide,
            Err(TokenConfigError::AllTenantsNotService { .. })
        ));
        let shown = format!("{:?} {:?}", tokens(), token(BOSS, &boss, false));
        assert!(!shown.contains(BOSS) && !shown.contains(EDGE), "{shown}");
    }

    #[test]
    fn tokens_load_from_configuration() {
        let config = r#"[{"token": "edge-token-0123456789", "tenant": "sys",
            "role": "service", "subject": "edge", "all_tenants": true}]"#;
        let parsed: Vec<ServiceToken> = serde_json::from_str(config).unwrap();
        let t = StaticTokens::new(parsed).unwrap();
        assert_eq!(
            run(t.authenticate(Some(EDGE), None))
                .unwrap()
                .subject
                .as_str(),
            "edge"
        );
    }
}

/// End users with JWTs from the tenant's identity provider, and services with static tokens:
/// a token that is one of the configured service tokens is a service, anything else must be a
/// valid JWT.
#[derive(Debug)]
pub struct JwtOrTokens {
    pub jwt: switchboard_events::token::TokenVerifier,
    pub services: StaticTokens,
}

impl Authenticator for JwtOrTokens {
    async fn authenticate(
        &self,
        token: Option<&str>,
        on_behalf_of: Option<Principal>,
    ) -> Result<Principal, AuthError> {
        let token = token.ok_or(AuthError::MissingToken)?;
        match self
            .services
            .authenticate(Some(token), on_behalf_of.clone())
            .await
        {
            Err(AuthError::InvalidToken) => {
                let user = self.jwt.verify(token).map_err(|refused| {
                    tracing::debug!(reason = %refused.reason(), "bearer token refused");
                    AuthError::InvalidToken
                })?;
                act_as(user, on_behalf_of, false)
            }
            other => other,
        }
    }
}
