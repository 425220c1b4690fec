use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::routes;

const MESSAGE_POSTED: &str = "switchboard.conversations-switchboard.conversation.MessagePosted";

async fn call(method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = routes().oneshot(request).await.unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn subjects_and_versions_are_listed() {
    let (status, subjects) = call("GET", "/subjects", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        subjects
            .as_array()
            .unwrap()
            .contains(&json!(MESSAGE_POSTED))
    );
    let (status, versions) =
        call("GET", &format!("/subjects/{MESSAGE_POSTED}/versions"), None).await;
    assert_eq!((status, versions), (StatusCode::OK, json!([1])));
}

#[tokio::test]
async fn a_version_and_an_id_give_the_same_self_contained_schema() {
    let (_, latest) = call(
        "GET",
        &format!("/subjects/{MESSAGE_POSTED}/versions/latest"),
        None,
    )
    .await;
    assert_eq!(latest["subject"], MESSAGE_POSTED);
    assert_eq!(latest["version"], 1);
    let id = latest["id"].as_u64().unwrap();
    let (status, by_id) = call("GET", &format!("/schemas/ids/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schema"], latest["schema"]);
    apache_avro::Schema::parse_str(by_id["schema"].as_str().unwrap()).unwrap();
    let (_, versions) = call("GET", &format!("/schemas/ids/{id}/versions"), None).await;
    assert_eq!(
        versions,
        json!([{ "subject": MESSAGE_POSTED, "version": 1 }])
    );
    let (_, raw) = call(
        "GET",
        &format!("/subjects/{MESSAGE_POSTED}/versions/1/schema"),
        None,
    )
    .await;
    assert_eq!(raw["name"], "switchboard.conversation.MessagePosted");
}

#[tokio::test]
async fn unknown_things_get_confluents_error_codes() {
    let (status, body) = call("GET", "/subjects/nope/versions", None).await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40401))
    );
    let (status, body) = call(
        "GET",
        &format!("/subjects/{MESSAGE_POSTED}/versions/7"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40402))
    );
    let (status, body) = call(
        "GET",
        &format!("/subjects/{MESSAGE_POSTED}/versions/x"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(42202))
    );
    let (status, body) = call("GET", "/schemas/ids/99999", None).await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40403))
    );
    let (status, _) = call(
        "POST",
        &format!("/subjects/{MESSAGE_POSTED}/versions"),
        Some(json!({"schema": "{}"})),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn compatibility_is_checked_both_ways() {
    let (_, latest) = call(
        "GET",
        &format!("/subjects/{MESSAGE_POSTED}/versions/latest"),
        None,
    )
    .await;
    let mut schema: Value = serde_json::from_str(latest["schema"].as_str().unwrap()).unwrap();
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "language", "type": ["null", "string"], "default": null}));
    let uri = format!("/compatibility/subjects/{MESSAGE_POSTED}/versions/latest");
    let (status, body) = call("POST", &uri, Some(json!({"schema": schema.to_string()}))).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"is_compatible": true}))
    );

    schema["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "required_new", "type": "string"}));
    let (status, body) = call(
        "POST",
        &format!("{uri}?verbose=true"),
        Some(json!({"schema": schema.to_string()})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_compatible"], false);
    assert!(!body["messages"].as_array().unwrap().is_empty());

    let (status, body) = call("POST", &uri, Some(json!({"schema": "not json"}))).await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some(42201))
    );
}

#[tokio::test]
async fn the_compatibility_level_is_full_transitive() {
    let (_, body) = call("GET", "/config", None).await;
    assert_eq!(body, json!({"compatibilityLevel": "FULL_TRANSITIVE"}));
}
