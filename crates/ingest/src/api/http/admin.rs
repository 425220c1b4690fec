//! The admin API: tenants and their settings, beside the command API on its HTTP listener.
//!
//! | route | who | answer |
//! | --- | --- | --- |
//! | `GET /v1/tenants` | operator; a tenant admin sees its own | 200 `{"tenants": [record…]}` |
//! | `POST /v1/tenants/{id}` | operator | 201 + the tenant's record |
//! | `GET /v1/tenants/{id}` | operator, the tenant's admin or auditor | 200 + record |
//! | `PATCH /v1/tenants/{id}/settings` | operator, the tenant's admin | 200 + record |
//! | `GET /v1/tenants/{id}/identity-secret` | operator, the tenant's admin | 200 `{"secret", "generation"}` |
//! | `GET /openapi.json` | anyone | the OpenAPI document of these routes |
//!
//! The operator is a service principal: the deployment's all-tenants service token, or a
//! service token (or service JWT) of the tenant. Another tenant's id reads like a missing one.
//! A write answers once its event is durable and the directory shows it, so a read that
//! follows sees the change.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_events::id::{CorrelationId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::status::StatusKind;
use switchboard_events::tenant::tenant_stream;
use switchboard_events::visitor::SessionSecret;

use super::{path_id, read_json, token, traceparent};
use crate::api::auth::Authenticator;
use crate::api::convert::AgentRequest;
use crate::api::error::ApiError;
use crate::api::server::Api;
use crate::api::{Ack, CommandHandler};
use crate::command::AgentCommand;
use crate::tenants::{Directory, TenantRecord};

/// How long a write waits for the directory to show it before answering anyway.
const SHOW_WITHIN: Duration = Duration::from_secs(5);

/// What the admin routes need besides the command API.
#[derive(Clone, Debug)]
pub struct Admin {
    pub directory: Directory,
    /// Derives each tenant's identity-verification secret.
    pub sessions: SessionSecret,
}

struct AdminState<H, A> {
    api: Api<H, A>,
    admin: Admin,
}

impl<H, A> Clone for AdminState<H, A> {
    fn clone(&self) -> Self {
        Self {
            api: self.api.clone(),
            admin: self.admin.clone(),
        }
    }
}

/// The admin routes, to merge into the command API's router.
pub(super) fn routes<H: CommandHandler, A: Authenticator>(api: Api<H, A>, admin: Admin) -> Router {
    Router::new()
        .route("/v1/tenants", get(list::<H, A>))
        .route("/v1/tenants/{id}", post(create::<H, A>).get(show::<H, A>))
        .route("/v1/tenants/{id}/settings", patch(set::<H, A>))
        .route(
            "/v1/tenants/{id}/identity-secret",
            get(identity_secret::<H, A>),
        )
        .route("/openapi.json", get(|| async { axum::Json(document()) }))
        .with_state(AdminState { api, admin })
}

/// A tenant's record as the admin API answers it.
#[derive(Serialize, Debug)]
struct RecordBody<'a> {
    #[serde(flatten)]
    record: &'a TenantRecord,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// The settings, over the defaults; `widget_key` is made when not given.
    #[serde(default)]
    settings: serde_json::Map<String, Value>,
}

fn tenant_id(path: Result<Path<String>, PathRejection>) -> Result<TenantId, ApiError> {
    TenantId::new(path_id(path)?).map_err(|e| ApiError::invalid(format!("tenant id: {e}")))
}

fn no_tenant() -> ApiError {
    ApiError::new(StatusKind::NotFound, "not_found", "tenant not found")
}

/// Who is asking about `tenant`: the caller, when it belongs to the tenant; for a service that
/// may act for every tenant, the tenant's service principal. Anyone else learns nothing.
async fn principal_for<H: CommandHandler, A: Authenticator>(
    api: &Api<H, A>,
    token: Option<&str>,
    tenant: &TenantId,
) -> Result<Principal, ApiError> {
    let caller = api.authenticate(token, None).await?;
    if &caller.tenant == tenant {
        return Ok(caller);
    }
    if caller.role == Role::Service {
        let operator = Principal::new(tenant.clone(), Role::Service, caller.subject.clone());
        if let Ok(principal) = api.authenticate(token, Some(operator)).await {
            return Ok(principal);
        }
    }
    Err(no_tenant())
}

fn may_read(principal: &Principal) -> Result<(), ApiError> {
    match principal.role {
        Role::Service | Role::Supervisor | Role::Auditor => Ok(()),
        Role::Agent | Role::Customer => Err(no_tenant()),
    }
}

