//! Tokens at the query API: an issuer speaks only for its tenants, every refused token reads
//! the same, and a key rotation keeps old and new tokens valid.

use axum::http::StatusCode;
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{IssuerKeys, Tenants, TokenIssuer, now_seconds};

use super::{World, acme_idp_token};

#[tokio::test]
async fn a_tenant_issuer_claiming_another_tenant_is_refused_like_any_bad_token() {
    let world = World::new().await;
    let own = acme_idp_token("acme", Role::Supervisor, "sup-1");
    assert_eq!(
        world.get("/v1/conversations", Some(&own)).await.0,
        StatusCode::OK
    );

    let foreign = acme_idp_token("globex", Role::Supervisor, "sup-1");
    for uri in ["/v1/conversations", "/v1/conversations/conv-b/history"] {
        let refused = world.get(uri, Some(&foreign)).await;
        let garbage = world.get(uri, Some("not.a.jwt")).await;
        assert_eq!(refused.0, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(refused, garbage, "{uri}: every refusal reads the same");
    }
    let body: serde_json::Value =
        serde_json::from_slice(&world.get("/v1/conversations", Some(&foreign)).await.1).unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert_eq!(body["error"]["message"], "the bearer token is not valid");
}

#[tokio::test]
async fn a_rotation_keeps_old_tokens_valid_and_new_tokens_valid_at_once() {
    let world = World::new().await;
    let issuer = "https://rotating.test";
    let mut keys = IssuerKeys::generate(now_seconds()).unwrap();
    world
        .verifier
        .trust(issuer, Tenants::All, &keys.jwks())
        .unwrap();
    let agent = Principal::new(
        TenantId::new("globex").unwrap(),
        Role::Agent,
        PrincipalId::new("agent-1").unwrap(),
    );
    let sign = |keys: &IssuerKeys| {
        TokenIssuer::new(keys, issuer, "switchboard")
            .issue(&agent, now_seconds() + 600)
            .unwrap()
    };
    let old = sign(&keys);
    keys.rotate(now_seconds()).unwrap();
    world.verifier.set_keys(issuer, &keys.jwks()).unwrap();
    let new = sign(&keys);
    for token in [&old, &new] {
        assert_eq!(
            world.get("/v1/conversations", Some(token)).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(keys.retire(u64::MAX, 0).len(), 1);
    world.verifier.set_keys(issuer, &keys.jwks()).unwrap();
    let (status, _) = world.get("/v1/conversations", Some(&old)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the retired key's tokens");
    assert_eq!(
        world.get("/v1/conversations", Some(&new)).await.0,
        StatusCode::OK
    );
}
