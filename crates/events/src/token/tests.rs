use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, decode_header, encode};
use serde_json::{Value, json};

use super::*;
use crate::id::PrincipalId;
use crate::principal::Principal;

const OWN: &str = "https://switchboard.test";
const ACME_IDP: &str = "https://id.acme.test";
const AUDIENCE: &str = "switchboard";
const NOW: u64 = 1_800_000_000;

/// What `openssl genpkey -algorithm ed25519` writes.
const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFvyfzwIIVlsoh5kiuEtY4kNc81ACl6NQAXdjnsZRrOU
-----END PRIVATE KEY-----
";

/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
const OPENSSL_P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAScYiBtbqHdzy8TJ
m42eH2QkIoDIF57a4bQCnsCNrG+hRANCAAQSy2Uof9FMgHBX6kwBHnL21SWqU4nY
yRwX0CJ2xrzL+uQxWOD39K3o7injJXPPS4ET/DxhbpYtIqdJ5fkVA9kK
-----END PRIVATE KEY-----
";

/// The same with curve P-384: not a key this service signs or verifies with.
const OPENSSL_P384: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBKAQz//XtVa6TbwXu9
9CbrhIQhrZoY1iCno+zlJWkRdcUC8ZQvQrPBY44B0cnAlbKhZANiAAQAyxV04LoV
zq9p0EL42oMRgHHRV1QIl0wNWWiKhUD10juoWzS1zOFObnqiJ5hEx8D/1KZqtsme
8L6R7W6JvX8o4DmfIa8C35A2dAyJlHlMjLZJSX382zURtZe1w1ZV2HI=
-----END PRIVATE KEY-----
";

fn principal(tenant: &str, role: Role) -> Principal {
    Principal::new(
        TenantId::new(tenant).unwrap(),
        role,
        PrincipalId::new("p-7").unwrap(),
    )
}

fn claims(tenant: &str, role: &str, iss: &str) -> Value {
    json!({"sub": "p-7", "tenant": tenant, "role": role, "aud": AUDIENCE, "iss": iss,
           "iat": NOW, "exp": NOW + 600})
}

struct World {
    own: IssuerKeys,
    acme: IssuerKeys,
    verifier: TokenVerifier,
}

/// The instance's own issuer for every tenant, and acme's identity provider for acme only.
fn world() -> World {
    let own = IssuerKeys::generate(NOW - 100).unwrap();
    let acme = IssuerKeys::generate(NOW - 100).unwrap();
    let verifier = TokenVerifier::new(&TokenConfig::default());
    verifier.trust(OWN, Tenants::All, &own.jwks()).unwrap();
    verifier
        .trust(
            ACME_IDP,
            Tenants::only([TenantId::new("acme").unwrap()]),
            &acme.jwks(),
        )
        .unwrap();
    World {
        own,
        acme,
        verifier,
    }
}

fn sign(keys: &IssuerKeys, iss: &str, claims: &Value) -> String {
    TokenIssuer::new(keys, iss, AUDIENCE).sign(claims).unwrap()
}

fn reason(verifier: &TokenVerifier, token: &str) -> TokenError {
    verifier.verify_at(token, NOW).unwrap_err().reason().clone()
}