async fn configure<H: CommandHandler, A: Authenticator>(
    state: &AdminState<H, A>,
    principal: Principal,
    traceparent: Option<&[u8]>,
    create: bool,
    patch: Value,
) -> Result<TenantRecord, ApiError> {
    let tenant = principal.tenant.clone();
    let request = AgentRequest {
        agent: tenant_stream(),
        on_behalf_of: None,
        correlation: CorrelationId(uuid::Uuid::now_v7()),
        command: AgentCommand::ConfigureTenant { create, patch },
    };
    let ack: Ack = state.api.agent_as(principal, traceparent, request).await?;
    let directory = &state.admin.directory;
    if !directory.wait_for(&tenant, ack.seq, SHOW_WITHIN).await {
        return Err(ApiError::new(
            StatusKind::Unavailable,
            "unavailable",
            format!(
                "the change is durable at seq {} but this instance does not show it yet; read again",
                ack.seq
            ),
        ));
    }
    directory.get(&tenant).ok_or_else(no_tenant)
}

async fn create<H: CommandHandler, A: Authenticator>(
    State(state): State<AdminState<H, A>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<Value>), ApiError> {
    let token = token(&headers)?;
    let tenant = tenant_id(path)?;
    let body: CreateBody = read_json(&headers, body, state.api.max_body_bytes()).await?;
    let mut settings = body.settings;
    settings
        .entry("widget_key")
        .or_insert_with(|| Value::String(new_widget_key()));
    let principal = principal_for(&state.api, token, &tenant).await?;
    let record = configure(
        &state,
        principal,
        traceparent(&headers),
        true,
        Value::Object(settings),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(record_json(&record))))
}

