//! Who may connect: every kind of bad token is refused with the same answer and close 4001,
//! a foreign Origin with 4003, and the server keeps serving good clients meanwhile. A session
//! ends with its token, unless the client sends a fresh one in time.

mod support;

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::client::{Connected, connect_with};
use support::{
    AUDIENCE, Backends, ISSUER, KEYS, acme_idp_token, edge, issuer, principal, stack, token,
};
use switchboard_edge::EdgeConfig;
use switchboard_events::principal::Role;
use switchboard_events::token::{IssuerKeys, Tenants, TokenIssuer, now_seconds};

fn claims() -> Value {
    json!({"sub": "cust-1", "tenant": "acme", "role": "customer", "aud": AUDIENCE, "iss": ISSUER,
           "iat": now_seconds(), "exp": now_seconds() + 600})
}

/// Well signed by the stack's issuer, whatever the claims say.
fn signed(claims: &Value) -> String {
    issuer().sign(claims).unwrap()
}

/// Signed with `key` and `alg`, naming the stack's key in the header.
fn keyed(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(KEYS.active().kid().to_owned());
    encode(&header, claims, key).unwrap()
}

fn unsigned(claims: &Value) -> String {
    use base64_url::encode as b64;
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// Unpadded base64url, for the unsigned token.
mod base64_url {
    pub fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}

fn without(field: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(field);
    c
}

fn with(field: &str, value: Value) -> Value {
    let mut c = claims();
    c[field] = value;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_4001_in_the_handshake_and_in_the_first_frame() {
    let (_backends, edge) = stack().await;
    let rsa = EncodingKey::from_rsa_pem(include_bytes!("data/rsa-private.pem")).unwrap();
    let other = IssuerKeys::generate(now_seconds()).unwrap();
    let other_key = EncodingKey::from_ed_pem(other.active().to_pem().as_bytes()).unwrap();
    let public = serde_json::to_value(KEYS.jwks()).unwrap()["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let hmac = |secret: &[u8]| EncodingKey::from_secret(secret);
    let cases = [
        ("alg none", unsigned(&claims())),
        (
            "another key under the stack's kid",
            keyed(Algorithm::EdDSA, &other_key, &claims()),
        ),
        (
            "a key the issuer does not have",
            TokenIssuer::new(&other, ISSUER, AUDIENCE)
                .sign(&claims())
                .unwrap(),
        ),
        (
            "RS256 to an EdDSA key",
            keyed(Algorithm::RS256, &rsa, &claims()),
        ),
        (
            "HS256 keyed with the public key",
            keyed(Algorithm::HS256, &hmac(public.as_bytes()), &claims()),
        ),
        (
            "HS384",
            keyed(
                Algorithm::HS384,
                &hmac(b"any-secret-of-32-bytes-or-more!!"),
                &claims(),
            ),
        ),
        ("missing aud", signed(&without("aud"))),
        ("wrong aud", signed(&with("aud", json!("other-service")))),
        ("missing iss", signed(&without("iss"))),
        (
            "wrong iss",
            signed(&with("iss", json!("https://evil.example"))),
        ),
        ("missing exp", signed(&without("exp"))),
        ("expired", signed(&with("exp", json!(now_seconds() - 3600)))),
        (
            "not yet valid",
            signed(&with("nbf", json!(now_seconds() + 3600))),
        ),
        (
            "longer than a customer's cap",
            signed(&with("exp", json!(now_seconds() + 7200))),
        ),
        ("missing tenant", signed(&without("tenant"))),
        (
            "invalid tenant",
            signed(&with("tenant", json!("a tenant with spaces"))),
        ),
        ("unknown role", signed(&with("role", json!("root")))),
        (
            "acme's provider claiming globex",
            acme_idp_token(&principal("globex", Role::Customer, "cust-1")),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (case, bad) in cases {
        for in_frame in [false, true] {
            match connect_with(&edge.url(), &bad, in_frame, None).await {
                Connected::Refused(Some(frame), code) => {
                    assert_eq!(frame["code"], "unauthenticated", "{case}");
                    messages.insert(frame["message"].to_string());
                    assert!(
                        !frame.to_string().contains(&bad),
                        "{case}: the token is not echoed"
                    );
                    assert_eq!(code, Some(4001), "{case}");
                }
                other => panic!("{case} (in frame: {in_frame}): {other:?}"),
            }
        }
    }
    assert_eq!(
        messages.len(),
        1,
        "every refusal reads the same: {messages:?}"
    );
    // The server is fine, and acme's provider speaks for acme.
    let good = token(&principal("acme", Role::Customer, "cust-1"));
    let mut client = connect_with(&edge.url(), &good, true, None).await.client();
    client.open().await;
    let from_idp = acme_idp_token(&principal("acme", Role::Customer, "cust-2"));
    connect_with(&edge.url(), &from_idp, false, None)
        .await
        .client();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_keeps_old_tokens_valid_and_new_tokens_valid_at_once() {
    let (_backends, edge) = stack().await;
    // An issuer of this test alone, on the verifier every edge of this binary shares.
    let rotating = "https://rotating.switchboard.test";
    let mut keys = IssuerKeys::generate(now_seconds()).unwrap();
    let verifier = support::verifier();
    verifier
        .trust(rotating, Tenants::All, &keys.jwks())
        .unwrap();
    let customer = principal("acme", Role::Customer, "cust-9");
    let sign = |keys: &IssuerKeys| {
        TokenIssuer::new(keys, rotating, AUDIENCE)
            .issue(&customer, now_seconds() + 600)
            .unwrap()
    };
    let old = sign(&keys);
    keys.rotate(now_seconds()).unwrap();
    verifier.set_keys(rotating, &keys.jwks()).unwrap();
    let new = sign(&keys);
    for token in [&old, &new] {
        connect_with(&edge.url(), token, false, None).await.client();
    }
    assert_eq!(keys.retire(u64::MAX, 0).len(), 1);
    verifier.set_keys(rotating, &keys.jwks()).unwrap();
    assert!(matches!(
        connect_with(&edge.url(), &old, false, None).await,
        Connected::Refused(Some(_), Some(4001))
    ));
    connect_with(&edge.url(), &new, true, None).await.client();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_must_be_on_the_tenants_allowlist() {
    let backends = Backends::embedded().await;
    let mut config = EdgeConfig::default();
    config
        .allowed_origins
        .insert("acme".into(), vec!["https://acme.example".into()]);
    let edge = edge(&backends, config).await;
    let acme = token(&principal("acme", Role::Customer, "cust-1"));
    let globex = token(&principal("globex", Role::Customer, "cust-1"));
    connect_with(&edge.url(), &acme, false, Some("https://acme.example"))
        .await
        .client();
    connect_with(&edge.url(), &acme, false, None).await.client();
    for (token, origin) in [
        (&acme, "https://evil.example"),
        (&globex, "https://acme.example"),
    ] {
        match connect_with(&edge.url(), token, false, Some(origin)).await {
            Connected::Refused(Some(frame), code) => {
                assert_eq!(frame["code"], "origin_forbidden");
                assert_eq!(code, Some(4003));
            }
            other => panic!("{origin}: {other:?}"),
        }
    }
}

/// A token of `principal` that expires `seconds` from now.
fn expiring(principal: &switchboard_events::principal::Principal, seconds: u64) -> String {
    issuer().issue(principal, now_seconds() + seconds).unwrap()
}

#[tokio::test]
async fn a_session_whose_token_expires_must_send_a_fresh_one_or_is_closed_with_4001() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        heartbeat: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(3600),
        reauth_grace: Duration::from_secs(30),
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let customer = principal("acme", Role::Customer, "cust-1");
    let mut renewing = connect_with(&edge.url(), &expiring(&customer, 60), false, None)
        .await
        .client();
    let mut lapsing = connect_with(&edge.url(), &expiring(&customer, 60), true, None)
        .await
        .client();
    tokio::time::pause();
    let started = tokio::time::Instant::now();

    let asked = renewing.expect_untimed("reauth_required").await;
    assert_eq!(asked["within_ms"], 30_000);
    let at = started.elapsed();
    assert!(
        at >= Duration::from_secs(58) && at <= Duration::from_secs(60),
        "asked at the token's expiry, not {at:?}"
    );
    // Someone else's token does not renew the session, and the answer says nothing more.
    let other = token(&principal("acme", Role::Customer, "cust-2"));
    renewing
        .send(json!({"type": "auth", "ref": "wrong", "token": other}))
        .await;
    let refused = renewing.expect_untimed("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["ref"].as_str()),
        (Some("unauthenticated"), Some("wrong"))
    );
    assert_eq!(refused["message"], "the bearer token is not valid");
    renewing
        .send(json!({"type": "auth", "ref": "fresh", "token": token(&customer)}))
        .await;
    assert_eq!(
        renewing.expect_untimed("reauthenticated").await["ref"],
        "fresh"
    );

    lapsing.expect_untimed("reauth_required").await;
    assert_eq!(lapsing.closed_untimed().await, Some(4001));
    assert!(
        started.elapsed() >= Duration::from_secs(88),
        "closed after the grace"
    );

    // The renewed session outlives both the old token and its grace.
    renewing.send(json!({"type": "ping", "ref": "still"})).await;
    assert_eq!(renewing.expect_untimed("pong").await["ref"], "still");
}
