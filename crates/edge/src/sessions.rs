//! Visitor sessions: `POST /v1/sessions`. The widget sends its tenant's public widget key and
//! gets a short-lived customer token for a visitor id, signed with the instance's key, and the
//! refresh secret that gets the same visitor a new token later (the same customer, so the same
//! conversations). The business's backend may vouch for its own user (a user id signed with the
//! tenant's identity secret, or a customer JWT of the tenant's own issuer): the visitor is then
//! that user's customer on every device. Nothing is stored: the secrets are derived
//! (`switchboard_events::visitor`) and the tenant is read from the directory.
//!
//! Refused with the same care as tokens: an unknown widget key, a bad refresh secret and a bad
//! identity signature all answer 401 `unauthenticated` with one message; an Origin the tenant
//! does not allow answers 403 `origin_forbidden`; too many sessions per IP or per tenant answer
//! 429 `rate_limited` with `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ORIGIN, RETRY_AFTER, VARY,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_events::id::{CustomerId, PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::rate::{Rate, RateLimiter};
use switchboard_events::token::{TokenIssuer, TokenVerifier, now_seconds};
use switchboard_events::visitor::{
    MAX_USER_ID, SessionSecret, anonymous_visitor, verified_customer,
};
use switchboard_ingest::tenants::{Directory, TenantRecord};

use crate::auth::origin_allowed;
use crate::config::EdgeConfig;

/// How visitor sessions are issued: the `[edge.sessions]` table.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// How long a visitor token lives; the widget refreshes before. At most the verifier's
    /// cap for customers (`auth.max_lifetime.customer_seconds`).
    pub token_seconds: u64,
    /// Sessions started (or refreshed) per client IP address.
    pub per_ip: Rate,
    /// Sessions started (or refreshed) per tenant, over every client, on this instance.
    pub per_tenant: Rate,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            token_seconds: 900,
            per_ip: Rate::new(0.5, 20.0),
            per_tenant: Rate::new(50.0, 500.0),
        }
    }
}

/// What issuing sessions takes: the instance's signing key, its session secret and the
/// tenant directory.
#[derive(Clone, Debug)]
pub struct SessionIssuer {
    pub issuer: TokenIssuer,
    pub secret: SessionSecret,
    pub directory: Directory,
}

pub(crate) struct Sessions {
    issuer: SessionIssuer,
    verifier: TokenVerifier,
    config: SessionsConfig,
    edge: Arc<EdgeConfig>,
    per_ip: Mutex<RateLimiter<IpAddr>>,
    per_tenant: Mutex<RateLimiter<TenantId>>,
}

/// The body of `POST /v1/sessions`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    widget_key: String,
    /// A session the browser had: the same visitor again.
    #[serde(default)]
    refresh: Option<Refresh>,
    /// The business's word for who the visitor is.
    #[serde(default)]
    identity: Option<Identity>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Refresh {
    visitor_id: String,
    secret: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, untagged)]
enum Identity {
    /// `signature` is hex HMAC-SHA256 of `user_id` under the tenant's identity secret.
    Signed { user_id: String, signature: String },
    /// A customer token of the tenant's own issuer (`auth.trusted`).
    Jwt { jwt: String },
}

#[derive(Serialize, Debug)]
struct SessionAnswer {
    token: String,
    /// Seconds since the Unix epoch.
    expires_at: u64,
    tenant: TenantId,
    visitor_id: CustomerId,
    refresh_secret: String,
    verified: bool,
}

