//! The HTTP/JSON API (axum): every route authenticates with `authorization: Bearer <token>`
//! and reads within the token's tenant. Errors are `{"error": {"code", "message"}}` with the
//! status of [`StatusKind`](switchboard_events::status::StatusKind). Replays and exports stream
//! as chunked bodies; a failure half-way aborts the body, so a truncated export never looks
//! complete. `GET /openapi.json` describes it all; the schema registry API is mounted at the
//! root (`registry_api.rs`).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use switchboard_events::id::{AgentId, CustomerId, Label};
use switchboard_events::principal::Principal;
use switchboard_events::{Seq, Timestamp};
use switchboard_store::conversation::ConversationStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::audit::{Purpose, Replay, Scope};
use crate::error::QueryError;
use crate::export::{self, Format};
use crate::lists::{ListParams, parse_cursor};
use crate::service::{HistoryFrom, QueryService};
use crate::{day, openapi, registry_api};

type Shared = State<Arc<QueryService>>;

/// The routes of the query service, the schema registry API included.
pub fn router(service: Arc<QueryService>) -> Router {
    Router::new()
        .route("/v1/conversations", get(list))
        .route("/v1/conversations/{id}", get(summary))
        .route("/v1/conversations/{id}/history", get(history))
        .route("/v1/conversations/{id}/replay", get(replay_conversation))
        .route("/v1/conversations/{id}/verify", get(verify))
        .route("/v1/conversations/{id}/export", get(export_conversation))
        .route("/v1/replay", get(replay_tenant))
        .route("/v1/settings/replay", get(replay_settings))
        .route("/v1/export", get(export_tenant))
        .route("/v1/reports", get(report))
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(openapi::serve))
        .with_state(service)
        .merge(registry_api::routes())
        .route_layer(axum::middleware::from_fn(crate::metrics::http))
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.kind().http()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self, "query failed");
        }
        let retry_after = self.retry_after();
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(wait) = retry_after {
            // Whole seconds, rounded up: a client that waits that long finds a token.
            let seconds = u64::try_from(wait.as_millis().div_ceil(1000).max(1)).unwrap_or(u64::MAX);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A query string that does not parse: our error shape, not axum's plain text.
fn rejected(rejection: QueryRejection) -> QueryError {
    QueryError::invalid(rejection.body_text())
}

fn principal(service: &QueryService, headers: &HeaderMap) -> Result<Principal, QueryError> {
    service.authenticate(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Response, QueryError> {
    let body = serde_json::to_vec(value).map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(json_bytes(Bytes::from(body)))
}

fn parsed<T, E: std::fmt::Display>(
    name: &str,
    value: Option<String>,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<Option<T>, QueryError> {
    value
        .map(|v| parse(v).map_err(|e| QueryError::invalid(format!("{name}: {e}"))))
        .transpose()
}

async fn summary(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    to_json(&*service.summary(&who, &id).await?)
}

#[derive(Debug, Deserialize)]
struct HistoryParams {
    before: Option<u64>,
    after: Option<u64>,
    around: Option<u64>,
    #[serde(default)]
    oldest: bool,
    limit: Option<u32>,
}

async fn history(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let Query(params) = params.map_err(rejected)?;
    let from = match (params.before, params.after, params.around, params.oldest) {
        (None, None, None, false) => HistoryFrom::Newest,
        (None, None, None, true) => HistoryFrom::Oldest,
        (Some(s), None, None, false) => HistoryFrom::Before(Seq(s)),
        (None, Some(s), None, false) => HistoryFrom::After(Seq(s)),
        (None, None, Some(s), false) => HistoryFrom::Around(Seq(s)),
        _ => {
            return Err(QueryError::invalid(
                "give at most one of before, after, around and oldest",
            ));
        }
    };
    let page = service
        .history(&who, &id, from, params.limit.unwrap_or(50))
        .await?;
    Ok(json_bytes(page.json.clone()))
}

#[derive(Debug, Deserialize)]
struct ListQueryParams {
    status: Option<String>,
    agent: Option<String>,
    customer: Option<String>,
    tag: Option<String>,
    /// Microseconds since the Unix epoch.
    updated_since: Option<i64>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(service): Shared,
    headers: HeaderMap,
    q: Result<Query<ListQueryParams>, QueryRejection>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let Query(q) = q.map_err(rejected)?;
    let status = parsed("status", q.status, |s| {
        ConversationStatus::from_name(&s).ok_or("unknown status")
    })?;
    let params = ListParams {
        status,
        agent: parsed("agent", q.agent, AgentId::new)?,
        customer: parsed("customer", q.customer, CustomerId::new)?,
        tag: parsed("tag", q.tag, Label::new)?,
        updated_since: q.updated_since.map(Timestamp),
        limit: q.limit.unwrap_or(50),
        cursor: q.cursor.as_deref().map(parse_cursor).transpose()?,
    };
    to_json(&service.list(&who, params).await?)
}

#[derive(Debug, Deserialize)]
struct ReportParams {
    from: String,
    to: String,
    agent: Option<String>,
}

async fn report(
    State(service): Shared,
    headers: HeaderMap,
    q: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let Query(q) = q.map_err(rejected)?;
    let date = |name: &str, text: &str| {
        day::parse(text)
            .ok_or_else(|| QueryError::invalid(format!("{name}: not a YYYY-MM-DD date")))
    };
    let (from, to) = (date("from", &q.from)?, date("to", &q.to)?);
    let agent = parsed("agent", q.agent, AgentId::new)?;
    let days = service.report(&who, agent, from, to).await?;
    let days: Vec<_> = days
        .iter()
        .map(|d| {
            let c = &d.counters;
            let mean = |sum: u64, n: u64| (n > 0).then(|| sum as f64 / n as f64 / 1_000.0);
            json!({
                "day": day::format(d.day),
                "counters": c,
                "mean_first_response_ms": mean(c.first_response_micros, c.first_responses),
                "mean_resolution_ms": mean(c.resolution_micros, c.resolutions),
                "mean_rating": (c.ratings > 0).then(|| c.rating_sum as f64 / c.ratings as f64),
                "csat": (c.ratings > 0).then(|| c.satisfied as f64 / c.ratings as f64),
            })
        })
        .collect();
    to_json(&json!({ "days": days }))
}

async fn verify(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    to_json(&service.verify(&who, &id).await?)
}

#[derive(Debug, Deserialize)]
struct RangeParams {
    /// Microseconds since the Unix epoch, inclusive.
    from: i64,
    /// Microseconds since the Unix epoch, exclusive.
    to: i64,
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FormatParams {
    format: Option<String>,
}

async fn replay_conversation(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let replay = service
        .replay(&who, Scope::Conversation(id), Purpose::Audit)
        .await?;
    stream(replay, Format::Ndjson)
}

async fn replay_tenant(
    State(service): Shared,
    headers: HeaderMap,
    q: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let Query(q) = q.map_err(rejected)?;
    let scope = Scope::Tenant {
        from: Timestamp(q.from),
        to: Timestamp(q.to),
    };
    stream(
        service.replay(&who, scope, Purpose::Audit).await?,
        Format::Ndjson,
    )
}

async fn replay_settings(
    State(service): Shared,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    stream(
        service
            .replay(&who, Scope::Settings, Purpose::Audit)
            .await?,
        Format::Ndjson,
    )
}

async fn export_conversation(
    State(service): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<FormatParams>, QueryRejection>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let Query(q) = q.map_err(rejected)?;
    let format = Format::parse(q.format.as_deref().unwrap_or("ndjson"))?;
    let replay = service
        .replay(&who, Scope::Conversation(id), Purpose::Export)
        .await?;
    stream(replay, format)
}

async fn export_tenant(
    State(service): Shared,
    headers: HeaderMap,
    q: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Response, QueryError> {
    let who = principal(&service, &headers)?;
    let Query(q) = q.map_err(rejected)?;
    let format = Format::parse(q.format.as_deref().unwrap_or("ndjson"))?;
    let scope = Scope::Tenant {
        from: Timestamp(q.from),
        to: Timestamp(q.to),
    };
    stream(service.replay(&who, scope, Purpose::Export).await?, format)
}

/// A replay as a chunked body in `format`.
fn stream(replay: Replay, format: Format) -> Result<Response, QueryError> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let sent = export::encode(replay, format, |piece| {
            let tx = tx.clone();
            async move { tx.send(Ok(piece.bytes)).await.is_ok() }
        })
        .await;
        if let Err(e) = sent {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(ReceiverStream::new(rx)),
    )
        .into_response())
}