fn forge(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[test]
fn a_token_of_a_trusted_issuer_gives_its_principal() {
    let w = world();
    let token = sign(&w.own, OWN, &claims("globex", "agent", OWN));
    assert_eq!(
        w.verifier.verify_at(&token, NOW),
        Ok(principal("globex", Role::Agent))
    );
    let token = sign(&w.acme, ACME_IDP, &claims("acme", "customer", ACME_IDP));
    assert_eq!(
        w.verifier.verify_at(&token, NOW),
        Ok(principal("acme", Role::Customer))
    );
    // `issue` stamps iat now and verifies with the real clock.
    let issued = TokenIssuer::new(&w.own, OWN, AUDIENCE)
        .issue(&principal("acme", Role::Agent), now_seconds() + 60)
        .unwrap();
    assert_eq!(
        w.verifier.verify(&issued),
        Ok(principal("acme", Role::Agent))
    );
}

#[test]
fn an_issuer_speaks_only_for_its_tenants() {
    let w = world();
    let token = sign(&w.acme, ACME_IDP, &claims("globex", "supervisor", ACME_IDP));
    let refused = w.verifier.verify_at(&token, NOW).unwrap_err();
    assert_eq!(
        refused.reason(),
        &TokenError::ForeignTenant {
            issuer: ACME_IDP.into(),
            tenant: TenantId::new("globex").unwrap()
        }
    );
    assert_eq!(refused.to_string(), "the bearer token is not valid");
    // Acme's key under the instance's name: the key is not the instance's.
    let token = sign(&w.acme, OWN, &claims("globex", "supervisor", OWN));
    assert!(matches!(
        reason(&w.verifier, &token),
        TokenError::UnknownKey { .. }
    ));
}

#[test]
fn rotation_keeps_old_tokens_until_retired_and_new_tokens_valid_at_once() {
    let mut w = world();
    let old = sign(&w.own, OWN, &claims("acme", "agent", OWN));
    let old_kid = w.own.active().kid().to_owned();
    let new_kid = w.own.rotate(NOW).unwrap().kid().to_owned();
    assert_ne!(old_kid, new_kid);
    w.verifier.set_keys(OWN, &w.own.jwks()).unwrap();
    let new = sign(&w.own, OWN, &claims("acme", "agent", OWN));
    assert_eq!(decode_header(&new).unwrap().kid, Some(new_kid));
    assert!(
        w.verifier.verify_at(&old, NOW).is_ok(),
        "old key still verifies"
    );
    assert!(
        w.verifier.verify_at(&new, NOW).is_ok(),
        "new key verifies at once"
    );

    let keep_for = TokenConfig::default().keep_retired_keys_for();
    assert_eq!(w.own.retire(NOW + keep_for, keep_for), Vec::<String>::new());
    assert_eq!(w.own.retire(NOW + keep_for + 1, keep_for), vec![old_kid]);
    assert_eq!(w.own.keys().len(), 1, "the active key always stays");
    assert_eq!(w.own.retire(u64::MAX, 0), Vec::<String>::new());
    w.verifier.set_keys(OWN, &w.own.jwks()).unwrap();
    assert!(matches!(
        reason(&w.verifier, &old),
        TokenError::UnknownKey { .. }
    ));
    assert!(w.verifier.verify_at(&new, NOW).is_ok());
    // Rotating twice within a second still makes the newest key the active one.
    let again = w.own.rotate(NOW).unwrap().kid().to_owned();
    assert_eq!(w.own.active().kid(), again);
    assert!(w.own.active().created() > NOW);
}

#[test]
fn keys_survive_pem_and_openssl_keys_load() {
    let keys = IssuerKeys::generate(NOW).unwrap();
    let active = keys.active();
    let pem = active.to_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let again = SigningKey::from_pem(active.kid(), pem.as_bytes()).unwrap();
    assert_eq!(again.public_jwk(), active.public_jwk());
    assert_eq!(again.created(), NOW);

    for (pem, algorithm) in [
        (OPENSSL_ED25519, Algorithm::EdDSA),
        (OPENSSL_P256, Algorithm::ES256),
    ] {
        let key = SigningKey::from_pem("1700000000-ops", pem.as_bytes()).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let keys = IssuerKeys::new([key]).unwrap();
        let verifier = TokenVerifier::new(&TokenConfig::default());
        verifier.trust(OWN, Tenants::All, &keys.jwks()).unwrap();
        let token = sign(&keys, OWN, &claims("acme", "agent", OWN));
        assert!(verifier.verify_at(&token, NOW).is_ok(), "{algorithm:?}");
        // The PEM we write is read back by the same path.
        let reread = SigningKey::from_pem("1700000000-ops", keys.active().to_pem().as_bytes());
        assert_eq!(reread.unwrap().public_jwk(), keys.active().public_jwk());
    }
    assert!(matches!(
        SigningKey::from_pem("1700000000-ops", OPENSSL_P384.as_bytes()),
        Err(KeyError::Unusable { .. })
    ));
    for kid in [
        "ops",
        "-x",
        "12-",
        "12-a/b",
        "x1-a",
        "12-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        assert_eq!(
            SigningKey::from_pem(kid, OPENSSL_ED25519.as_bytes()).unwrap_err(),
            KeyError::InvalidKid(kid.into())
        );
    }
    let twice = SigningKey::from_pem("1-a", OPENSSL_ED25519.as_bytes()).unwrap();
    assert_eq!(
        IssuerKeys::new([twice.clone(), twice]).unwrap_err(),
        KeyError::DuplicateKid("1-a".into())
    );
    assert_eq!(IssuerKeys::new([]).unwrap_err(), KeyError::NoSigningKey);
    assert!(!format!("{:?}", keys.active()).contains(&pem[30..60]));
}