async fn set<H: CommandHandler, A: Authenticator>(
    State(state): State<AdminState<H, A>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Value>, ApiError> {
    let token = token(&headers)?;
    let tenant = tenant_id(path)?;
    let patch: Value = read_json(&headers, body, state.api.max_body_bytes()).await?;
    let principal = principal_for(&state.api, token, &tenant).await?;
    let record = configure(&state, principal, traceparent(&headers), false, patch).await?;
    Ok(axum::Json(record_json(&record)))
}

async fn show<H: CommandHandler, A: Authenticator>(
    State(state): State<AdminState<H, A>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let token = token(&headers)?;
    let tenant = tenant_id(path)?;
    may_read(&principal_for(&state.api, token, &tenant).await?)?;
    let record = state.admin.directory.get(&tenant).ok_or_else(no_tenant)?;
    Ok(axum::Json(record_json(&record)))
}

async fn list<H: CommandHandler, A: Authenticator>(
    State(state): State<AdminState<H, A>>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let token = token(&headers)?;
    let caller = state.api.authenticate(token, None).await?;
    let mut tenants = Vec::new();
    for record in state.admin.directory.list() {
        let visible = match principal_for(&state.api, token, &record.tenant).await {
            Ok(principal) => may_read(&principal).is_ok(),
            Err(_) => false,
        };
        if visible {
            tenants.push(record_json(&record));
        }
    }
    tracing::debug!(caller = %caller.subject, shown = tenants.len(), "tenants listed");
    Ok(axum::Json(json!({ "tenants": tenants })))
}

async fn identity_secret<H: CommandHandler, A: Authenticator>(
    State(state): State<AdminState<H, A>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<axum::Json<Value>, ApiError> {
    let token = token(&headers)?;
    let tenant = tenant_id(path)?;
    let principal = principal_for(&state.api, token, &tenant).await?;
    if !matches!(principal.role, Role::Service | Role::Supervisor) {
        return Err(no_tenant());
    }
    let record = state.admin.directory.get(&tenant).ok_or_else(no_tenant)?;
    let generation = record.settings.identity_secret_generation;
    Ok(axum::Json(json!({
        "tenant": tenant,
        "generation": generation,
        "secret": state.admin.sessions.identity_secret(&tenant, generation),
    })))
}

fn record_json(record: &TenantRecord) -> Value {
    serde_json::to_value(RecordBody { record }).unwrap_or(Value::Null)
}

/// A new public widget key: `wk_` and 32 hex digits of a fresh UUIDv7's random and time bits.
fn new_widget_key() -> String {
    format!("wk_{}", uuid::Uuid::now_v7().simple())
}

/// The paths [`document`] describes, in the order of the router.
pub const PATHS: &[&str] = &[
    "/v1/tenants",
    "/v1/tenants/{id}",
    "/v1/tenants/{id}/settings",
    "/v1/tenants/{id}/identity-secret",
];

/// The OpenAPI 3.1 description of the admin routes, written by hand.
pub fn document() -> Value {
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"},
        "description": "The tenant id."});
    let errors = json!({
        "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"},
        "403": {"$ref": "#/components/responses/Error"},
        "404": {"$ref": "#/components/responses/Error"},
        "409": {"$ref": "#/components/responses/Error"},
    });
    let record = json!({"$ref": "#/components/schemas/TenantRecord"});
    let with = |code: &str, schema: &Value| {
        let mut responses = errors.clone();
        responses[code] = json!({"description": "OK",
            "content": {"application/json": {"schema": schema}}});
        responses
    };
    let body = |schema: Value| {
        json!({"required": true,
        "content": {"application/json": {"schema": schema}}})
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "switchboard admin API", "version": "1",
            "description": "Tenants and their settings. Every change is an event of record on the tenant's settings chain (topic switchboard.agents)."},
        "paths": {
            "/v1/tenants": {"get": {"summary": "The tenants the caller may administer.",
                "security": [{"bearer": []}],
                "responses": with("200", &json!({"type": "object", "properties": {
                    "tenants": {"type": "array", "items": record}}}))}},
            "/v1/tenants/{id}": {
                "post": {"summary": "Creates a tenant (platform operator).", "security": [{"bearer": []}],
                    "parameters": [id],
                    "requestBody": body(json!({"type": "object", "properties": {
                        "settings": {"$ref": "#/components/schemas/TenantSettings"}}})),
                    "responses": with("201", &record)},
                "get": {"summary": "A tenant's record.", "security": [{"bearer": []}],
                    "parameters": [id], "responses": with("200", &record)}},
            "/v1/tenants/{id}/settings": {"patch": {
                "summary": "Changes settings: a JSON merge patch (RFC 7396) of the settings document.",
                "security": [{"bearer": []}], "parameters": [id],
                "requestBody": body(json!({"$ref": "#/components/schemas/TenantSettings"})),
                "responses": with("200", &record)}},
            "/v1/tenants/{id}/identity-secret": {"get": {
                "summary": "The secret the business's backend signs user ids with (HMAC-SHA256).",
                "security": [{"bearer": []}], "parameters": [id],
                "responses": with("200", &json!({"type": "object", "properties": {
                    "tenant": {"type": "string"}, "generation": {"type": "integer"},
                    "secret": {"type": "string"}}}))}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "A refusal",
                "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}}}},
            "schemas": {
                "TenantRecord": {"type": "object", "properties": {
                    "tenant": {"type": "string"},
                    "settings": {"$ref": "#/components/schemas/TenantSettings"},
                    "seq": {"type": "integer", "description": "The seq of the latest settings event."},
                    "created_at": {"type": "integer", "description": "Microseconds since the Unix epoch."},
                    "updated_at": {"type": "integer"},
                    "updated_by": {"type": "object", "properties": {
                        "kind": {"type": "string"}, "id": {"type": "string"}}}}},
                "TenantSettings": {"type": "object", "description": "docs/protocol.md, \"Tenant settings\".",
                    "properties": {
                        "name": {"type": "string"},
                        "widget_key": {"type": "string"},
                        "allowed_origins": {"type": "array", "items": {"type": "string"}},
                        "routing": {"type": "object", "properties": {
                            "distribution": {"enum": ["round_robin", "least_busy"]},
                            "no_answer_timeout_seconds": {"type": "integer"}}},
                        "teams": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "string"}, "name": {"type": "string"}}}},
                        "business_hours": {"type": ["object", "null"], "properties": {
                            "time_zone": {"type": "string"},
                            "utc_offset_minutes": {"type": "integer"},
                            "openings": {"type": "array", "items": {"type": "object", "properties": {
                                "day": {"enum": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]},
                                "open": {"type": "string", "description": "HH:MM"},
                                "close": {"type": "string", "description": "HH:MM, up to 24:00"}}}},
                            "holidays": {"type": "array", "items": {"type": "string", "description": "YYYY-MM-DD"}}}},
                        "offline_message": {"type": "string"},
                        "queue_limit": {"type": "integer"},
                        "customer_limits": {"type": "object", "properties": {
                            "max_open": {"type": "integer"}, "max_waiting": {"type": "integer"}}},
                        "pre_chat_fields": {"type": "array", "items": {"type": "object", "properties": {
                            "name": {"type": "string"}, "label": {"type": "string"},
                            "kind": {"enum": ["text", "email"]}, "required": {"type": "boolean"}}}},
                        "csat": {"type": "boolean"},
                        "identity_secret_generation": {"type": "integer"}}},
            },
        },
    })
}
