//! End users' JWTs at the command API: an issuer speaks only for its tenants, every refused
//! token answers alike, and a key rotation keeps old and new tokens valid.

use serde_json::json;
use switchboard_events::id::TenantId;
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{
    IssuerKeys, Tenants, TokenConfig, TokenIssuer, TokenVerifier, now_seconds,
};

use super::http::{message, post_json};
use super::{Call, Harness, principal, tokens};
use crate::api::JwtOrTokens;

const OWN: &str = "https://switchboard.test";
const ACME_IDP: &str = "https://id.acme.test";

struct Issuers {
    own: IssuerKeys,
    acme: IssuerKeys,
    verifier: TokenVerifier,
}

/// The instance's issuer for every tenant; acme's identity provider for acme only.
fn issuers() -> Issuers {
    let now = now_seconds();
    let (own, acme) = (
        IssuerKeys::generate(now).unwrap(),
        IssuerKeys::generate(now).unwrap(),
    );
    let verifier = TokenVerifier::new(&TokenConfig::default());
    verifier.trust(OWN, Tenants::All, &own.jwks()).unwrap();
    let only_acme = Tenants::only([TenantId::new("acme").unwrap()]);
    verifier.trust(ACME_IDP, only_acme, &acme.jwks()).unwrap();
    Issuers {
        own,
        acme,
        verifier,
    }
}

fn token(keys: &IssuerKeys, issuer: &str, who: &Principal) -> String {
    TokenIssuer::new(keys, issuer, "switchboard")
        .issue(who, now_seconds() + 600)
        .unwrap()
}

async fn start(verifier: TokenVerifier) -> Harness {
    let auth = JwtOrTokens {
        jwt: verifier,
        services: tokens(),
    };
    Harness::start_with(auth, 64 * 1024).await
}

#[tokio::test]
async fn a_tenant_issuer_claiming_another_tenant_is_refused_like_any_bad_token() {
    let w = issuers();
    let h = start(w.verifier.clone()).await;
    let path = "/v1/conversations/conv-1/commands";
    let acme_agent = principal("acme", Role::Agent, "a-1");
    let ok = post_json(
        h.http,
        path,
        Some(&token(&w.acme, ACME_IDP, &acme_agent)),
        message(),
    )
    .await;
    assert_eq!(ok.status, 200);

    let foreign = token(
        &w.acme,
        ACME_IDP,
        &principal("globex", Role::Supervisor, "boss"),
    );
    let refused = post_json(h.http, path, Some(&foreign), message()).await;
    let garbage = post_json(h.http, path, Some("not.a.jwt"), message()).await;
    assert_eq!((refused.status, garbage.status), (401, 401));
    assert_eq!(
        refused.error(),
        garbage.error(),
        "every refusal reads the same"
    );
    assert_eq!(refused.error().0, "unauthenticated");
    // Nor may acme's token act for globex on behalf of someone.
    let mut on_behalf = message();
    on_behalf["on_behalf_of"] = json!({"tenant_id": "globex", "role": "customer", "subject": "c"});
    let acme_service = principal("acme", Role::Service, "bot");
    let answer = post_json(
        h.http,
        path,
        Some(&token(&w.acme, ACME_IDP, &acme_service)),
        on_behalf,
    )
    .await;
    assert_eq!(answer.status, 403);

    let principals: Vec<Principal> = h
        .fake
        .calls()
        .into_iter()
        .map(|call| match call {
            Call::Conversation { principal, .. } | Call::Agent { principal, .. } => principal,
        })
        .collect();
    assert_eq!(principals, [acme_agent]);
    h.stop().await;
}

#[tokio::test]
async fn a_rotation_keeps_old_tokens_valid_and_new_tokens_valid_at_once() {
    let mut w = issuers();
    let h = start(w.verifier.clone()).await;
    let path = "/v1/conversations/conv-1/commands";
    let agent = principal("globex", Role::Agent, "a-1");
    let old = token(&w.own, OWN, &agent);
    w.own.rotate(now_seconds()).unwrap();
    // The server holds a clone of the verifier: the new keys reach it.
    w.verifier.set_keys(OWN, &w.own.jwks()).unwrap();
    let new = token(&w.own, OWN, &agent);
    assert_ne!(old, new);
    for token in [&old, &new] {
        assert_eq!(
            post_json(h.http, path, Some(token), message()).await.status,
            200
        );
    }
    // Once the old key is retired, its tokens are refused; the new key's stay valid.
    let retired = w.own.retire(u64::MAX, 0);
    assert_eq!(retired.len(), 1);
    w.verifier.set_keys(OWN, &w.own.jwks()).unwrap();
    assert_eq!(
        post_json(h.http, path, Some(&old), message()).await.status,
        401
    );
    assert_eq!(
        post_json(h.http, path, Some(&new), message()).await.status,
        200
    );
    h.stop().await;
}
