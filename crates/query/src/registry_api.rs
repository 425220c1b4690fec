//! A Confluent-compatible schema registry API over the schemas built into this binary, so that
//! standard deserializers (Java, Python `confluent-kafka`, ...) decode our topics.
//!
//! The read endpoints and the compatibility check of Confluent's REST API:
//! `GET /subjects`, `GET /subjects/{subject}/versions`, `GET /subjects/{subject}/versions/{v}`
//! (`v` may be `latest`), `GET /subjects/{subject}/versions/{v}/schema`, `GET /schemas/ids/{id}`,
//! `GET /schemas/ids/{id}/versions`, `GET /config`, `GET /config/{subject}`, and
//! `POST /compatibility/subjects/{subject}/versions/{v}`. Errors use Confluent's body shape and
//! codes. Registration is refused: schemas change only with a release of switchboard.
//!
//! Schemas are not tenant data, so these endpoints need no token.

use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_events::registry::{COMPATIBILITY, SchemaVersion, check_pair, registry};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The routes, to be nested at the root of the query service.
pub fn routes() -> Router {
    Router::new()
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(version_schema),
        )
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(versions_of_id))
        .route("/config", get(config))
        .route("/config/{subject}", get(subject_config))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility),
        )
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    reply(StatusCode::OK, body)
}

/// A refusal in Confluent's shape: an HTTP status, an `error_code` and a message.
struct ApiError(StatusCode, u32, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(self.0, json!({ "error_code": self.1, "message": self.2 }))
    }
}

fn error(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
    ApiError(status, code, message.into())
}

fn subject_not_found(subject: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        40401,
        format!("Subject '{subject}' not found."),
    )
}

fn find_version<'r>(subject: &str, version: &str) -> Result<&'r SchemaVersion, ApiError> {
    let Some(versions) = registry().subject_versions(subject) else {
        return Err(subject_not_found(subject));
    };
    let versions: Vec<_> = versions.collect();
    let found = match version {
        "latest" | "-1" => versions.last().copied(),
        v => match v.parse::<u32>() {
            Ok(n) if n >= 1 => versions.iter().find(|s| s.version == n).copied(),
            _ => {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    42202,
                    format!(
                        "The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
                    ),
                ));
            }
        },
    };
    found.ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {version} not found."),
        )
    })
}

fn describe(v: &SchemaVersion) -> Value {
    json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema_json })
}

async fn subjects() -> Response {
    ok(json!(registry().subjects().collect::<Vec<_>>()))
}

async fn versions(Path(subject): Path<String>) -> Response {
    match registry().subject_versions(&subject) {
        Some(versions) => ok(json!(versions.map(|v| v.version).collect::<Vec<_>>())),
        None => subject_not_found(&subject).into_response(),
    }
}

async fn register(Path(_subject): Path<String>) -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        40501,
        "This registry is read-only: switchboard's schemas change only with a release.",
    )
}

async fn version(Path((subject, version)): Path<(String, String)>) -> Response {
    match find_version(&subject, &version) {
        Ok(v) => ok(describe(v)),
        Err(e) => e.into_response(),
    }
}

async fn version_schema(Path((subject, version)): Path<(String, String)>) -> Response {
    match find_version(&subject, &version) {
        Ok(v) => reply(
            StatusCode::OK,
            serde_json::from_str(&v.schema_json).unwrap_or(Value::Null),
        ),
        Err(e) => e.into_response(),
    }
}

fn by_id(id: &str) -> Result<&'static SchemaVersion, ApiError> {
    id.parse::<u32>()
        .ok()
        .and_then(|id| registry().by_id(id))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                40403,
                format!("Schema {id} not found"),
            )
        })
}

async fn schema_by_id(Path(id): Path<String>) -> Response {
    match by_id(&id) {
        Ok(v) => ok(json!({ "schema": v.schema_json })),
        Err(e) => e.into_response(),
    }
}

async fn versions_of_id(Path(id): Path<String>) -> Response {
    match by_id(&id) {
        Ok(v) => ok(json!([{ "subject": v.subject, "version": v.version }])),
        Err(e) => e.into_response(),
    }
}

async fn config() -> Response {
    ok(json!({ "compatibilityLevel": COMPATIBILITY }))
}

async fn subject_config(Path(subject): Path<String>) -> Response {
    match registry().subject_versions(&subject) {
        Some(_) => ok(json!({ "compatibilityLevel": COMPATIBILITY })),
        None => subject_not_found(&subject).into_response(),
    }
}

#[derive(Deserialize)]
struct CandidateBody {
    schema: String,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct Verbose {
    #[serde(default)]
    verbose: bool,
}

async fn compatibility(
    Path((subject, version)): Path<(String, String)>,
    Query(verbose): Query<Verbose>,
    body: Result<Json<CandidateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let invalid = |message: String| error(StatusCode::UNPROCESSABLE_ENTITY, 42201, message);
    let existing = find_version(&subject, &version)?;
    let Ok(Json(body)) = body else {
        return Err(invalid(
            "The request body must be {\"schema\": \"<avro schema json>\"}.".to_owned(),
        ));
    };
    if body.schema_type.as_deref().is_some_and(|t| t != "AVRO") {
        return Err(invalid("Only AVRO schemas are registered here.".to_owned()));
    }
    let candidate = apache_avro::Schema::parse_str(&body.schema)
        .map_err(|e| invalid(format!("Invalid schema: {e}")))?;
    let verdict = check_pair(&existing.schema, &candidate);
    let mut answer = json!({ "is_compatible": verdict.is_ok() });
    if verbose.verbose {
        answer["messages"] = json!(verdict.err().into_iter().collect::<Vec<_>>());
    }
    Ok(ok(answer))
}

#[cfg(test)]
mod tests;
