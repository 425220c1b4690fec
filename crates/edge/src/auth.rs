//! Who connects: the bearer token (from `Sec-WebSocket-Protocol` or the first frame) and the
//! Origin check. Tokens are never logged, and every refused token reads the same
//! (`switchboard_events::token`, `token.md`: trusted issuers, each bound to its tenants).

use axum::http::HeaderMap;
use switchboard_events::id::TenantId;
use switchboard_events::principal::Principal;
use switchboard_events::token::TokenVerifier;
use switchboard_ingest::tenants::Directory;

use crate::config::EdgeConfig;
use crate::protocol::{BEARER_PREFIX, SUBPROTOCOL_V1};

/// What the handshake offered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The client speaks v1.
    pub v1: bool,
    /// The token, when the client put it in `Sec-WebSocket-Protocol`.
    pub token: Option<String>,
}

/// Reads the `Sec-WebSocket-Protocol` entries: `switchboard.v1` and `bearer.<jwt>`.
pub fn offer(headers: &HeaderMap) -> Offer {
    let mut offer = Offer::default();
    for value in headers.get_all("sec-websocket-protocol") {
        let Ok(value) = value.to_str() else { continue };
        for entry in value.split(',').map(str::trim) {
            if entry == SUBPROTOCOL_V1 {
                offer.v1 = true;
            } else if let Some(token) = entry.strip_prefix(BEARER_PREFIX) {
                offer.token = Some(token.to_owned());
            }
        }
    }
    offer
}

/// Why a connection was refused at authentication.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthFailure {
    #[error("the bearer token is not valid")]
    Token,
    #[error("origin {0:?} is not allowed for this tenant")]
    Origin(String),
}

impl AuthFailure {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token => "unauthenticated",
            Self::Origin(_) => "origin_forbidden",
        }
    }
}

/// Who a valid token stands for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub principal: Principal,
    /// The token's `exp`, seconds since the Unix epoch: the session ends with it.
    pub expires_at: u64,
}

/// Verifies the token, then the Origin against the tenant's allowlist.
pub fn authenticate(
    verifier: &TokenVerifier,
    config: &EdgeConfig,
    tenants: Option<&Directory>,
    token: &str,
    origin: Option<&str>,
) -> Result<Authenticated, AuthFailure> {
    let authenticated = verify(verifier, token)?;
    let tenant = &authenticated.principal.tenant;
    if !origin_allowed(config, tenants, tenant, origin) {
        return Err(AuthFailure::Origin(origin.unwrap_or_default().to_owned()));
    }
    Ok(authenticated)
}

/// Verifies the token alone: at connect, and for a fresh token during a session.
pub fn verify(verifier: &TokenVerifier, token: &str) -> Result<Authenticated, AuthFailure> {
    // Every refused token reads the same, so that a client cannot probe which check failed,
    // which issuer or key exists, or which tenant an issuer may speak for; the reason goes to
    // the debug log only.
    let principal = verifier.verify(token).map_err(|refused| {
        tracing::debug!(reason = %refused.reason(), "bearer token refused");
        AuthFailure::Token
    })?;
    // The verifier checked the signature and `exp`; this reads `exp` back, as it stands.
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: u64,
    }
    let expiry = jsonwebtoken::dangerous::insecure_decode::<Expiry>(token)
        .map_err(|_| AuthFailure::Token)?;
    Ok(Authenticated {
        principal,
        expires_at: expiry.claims.exp,
    })
}

/// Whether a browser page of `origin` may connect for `tenant` (no Origin: not a browser, so
/// yes). A tenant with a record allows the origins of its settings, as they stand now, and the
/// deployment's own (the list under `"*"`, where the edge serves the widget page that sites
/// frame); a tenant without one, those of the static configuration: its own list, else the
/// list under `"*"`.
pub fn origin_allowed(
    config: &EdgeConfig,
    tenants: Option<&Directory>,
    tenant: &TenantId,
    origin: Option<&str>,
) -> bool {
    let Some(origin) = origin else { return true };
    let listed = |key: &str| {
        config
            .allowed_origins
            .get(key)
            .map(|list| list.iter().any(|o| o == "*" || o == origin))
    };
    if let Some(record) = tenants.and_then(|t| t.get(tenant)) {
        return record.settings.allows_origin(origin) || listed("*").unwrap_or(false);
    }
    listed(tenant.as_str())
        .or_else(|| listed("*"))
        .unwrap_or(false)
}

#[cfg(test)]
fn check_origin(
    config: &EdgeConfig,
    tenant: &str,
    origin: Option<&str>,
) -> Result<(), AuthFailure> {
    let tenant = TenantId::new(tenant).expect("a valid tenant id");
    if origin_allowed(config, None, &tenant, origin) {
        Ok(())
    } else {
        Err(AuthFailure::Origin(origin.unwrap_or_default().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_token_and_version_come_from_the_subprotocol_list() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("switchboard.v1, bearer.aaa.bbb.ccc"),
        );
        assert_eq!(
            offer(&headers),
            Offer {
                v1: true,
                token: Some("aaa.bbb.ccc".into())
            }
        );
        assert_eq!(offer(&HeaderMap::new()), Offer::default());
    }

    #[test]
    fn origins_are_checked_per_tenant() {
        let mut config = EdgeConfig::default();
        config
            .allowed_origins
            .insert("acme".into(), vec!["https://acme.example".into()]);
        assert!(check_origin(&config, "acme", Some("https://acme.example")).is_ok());
        assert!(check_origin(&config, "acme", None).is_ok());
        assert_eq!(
            check_origin(&config, "acme", Some("https://evil.example")),
            Err(AuthFailure::Origin("https://evil.example".into()))
        );
        assert!(check_origin(&config, "globex", Some("https://acme.example")).is_err());
        config
            .allowed_origins
            .insert("*".into(), vec!["https://ui.example".into()]);
        assert!(
            check_origin(&config, "globex", Some("https://ui.example")).is_ok(),
            "the default list"
        );
        assert!(
            check_origin(&config, "acme", Some("https://ui.example")).is_err(),
            "a tenant's own list wins"
        );
    }

    #[test]
    fn a_tenant_with_a_record_allows_the_origins_of_its_settings() {
        let mut config = EdgeConfig::default();
        config
            .allowed_origins
            .insert("*".into(), vec!["https://ui.example".into()]);
        let directory = Directory::default();
        for (event, _) in switchboard_events::fixtures::tenant_history() {
            directory.apply(&event);
        }
        config
            .allowed_origins
            .insert("acme".into(), vec!["https://old.example".into()]);
        let acme = switchboard_events::fixtures::tenant();
        let allowed = |origin| origin_allowed(&config, Some(&directory), &acme, Some(origin));
        assert!(allowed("https://acme.example"));
        assert!(
            !allowed("https://old.example"),
            "the record, not the static list"
        );
        assert!(allowed("https://ui.example"), "the deployment's own pages");
        assert!(!allowed("https://evil.example"));
        let globex = TenantId::new("globex").unwrap();
        assert!(origin_allowed(
            &config,
            Some(&directory),
            &globex,
            Some("https://ui.example")
        ));
    }
}