/// A refusal of `POST /v1/sessions`.
#[derive(Debug)]
pub(crate) enum SessionError {
    Invalid(String),
    Unauthenticated,
    Origin,
    RateLimited(Duration),
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::Invalid(reason) => (StatusCode::BAD_REQUEST, "invalid_argument", reason.clone()),
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "the widget key or the visitor's credentials are not valid".to_owned(),
            ),
            Self::Origin => (
                StatusCode::FORBIDDEN,
                "origin_forbidden",
                "this site may not use the tenant's widget".to_owned(),
            ),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many sessions: try again later".to_owned(),
            ),
        };
        let body = serde_json::json!({"code": code, "message": message});
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::RateLimited(wait) = self {
            let seconds = wait.as_millis().div_ceil(1000).clamp(1, 3600) as u64;
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The largest session request read.
const MAX_BODY: usize = 8 * 1024;

impl Sessions {
    pub(crate) fn new(
        issuer: SessionIssuer,
        verifier: TokenVerifier,
        config: SessionsConfig,
        edge: Arc<EdgeConfig>,
    ) -> Self {
        Self {
            issuer,
            verifier,
            config,
            edge,
            per_ip: Mutex::new(RateLimiter::default()),
            per_tenant: Mutex::new(RateLimiter::default()),
        }
    }

    fn limit<K: std::hash::Hash + Eq + Clone>(
        limiter: &Mutex<RateLimiter<K>>,
        key: &K,
        rate: Rate,
    ) -> Result<(), SessionError> {
        let now = tokio::time::Instant::now().into_std();
        limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(key, rate, now)
            .map_err(SessionError::RateLimited)
    }

    /// Starts or refreshes a visitor session.
    async fn start(
        &self,
        peer: Option<IpAddr>,
        origin: Option<&str>,
        request: SessionRequest,
    ) -> Result<SessionAnswer, SessionError> {
        if let Some(ip) = peer {
            Self::limit(&self.per_ip, &ip, self.config.per_ip)?;
        }
        let record = self
            .issuer
            .directory
            .by_widget_key(&request.widget_key)
            .ok_or(SessionError::Unauthenticated)?;
        let tenant = record.tenant.clone();
        Self::limit(&self.per_tenant, &tenant, self.config.per_tenant)?;
        if !origin_allowed(&self.edge, Some(&self.issuer.directory), &tenant, origin) {
            return Err(SessionError::Origin);
        }
        let (visitor, verified) = self.visitor(&record, request)?;
        let expires_at = now_seconds() + self.config.token_seconds;
        let principal = Principal::new(
            tenant.clone(),
            Role::Customer,
            PrincipalId::new(visitor.as_str()).expect("customer ids are principal ids"),
        );
        let token = self
            .issuer
            .issuer
            .issue(&principal, expires_at)
            .map_err(|e| {
                tracing::error!(error = %e, "a visitor token could not be signed");
                SessionError::Unauthenticated
            })?;
        Ok(SessionAnswer {
            token,
            expires_at,
            refresh_secret: self.issuer.secret.refresh_secret(&tenant, &visitor),
            tenant,
            visitor_id: visitor,
            verified,
        })
    }

    /// Who the visitor is: the verified user, the visitor of the refresh secret, or a new one.
    fn visitor(
        &self,
        record: &TenantRecord,
        request: SessionRequest,
    ) -> Result<(CustomerId, bool), SessionError> {
        let tenant = &record.tenant;
        let secret = &self.issuer.secret;
        match (request.identity, request.refresh) {
            (Some(Identity::Signed { user_id, signature }), _) => {
                if user_id.is_empty() || user_id.len() > MAX_USER_ID {
                    return Err(SessionError::Invalid(format!(
                        "identity.user_id must be 1 to {MAX_USER_ID} bytes"
                    )));
                }
                let generation = record.settings.identity_secret_generation;
                if !secret.verify_identity(tenant, generation, &user_id, &signature) {
                    return Err(SessionError::Unauthenticated);
                }
                Ok((verified_customer(&user_id), true))
            }
            (Some(Identity::Jwt { jwt }), _) => {
                let principal = self.verifier.verify(&jwt).map_err(|refused| {
                    tracing::debug!(reason = %refused.reason(), "identity token refused");
                    SessionError::Unauthenticated
                })?;
                if &principal.tenant != tenant || principal.role != Role::Customer {
                    return Err(SessionError::Unauthenticated);
                }
                let customer = CustomerId::new(principal.subject.as_str())
                    .map_err(|_| SessionError::Unauthenticated)?;
                Ok((customer, true))
            }
            (None, Some(refresh)) => {
                let visitor = CustomerId::new(refresh.visitor_id)
                    .map_err(|_| SessionError::Unauthenticated)?;
                if !secret.verify_refresh(tenant, &visitor, &refresh.secret) {
                    return Err(SessionError::Unauthenticated);
                }
                // A verified customer stays verified across refreshes.
                let verified = visitor.as_str().starts_with("u-");
                Ok((visitor, verified))
            }
            (None, None) => Ok((anonymous_visitor(), false)),
        }
    }
}

/// `POST /v1/sessions`. A page of an allowed origin may call it from the browser: the answer
/// carries `Access-Control-Allow-Origin` for that origin.
pub(crate) async fn start(State(sessions): State<Arc<Sessions>>, request: Request) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let answer = session(sessions, request).await;
    let refused_origin = matches!(answer, Err(SessionError::Origin));
    let mut response = match answer {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => e.into_response(),
    };
    if let Some(origin) = origin.filter(|_| !refused_origin) {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// The browser's preflight of `POST /v1/sessions`: it carries no widget key, so it is allowed
/// for any origin; the request itself is checked.
pub(crate) async fn preflight(request: Request) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(origin) = request.headers().get(ORIGIN).cloned() {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        headers.insert(VARY, HeaderValue::from_static("origin"));
    }
    response
}

async fn session(sessions: Arc<Sessions>, request: Request) -> Result<SessionAnswer, SessionError> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| SessionError::Invalid(format!("the body is over {MAX_BODY} bytes")))?;
    let body: SessionRequest = serde_json::from_slice(&body)
        .map_err(|e| SessionError::Invalid(format!("malformed JSON body: {e}")))?;
    sessions.start(peer, origin.as_deref(), body).await
}
