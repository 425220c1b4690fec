//! The query service's metrics (names and labels as `docs/telemetry.md` specifies them):
//! requests of both APIs by operation and outcome, the caches' look-ups, and where history
//! events come from.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use switchboard_events::metrics::{Counter, Exposition, Family, Gauge, Histogram};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

static REQUESTS: Family<Counter> = Family::new(&["api", "operation", "outcome"], Counter::new);
static DURATION: Family<Histogram> = Family::new(&["api", "operation"], Histogram::seconds);
static CACHE_LOOKUPS: Family<Counter> = Family::new(&["cache", "result"], Counter::new);
static CACHE_ENTRIES: Family<Gauge> = Family::new(&["cache"], Gauge::new);
static READ_EVENTS: Family<Counter> = Family::new(&["source"], Counter::new);

/// The metrics in Prometheus' text format.
pub fn render(out: &mut String) {
    let mut page = Exposition::new(out);
    page.family(
        "switchboard_query_requests_total",
        "Requests answered, by API, operation and outcome.",
        &REQUESTS,
    );
    page.family(
        "switchboard_query_request_duration_seconds",
        "From a request's arrival to its answer.",
        &DURATION,
    );
    page.family(
        "switchboard_query_cache_lookups_total",
        "Cache look-ups, by cache and result.",
        &CACHE_LOOKUPS,
    );
    page.family(
        "switchboard_query_cache_entries",
        "Entries a cache holds.",
        &CACHE_ENTRIES,
    );
    page.family(
        "switchboard_query_read_events_total",
        "Events history, replay or export took, by source.",
        &READ_EVENTS,
    );
}

/// One look-up of `cache` (`page`, `summary`, `missing`).
pub(crate) fn lookup(cache: &'static str, hit: bool, entries: u64) {
    let result = if hit { "hit" } else { "miss" };
    CACHE_LOOKUPS.get(&[cache, result]).inc();
    CACHE_ENTRIES
        .get(&[cache])
        .set(i64::try_from(entries).unwrap_or(i64::MAX));
}

/// The entries a cache that is not looked up by readers holds now.
pub(crate) fn entries(cache: &'static str, entries: u64) {
    CACHE_ENTRIES
        .get(&[cache])
        .set(i64::try_from(entries).unwrap_or(i64::MAX));
}

/// `n` events were taken from `source` (`hot`, `archive`, `log`).
pub(crate) fn read_events(source: &'static str, n: usize) {
    READ_EVENTS.get(&[source]).add(n as u64);
}

fn answered(api: &'static str, operation: &'static str, outcome: &'static str, started: Instant) {
    REQUESTS.get(&[api, operation, outcome]).inc();
    DURATION
        .get(&[api, operation])
        .observe_duration(started.elapsed());
}

/// The `operation` of an HTTP route, `None` for what is not measured (`/healthz`).
fn http_operation(route: &str) -> Option<&'static str> {
    Some(match route {
        "/healthz" => return None,
        "/v1/conversations" => "list",
        "/v1/conversations/{id}" => "summary",
        "/v1/conversations/{id}/history" => "history",
        "/v1/conversations/{id}/replay" | "/v1/replay" => "replay",
        "/v1/conversations/{id}/verify" => "verify",
        "/v1/conversations/{id}/export" | "/v1/export" => "export",
        "/v1/reports" => "report",
        "/openapi.json" => "openapi",
        _ => "schema_registry",
    })
}

/// The `outcome` of an HTTP status: `ok` or the `StatusKind` it is the answer of.
fn http_outcome(status: u16) -> &'static str {
    match status {
        200..=399 => "ok",
        400 => "invalid_argument",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "too_large",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "internal",
    }
}

/// Axum middleware (a route layer) that counts and times each HTTP request.
pub(crate) async fn http(request: Request, next: Next) -> Response {
    let operation = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| http_operation(path.as_str()));
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(operation) = operation {
        answered(
            "http",
            operation,
            http_outcome(response.status().as_u16()),
            started,
        );
    }
    response
}

/// The `operation` of a gRPC method (`/switchboard.query.v1.Query/History`).
fn grpc_operation(path: &str) -> &'static str {
    match path.rsplit('/').next().unwrap_or_default() {
        "History" => "history",
        "ListConversations" => "list",
        "Summary" => "summary",
        "Report" => "report",
        "Replay" => "replay",
        "Verify" => "verify",
        _ => "other",
    }
}

/// The `outcome` of a gRPC status code (from the `grpc-status` of a trailers-only answer).
fn grpc_outcome(code: &[u8]) -> &'static str {
    match code {
        b"0" => "ok",
        b"3" => "invalid_argument",
        b"5" => "not_found",
        b"6" => "conflict",
        b"7" => "forbidden",
        b"8" => "rate_limited",
        b"9" => "failed_precondition",
        b"14" => "unavailable",
        b"16" => "unauthenticated",
        _ => "internal",
    }
}

/// The gRPC service with each call counted and timed (to its response headers: a stream's
/// items follow).
#[derive(Clone, Debug)]
pub struct Measured<S>(pub S);

impl<S: NamedService> NamedService for Measured<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Measured<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let operation = grpc_operation(request.uri().path());
        let started = Instant::now();
        let call = self.0.call(request);
        Box::pin(async move {
            let response = call.await?;
            // An error answers trailers-only, its status in the headers; success has none here.
            let outcome = response
                .headers()
                .get("grpc-status")
                .map_or("ok", |code| grpc_outcome(code.as_bytes()));
            answered("grpc", operation, outcome, started);
            Ok(response)
        })
    }
}
