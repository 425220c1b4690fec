//! The binary's token keys: `serve` signs with its own keys and publishes them as a JWKS on
//! the query listener, trusts a configured issuer for its tenants with the keys of its JWKS
//! file, and answers every other token — an unknown `kid`, an unknown issuer, an issuer
//! speaking for a tenant it is not bound to — with the one refusal.

mod support;

use serde_json::Value;
use support::{Server, WsClient, request, token};
use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{
    IssuerKeys, Tenants, TokenConfig, TokenIssuer, TokenVerifier, now_seconds, parse_jwks,
};

const ACME_IDP: &str = "https://id.acme.test";

fn agent_of(tenant: &str) -> Principal {
    Principal::new(
        TenantId::new(tenant).unwrap(),
        Role::Agent,
        PrincipalId::new("agent-7").unwrap(),
    )
}

fn signed(keys: &IssuerKeys, issuer: &str, principal: &Principal) -> String {
    TokenIssuer::new(keys, issuer, "switchboard")
        .issue(principal, now_seconds() + 600)
        .unwrap()
}

#[tokio::test]
async fn a_configured_issuer_is_trusted_for_its_tenants_and_every_other_token_gets_one_refusal() {
    let data = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    let acme_idp = IssuerKeys::generate(now_seconds()).unwrap();
    let jwks = etc.path().join("acme-jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&acme_idp.jwks()).unwrap()).unwrap();
    let config = etc.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[auth.trusted]]\nissuer = \"{ACME_IDP}\"\ntenants = [\"acme\"]\njwks_file = {:?}\n",
            jwks.to_str().unwrap()
        ),
    )
    .unwrap();
    let server = Server::start(data.path(), &["--config", config.to_str().unwrap()]);
    let list = "/v1/conversations?status=open";

    // The instance's own token, and the published keys verify it.
    let own = token(data.path(), "agent", "agent-7");
    let (status, _) = request(&server.query, "GET", list, Some(&own), "");
    assert_eq!(status, 200);
    let (status, published) = request(&server.query, "GET", "/.well-known/jwks.json", None, "");
    assert_eq!(status, 200);
    assert!(
        published["keys"][0].get("d").is_none(),
        "only public halves"
    );
    let elsewhere = TokenVerifier::new(&TokenConfig::default());
    let jwks = parse_jwks(published.to_string().as_bytes()).unwrap();
    elsewhere.trust("switchboard", Tenants::All, &jwks).unwrap();
    assert_eq!(elsewhere.verify(&own).unwrap(), agent_of("acme"));

    // Acme's provider speaks for acme, on the query service and on the edge.
    let trusted = signed(&acme_idp, ACME_IDP, &agent_of("acme"));
    let (status, _) = request(&server.query, "GET", list, Some(&trusted), "");
    assert_eq!(status, 200);
    let ws = &server.edge;
    assert!(WsClient::connect(ws, &trusted).await.is_some());

    // Everything else reads exactly like a garbage token.
    let (status, garbage) = request(&server.query, "GET", list, Some("not-a-token"), "");
    assert_eq!(status, 401);
    let stranger = IssuerKeys::generate(now_seconds()).unwrap();
    let refused: Vec<(&str, String)> = vec![
        // A key acme's provider never published, under its name.
        (
            "unknown kid",
            signed(&stranger, ACME_IDP, &agent_of("acme")),
        ),
        // An issuer nobody configured.
        (
            "unknown issuer",
            signed(&stranger, "https://id.evil.test", &agent_of("acme")),
        ),
        // Acme's provider claiming another tenant.
        (
            "foreign tenant",
            signed(&acme_idp, ACME_IDP, &agent_of("globex")),
        ),
    ];
    for (case, bad) in &refused {
        let (status, body): (u16, Value) = request(&server.query, "GET", list, Some(bad), "");
        assert_eq!((status, &body), (401, &garbage), "{case}");
        assert!(
            WsClient::connect(ws, bad).await.is_none(),
            "{case}: the edge refuses it"
        );
    }
}