#[test]
fn the_jwks_is_public_and_an_external_jwks_configures_an_issuer() {
    let keys = IssuerKeys::generate(NOW).unwrap();
    let json = serde_json::to_value(keys.jwks()).unwrap();
    let jwk = &json["keys"][0];
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"], &jwk["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    assert_eq!(jwk["kid"], json!(keys.active().kid()));
    assert_eq!(jwk.as_object().unwrap().len(), 6, "no private part: {jwk}");

    // A tenant's provider configured from its published document.
    let p256 =
        IssuerKeys::new([SigningKey::from_pem("1-p", OPENSSL_P256.as_bytes()).unwrap()]).unwrap();
    let document = serde_json::to_vec(&p256.jwks()).unwrap();
    let verifier = TokenVerifier::new(&TokenConfig::default());
    let acme = Tenants::only([TenantId::new("acme").unwrap()]);
    verifier
        .trust(ACME_IDP, acme.clone(), &parse_jwks(&document).unwrap())
        .unwrap();
    let token = sign(&p256, ACME_IDP, &claims("acme", "customer", ACME_IDP));
    assert!(verifier.verify_at(&token, NOW).is_ok());

    let refused = |jwks: Value| {
        let jwks = parse_jwks(jwks.to_string().as_bytes()).unwrap();
        verifier.trust(ACME_IDP, acme.clone(), &jwks).unwrap_err()
    };
    let x = jwk["x"].clone();
    assert!(matches!(
        refused(json!({"keys": [{"kty": "oct", "kid": "1-s", "k": "c2VjcmV0"}]})),
        KeyError::Unusable { .. }
    ));
    assert!(matches!(
        refused(
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": "ES256", "kid": "1-a"}]})
        ),
        KeyError::Unusable { .. }
    ));
    assert!(matches!(
        refused(json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]})),
        KeyError::Unusable { .. }
    ));
    assert!(matches!(
        parse_jwks(b"{\"keys\": 3}"),
        Err(KeyError::Jwks(_))
    ));
    assert!(
        verifier
            .set_keys("https://nobody.test", &p256.jwks())
            .is_err()
    );
}

#[test]
fn times_are_checked_and_lifetimes_capped_per_role() {
    let w = world();
    let at = |fields: Value| {
        let mut c = claims("acme", "customer", OWN);
        for (k, v) in fields.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        w.verifier
            .verify_at(&sign(&w.own, OWN, &c), NOW)
            .map_err(|e| e.reason().clone())
    };
    assert_eq!(at(json!({"exp": NOW - 31})), Err(TokenError::Expired));
    assert!(at(json!({"exp": NOW - 29})).is_ok(), "within the leeway");
    assert_eq!(at(json!({"nbf": NOW + 31})), Err(TokenError::NotYetValid));
    assert!(at(json!({"nbf": NOW + 29})).is_ok());
    assert_eq!(
        at(json!({"iat": NOW + 31, "exp": NOW + 600})),
        Err(TokenError::IssuedInTheFuture)
    );
    assert_eq!(
        at(json!({"iat": NOW - 10, "exp": NOW + 3_591})),
        Err(TokenError::TooLong {
            lifetime: 3_601,
            max: 3_600
        })
    );
    assert!(at(json!({"iat": NOW - 10, "exp": NOW + 3_590})).is_ok());
    // Without iat, the lifetime left counts.
    assert!(at(json!({"iat": null, "exp": NOW + 3_600})).is_ok());
    assert!(matches!(
        at(json!({"iat": null, "exp": NOW + 3_601})),
        Err(TokenError::TooLong { .. })
    ));
    assert!(at(json!({"role": "agent", "exp": NOW + 12 * 3_600})).is_ok());
    assert!(at(json!({"role": "agent", "exp": NOW + 12 * 3_600 + 1})).is_err());
    assert!(at(json!({"role": "service", "exp": NOW + 24 * 3_600})).is_ok());
    assert!(at(json!({"role": "service", "exp": NOW + 24 * 3_600 + 1})).is_err());
    assert!(matches!(
        at(json!({"exp": null})),
        Err(TokenError::MissingClaim(_) | TokenError::Malformed)
    ));
    for claim in ["aud", "sub", "iss"] {
        assert!(at(json!({claim: null})).is_err(), "{claim}");
    }
    assert_eq!(at(json!({"aud": "other"})), Err(TokenError::WrongAudience));
    assert!(matches!(
        at(json!({"tenant": "a tenant with spaces"})),
        Err(TokenError::InvalidClaim {
            field: "tenant",
            ..
        })
    ));
    assert!(matches!(
        at(json!({"role": "root"})),
        Err(TokenError::Malformed)
    ));
}

