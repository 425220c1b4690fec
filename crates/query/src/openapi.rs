//! The OpenAPI 3.1 description of the HTTP API, written by hand and served at
//! `GET /openapi.json`. A test checks that every route of the router is described.

use axum::Json;
use serde_json::{Value, json};

/// The paths the document describes, in the order of the router.
pub const PATHS: &[&str] = &[
    "/v1/conversations",
    "/v1/conversations/{id}",
    "/v1/conversations/{id}/history",
    "/v1/conversations/{id}/replay",
    "/v1/conversations/{id}/verify",
    "/v1/conversations/{id}/export",
    "/v1/replay",
    "/v1/export",
    "/v1/reports",
    "/v1/settings/replay",
];

fn param(name: &str, place: &str, kind: &str, doc: &str) -> Value {
    json!({
        "name": name, "in": place, "required": place == "path",
        "schema": { "type": kind }, "description": doc,
    })
}

fn id() -> Value {
    param("id", "path", "string", "The conversation id.")
}

fn op(summary: &str, params: Vec<Value>, content: &str, schema: Value) -> Value {
    json!({ "get": {
        "summary": summary,
        "security": [{ "bearer": [] }],
        "parameters": params,
        "responses": {
            "200": { "description": "OK", "content": { content: { "schema": schema } } },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" },
        }
    }})
}

fn range(format: bool) -> Vec<Value> {
    let mut params = vec![
        param(
            "from",
            "query",
            "integer",
            "Start, microseconds since the Unix epoch, inclusive.",
        ),
        param(
            "to",
            "query",
            "integer",
            "End, microseconds since the Unix epoch, exclusive.",
        ),
    ];
    if format {
        params.push(param(
            "format",
            "query",
            "string",
            "`ndjson` (default) or `avro`.",
        ));
    }
    params
}

/// The document.
pub fn document() -> Value {
    let object = json!({ "type": "object" });
    let ndjson = "application/x-ndjson";
    let stream_doc = "One JSON object per line: `seq`, `event` (as recorded, sealed fields as ciphertext) and `frame` (the original bytes, hex).";
    let paths = json!({
        PATHS[0]: op("A page of a conversation list, newest activity first.", vec![
            param("status", "query", "string", "open, queued, assigned, snoozed or resolved."),
            param("agent", "query", "string", "Conversations held by this agent."),
            param("customer", "query", "string", "Conversations of this customer (customers: always themselves)."),
            param("tag", "query", "string", "Conversations with this tag."),
            param("updated_since", "query", "integer", "Last activity at or after, microseconds since the Unix epoch."),
            param("limit", "query", "integer", "1 to 500, default 50."),
            param("cursor", "query", "string", "The `next` of the previous page."),
        ], "application/json", object.clone()),
        PATHS[1]: op("A conversation's summary.", vec![id()], "application/json", object.clone()),
        PATHS[2]: op("A page of a conversation's history, ascending seq; sealed fields opened (`{\"text\"}` or `{\"erased\": true}`); customers never see private notes.", vec![
            id(),
            param("before", "query", "integer", "Events before this seq."),
            param("after", "query", "integer", "Events after this seq."),
            param("around", "query", "integer", "A page centred on this seq."),
            param("oldest", "query", "boolean", "From seq 1 (default: the newest events)."),
            param("limit", "query", "integer", "1 to 500, default 50."),
        ], "application/json", object.clone()),
        PATHS[3]: op("Every event of a conversation, in seq order (auditors).", vec![id()], ndjson, json!({ "description": stream_doc })),
        PATHS[4]: op("The conversation's hash chain: intact, or the first bad seq and the problem (auditors).", vec![id()], "application/json", object.clone()),
        PATHS[5]: op("A conversation as NDJSON or an Avro object container file (auditors, supervisors).", vec![id(), param("format", "query", "string", "`ndjson` (default) or `avro`.")], ndjson, json!({ "description": stream_doc })),
        PATHS[6]: op("Every event of the tenant in a time range, conversation by conversation (auditors).", range(false), ndjson, json!({ "description": stream_doc })),
        PATHS[7]: op("The tenant's events in a time range as NDJSON or Avro (auditors, supervisors).", range(true), ndjson, json!({ "description": stream_doc })),
        PATHS[8]: op("Daily figures of the tenant or an agent: volumes, first response and resolution times, CSAT.", vec![
            param("from", "query", "string", "First day, YYYY-MM-DD (UTC)."),
            param("to", "query", "string", "Last day, YYYY-MM-DD, inclusive; at most 366 days."),
            param("agent", "query", "string", "One agent's figures (agents: only their own)."),
        ], "application/json", object.clone()),
        PATHS[9]: op("The tenant's settings chain: its creation and every change of its settings, with who made it and when, in seq order (auditors).", vec![], ndjson, json!({ "description": stream_doc })),
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "switchboard query API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "History, conversation lists, reports, audit replay, verification and export, scoped to the tenant of the bearer token. The Confluent-compatible schema registry API is served at the root (/subjects, /schemas/ids/{id}, ...).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "responses": { "Error": {
                "description": "A refusal: `{\"error\": {\"code\", \"message\"}}`.",
                "content": { "application/json": { "schema": { "type": "object" } } },
            }},
        },
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
