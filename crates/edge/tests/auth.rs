//! Who may connect: every kind of bad token is refused with the same answer and close 4001,
//! a foreign Origin with 4003, and the server keeps serving good clients meanwhile. A session
//! ends with its token, unless the client sends a fresh one in time.

mod support;

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::client::{Connected, connect_with};
use support::{AUDIENCE, Backends, ISSUER, SECRET, edge, principal, stack, token};
use switchboard_edge::EdgeConfig;
use switchboard_events::principal::Role;
use switchboard_events::token::{TokenIssuer, now_seconds};

fn claims() -> Value {
    json!({"sub": "cust-1", "tenant": "acme", "role": "customer", "aud": AUDIENCE, "iss": ISSUER, "exp": now_seconds() + 600})
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
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
    let private = include_bytes!("data/rsa-private.pem");
    let public = include_bytes!("data/rsa-public.pem");
    let rs256 = TokenIssuer::rs256(private, ISSUER, AUDIENCE)
        .unwrap()
        .issue(
            &principal("acme", Role::Customer, "cust-1"),
            now_seconds() + 600,
        )
        .unwrap();
    let cases = [
        ("alg none", unsigned(&claims())),
        (
            "wrong key",
            hs256(&claims(), b"another-secret-of-at-least-32-bytes"),
        ),
        ("RS256 to an HS256 edge", rs256),
        (
            "HS256 keyed with the RSA public key",
            hs256(&claims(), public),
        ),
        (
            "HS384",
            encode(
                &Header::new(Algorithm::HS384),
                &claims(),
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap(),
        ),
        ("missing aud", hs256(&without("aud"), SECRET)),
        (
            "wrong aud",
            hs256(&with("aud", json!("other-service")), SECRET),
        ),
        ("missing iss", hs256(&without("iss"), SECRET)),
        (
            "wrong iss",
            hs256(&with("iss", json!("https://evil.example")), SECRET),
        ),
        ("missing exp", hs256(&without("exp"), SECRET)),
        (
            "expired",
            hs256(&with("exp", json!(now_seconds() - 3600)), SECRET),
        ),
        ("missing tenant", hs256(&without("tenant"), SECRET)),
        (
            "invalid tenant",
            hs256(&with("tenant", json!("a tenant with spaces")), SECRET),
        ),
        ("unknown role", hs256(&with("role", json!("root")), SECRET)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (case, bad) in cases {
        for in_frame in [false, true] {
            match connect_with(&edge.url(), &bad, in_frame, None).await {
                Connected::Refused(Some(frame), code) => {
                    assert_eq!(frame["code"], "unauthenticated", "{case}");
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
    // The server is fine.
    let good = token(&principal("acme", Role::Customer, "cust-1"));
    let mut client = connect_with(&edge.url(), &good, true, None).await.client();
    client.open().await;
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
    TokenIssuer::hs256(SECRET, ISSUER, AUDIENCE)
        .issue(principal, now_seconds() + seconds)
        .unwrap()
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
    assert_eq!(refused["message"], "invalid token");
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