#[test]
fn algorithms_are_pinned_per_key_and_every_refusal_reads_the_same() {
    let w = world();
    let kid = w.own.active().kid().to_owned();
    let good = claims("acme", "agent", OWN);
    let public_x = w.own.jwks().keys[0].clone();
    let public = match public_x.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => {
            URL_SAFE_NO_PAD.decode(p.x).unwrap()
        }
        _ => unreachable!("an Ed25519 key"),
    };
    let hs256_with = |secret: &[u8], kid: &str| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.to_owned());
        encode(&header, &good, &EncodingKey::from_secret(secret)).unwrap()
    };
    // The claims of one token under the signature of another.
    let signed = sign(&w.own, OWN, &good);
    let other = sign(&w.own, OWN, &claims("acme", "supervisor", OWN));
    let tampered = format!(
        "{}.{}",
        signed.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    let cases = [
        (
            forge(&json!({"alg": "none", "kid": kid}), &good),
            TokenError::Malformed,
        ),
        (
            forge(&json!({"alg": "RS256", "kid": kid}), &good),
            TokenError::WrongAlgorithm,
        ),
        (hs256_with(&public, &kid), TokenError::WrongAlgorithm),
        (
            hs256_with(&public, "hs256"),
            TokenError::UnknownKey {
                issuer: OWN.into(),
                kid: "hs256".into(),
            },
        ),
        (
            encode(
                &Header::new(Algorithm::EdDSA),
                &good,
                w.own.active().encoding_key(),
            )
            .unwrap(),
            TokenError::MissingKid,
        ),
        (
            sign(
                &w.own,
                "https://evil.test",
                &claims("acme", "agent", "https://evil.test"),
            ),
            TokenError::UnknownIssuer("https://evil.test".into()),
        ),
        (tampered, TokenError::BadSignature),
        ("not.a.token".to_owned(), TokenError::Malformed),
        (String::new(), TokenError::Malformed),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (token, expected) in cases {
        let refused = w.verifier.verify_at(&token, NOW).unwrap_err();
        assert_eq!(refused.reason(), &expected, "{token}");
        messages.insert(refused.to_string());
    }
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[test]
fn the_development_secret_still_verifies_its_own_tokens() {
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    let verifier = TokenVerifier::hs256(SECRET, OWN, AUDIENCE).unwrap();
    let token = TokenIssuer::hs256(SECRET, OWN, AUDIENCE)
        .issue(&principal("acme", Role::Agent), now_seconds() + 60)
        .unwrap();
    assert_eq!(verifier.verify(&token), Ok(principal("acme", Role::Agent)));
    assert!(TokenVerifier::hs256(b"short", OWN, AUDIENCE).is_err());
    let w = world();
    // An EdDSA verifier never takes the HS256 token, nor the reverse.
    assert!(w.verifier.verify(&token).is_err());
    let eddsa = TokenIssuer::new(&w.own, OWN, AUDIENCE)
        .issue(&principal("acme", Role::Agent), now_seconds() + 60)
        .unwrap();
    assert!(verifier.verify(&eddsa).is_err());
}

#[test]
fn a_shared_secret_beside_the_keys_verifies_for_its_issuer_only() {
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    let w = world();
    let secret = |iss: &str| {
        TokenIssuer::hs256(SECRET, iss, AUDIENCE)
            .sign(&claims("acme", "agent", iss))
            .unwrap()
    };
    assert!(matches!(
        reason(&w.verifier, &secret(OWN)),
        TokenError::UnknownKey { .. }
    ));
    assert!(
        w.verifier
            .accept_secret("https://nobody.test", SECRET)
            .is_err()
    );
    assert!(w.verifier.accept_secret(OWN, b"short").is_err());
    w.verifier.accept_secret(OWN, SECRET).unwrap();
    let agent = principal("acme", Role::Agent);
    assert_eq!(w.verifier.verify_at(&secret(OWN), NOW), Ok(agent.clone()));
    let eddsa = sign(&w.own, OWN, &claims("acme", "agent", OWN));
    assert_eq!(w.verifier.verify_at(&eddsa, NOW), Ok(agent));
    // Acme's provider did not get the secret.
    assert!(matches!(
        reason(&w.verifier, &secret(ACME_IDP)),
        TokenError::UnknownKey { .. }
    ));
}

#[test]
fn the_configuration_reads_with_defaults_and_refuses_unknown_keys() {
    let config: TokenConfig = serde_json::from_value(json!({
        "issuer": "https://sb.example",
        "max_lifetime": {"customer_seconds": 900},
        "trusted": [{"issuer": ACME_IDP, "tenants": ["acme"], "jwks_file": "/etc/sb/acme.json"}]
    }))
    .unwrap();
    assert_eq!(config.audience, "switchboard");
    assert_eq!(config.max_lifetime.of(Role::Customer), 900);
    assert_eq!(config.max_lifetime.of(Role::Auditor), 12 * 3_600);
    assert_eq!(config.keep_retired_keys_for(), 24 * 3_600 + 30);
    assert_eq!(
        config.trusted[0].tenants,
        vec![TenantId::new("acme").unwrap()]
    );
    assert!(serde_json::from_value::<TokenConfig>(json!({"leeway": 5})).is_err());
    assert!(
        serde_json::from_value::<TokenConfig>(json!({"trusted": [{"issuer": "x", "tenants": []}]}))
            .is_err()
    );
    assert!(format!("{:?}", world().verifier).contains(ACME_IDP));
}
