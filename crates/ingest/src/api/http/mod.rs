//! The HTTP/JSON face of the command API, for integrations.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/conversations` | the open command's fields | 201 (200 for a retried open) + ack |
//! | `POST /v1/conversations/{id}/commands` | a command tagged by `"type"` | 200 + ack |
//! | `POST /v1/agents/{id}/commands` | an agent command tagged by `"type"` | 200 + ack |
//! | `GET /healthz` | | 200 `ok` |
//! | `/v1/tenants…`, `GET /openapi.json` | the admin API ([`admin`]), with [`router_with_admin`] | |
//!
//! Callers send `Authorization: Bearer <token>`. Every error, including an unknown route, a
//! malformed or oversized body, answers `{"code": "...", "message": "..."}` with the status of
//! its kind.

pub mod admin;
mod json;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;
use switchboard_events::status::StatusKind;

pub use self::json::{AckBody, ErrorBody};
use super::CommandHandler;
use super::auth::{Authenticator, bearer};
use super::convert::{AgentRequest, ConversationRequest};
use super::error::ApiError;
use super::proto;
use super::server::Api;

/// The routes of the HTTP API.
pub fn router<H: CommandHandler, A: Authenticator>(api: Api<H, A>) -> Router {
    finish(commands(api))
}

/// The routes of the HTTP API and the admin API, whose tenant commands `admin_api` executes
/// (a handler that forwards to the instance owning the tenant's partition, when there are
/// several).
pub fn router_with_admin<H: CommandHandler, H2: CommandHandler, A: Authenticator>(
    api: Api<H, A>,
    admin_api: Api<H2, A>,
    admin: admin::Admin,
) -> Router {
    finish(commands(api).merge(admin::routes(admin_api, admin)))
}

fn commands<H: CommandHandler, A: Authenticator>(api: Api<H, A>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/conversations", post(open::<H, A>))
        .route(
            "/v1/conversations/{id}/commands",
            post(conversation::<H, A>),
        )
        .route("/v1/agents/{id}/commands", post(agent::<H, A>))
        .with_state(api)
}

fn finish(router: Router) -> Router {
    router
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.kind.http()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if self.kind == StatusKind::Unauthenticated {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client that waits that long finds a token.
            let seconds = wait.as_millis().div_ceil(1000).max(1);
            response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX)),
            );
        }
        response
    }
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusKind::NotFound,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    let error = ErrorBody {
        code: "method_not_allowed".into(),
        message: format!("{} does not take {method}", uri.path()),
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(error)).into_response()
}

fn token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    Ok(bearer(
        headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
    )?)
}

fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|rejection| ApiError::invalid(format!("bad path: {}", rejection.body_text())))
}

/// Reads a JSON body of at most `limit` bytes. A body announced larger is refused before it
/// is read.
async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = announced.filter(|&len| len > limit as u64) {
        return Err(ApiError::too_large(format!(
            "the request body is {len} bytes, the limit is {limit}"
        )));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|err| {
        let source = std::error::Error::source(&err);
        if source.is_some_and(|s| s.is::<LengthLimitError>()) {
            ApiError::too_large(format!(
                "the request body is larger than the limit of {limit} bytes"
            ))
        } else {
            ApiError::invalid(format!("could not read the request body: {err}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::invalid(format!("malformed JSON body: {err}")))
}

/// The caller's trace context, when it sent one.
fn traceparent(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(switchboard_log::trace::TRACEPARENT)
        .map(|v| v.as_bytes())
}

async fn open<H: CommandHandler, A: Authenticator>(
    State(api): State<Api<H, A>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<AckBody>), ApiError> {
    let token = token(&headers)?;
    let open: json::Open = read_json(&headers, body, api.max_body_bytes()).await?;
    let request = ConversationRequest::try_from(proto::ConversationCommand::from(open))?;
    let ack = api
        .conversation(token, traceparent(&headers), request)
        .await?;
    let status = if ack.unchanged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(AckBody::conversation(ack))))
}

async fn conversation<H: CommandHandler, A: Authenticator>(
    State(api): State<Api<H, A>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<AckBody>, ApiError> {
    let token = token(&headers)?;
    let id = path_id(path)?;
    let command: json::ConversationCommand =
        read_json(&headers, body, api.max_body_bytes()).await?;
    let request = ConversationRequest::try_from(command.into_proto(id)?)?;
    let ack = api
        .conversation(token, traceparent(&headers), request)
        .await?;
    Ok(axum::Json(AckBody::conversation(ack)))
}

async fn agent<H: CommandHandler, A: Authenticator>(
    State(api): State<Api<H, A>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<AckBody>, ApiError> {
    let token = token(&headers)?;
    let id = path_id(path)?;
    let command: json::AgentCommand = read_json(&headers, body, api.max_body_bytes()).await?;
    let request = AgentRequest::try_from(command.into_proto(id))?;
    let ack = api.agent(token, traceparent(&headers), request).await?;
    Ok(axum::Json(AckBody::agent(ack)))
}

/// Reads `body` as each route reads its body, through the same conversion to a command
/// request, and reports which routes accepted it: the fuzzer's entry (`tests/fuzz`), so that
/// it runs the handlers' own parsing rather than a copy.
#[doc(hidden)]
pub fn parse_bodies(path_id: &str, body: &[u8]) -> [bool; 3] {
    let open = serde_json::from_slice::<json::Open>(body)
        .ok()
        .and_then(|open| ConversationRequest::try_from(proto::ConversationCommand::from(open)).ok())
        .is_some();
    let conversation = serde_json::from_slice::<json::ConversationCommand>(body)
        .ok()
        .and_then(|command| command.into_proto(path_id.to_owned()).ok())
        .and_then(|command| ConversationRequest::try_from(command).ok())
        .is_some();
    let agent = serde_json::from_slice::<json::AgentCommand>(body)
        .ok()
        .and_then(|command| AgentRequest::try_from(command.into_proto(path_id.to_owned())).ok())
        .is_some();
    [open, conversation, agent]
}

#[cfg(test)]
mod tests {
    use super::parse_bodies;

    #[test]
    fn the_fuzzers_entry_reads_bodies_as_the_routes_do() {
        let open = br#"{"customer_id":"cust-1","channel":"web"}"#;
        assert_eq!(parse_bodies("c-1", open), [true, false, false]);
        let send = br#"{"type":"post_message","client_msg_id":"m1","body":"hi"}"#;
        assert_eq!(parse_bodies("c-1", send), [false, true, false]);
        assert_eq!(parse_bodies("c-1", b"\xff{"), [false, false, false]);
    }
}
