//! Tenants as records, end to end on one `switchboard serve`: the operator creates tenants with
//! the CLI and the admin API; a tenant's widget key opens visitor sessions bound to the tenant
//! and to one visitor; identity verification refuses a wrong signature; a business-hours change
//! made through the API is applied by the router at once and appears in the audit replay.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Server, request, request_with, switchboard};
use switchboard_events::visitor::sign_hex;

/// A token of `tenant` signed by the instance on `data`.
fn token(data: &Path, tenant: &str, role: &str, subject: &str) -> String {
    let out = switchboard()
        .args(["token", "--data-dir", data.to_str().unwrap()])
        .args(["--tenant", tenant, "--role", role, "--subject", subject])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `switchboard tenant …` against the server: the JSON it prints.
fn cli(server: &Server, args: &[&str], operator: &str) -> Value {
    let out = switchboard()
        .arg("tenant")
        .args(args)
        .args([
            "--url",
            &format!("http://{}", server.http),
            "--token",
            operator,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tenant {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Starts a visitor session: status and answer.
fn session(server: &Server, origin: Option<&str>, body: Value) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    request_with(
        &server.edge,
        "POST",
        "/v1/sessions",
        &headers,
        &body.to_string(),
    )
}

/// Opens a conversation as the visitor of `session` and says something in it.
fn open_and_write(server: &Server, session: &Value, text: &str) -> String {
    let token = session["token"].as_str().unwrap();
    let open = json!({"customer_id": session["visitor_id"], "channel": "web"}).to_string();
    let (status, opened) = request(
        &server.http,
        "POST",
        "/v1/conversations",
        Some(token),
        &open,
    );
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    let send = json!({"type": "post_message", "client_msg_id": "m1", "body": text}).to_string();
    let path = format!("/v1/conversations/{conversation}/commands");
    let (status, sent) = request(&server.http, "POST", &path, Some(token), &send);
    assert_eq!(status, 200, "{sent}");
    conversation
}

/// The conversation's history as `token` reads it, once it holds `text` or 20 s passed.
fn history_until(server: &Server, token: &str, conversation: &str, text: &str) -> (u16, String) {
    let path = format!("/v1/conversations/{conversation}/history?oldest=true");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = request(&server.query, "GET", &path, Some(token), "");
        let page = page.to_string();
        if (status == 200 && page.contains(text)) || Instant::now() > deadline {
            return (status, page);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_widget_key_opens_sessions_bound_to_its_tenant_and_to_one_visitor() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let operator = token(data.path(), "acme", "service", "operator");
    let acme = cli(
        &server,
        &[
            "create",
            "acme",
            "--name",
            "Acme",
            "--origin",
            "https://acme.example",
        ],
        &operator,
    );
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["settings"]["name"], "Acme");
    assert_eq!(acme["updated_by"]["id"], "operator");
    let acme_key = acme["settings"]["widget_key"].as_str().unwrap().to_owned();
    assert!(acme_key.starts_with("wk_"), "{acme}");
    let again = switchboard()
        .args(["tenant", "create", "acme", "--name", "Acme"])
        .args([
            "--url",
            &format!("http://{}", server.http),
            "--token",
            &operator,
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "a second create is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("tenant_exists"));

    let globex_operator = token(data.path(), "globex", "service", "operator");
    let create =
        json!({"settings": {"name": "Globex", "allowed_origins": ["https://globex.example"]}});
    let (status, globex) = request(
        &server.http,
        "POST",
        "/v1/tenants/globex",
        Some(&globex_operator),
        &create.to_string(),
    );
    assert_eq!(status, 201, "{globex}");
    let globex_key = globex["settings"]["widget_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another tenant's admin learns nothing of acme; acme's own admin sees acme only.
    let globex_admin = token(data.path(), "globex", "supervisor", "boss");
    let (status, _) = request(
        &server.http,
        "GET",
        "/v1/tenants/acme",
        Some(&globex_admin),
        "",
    );
    assert_eq!(status, 404);
    let patch = r#"{"csat": false}"#;
    let (status, _) = request(
        &server.http,
        "PATCH",
        "/v1/tenants/acme/settings",
        Some(&globex_admin),
        patch,
    );
    assert_eq!(status, 404);
    let acme_admin = token(data.path(), "acme", "supervisor", "boss");
    let (status, listed) = request(&server.http, "GET", "/v1/tenants", Some(&acme_admin), "");
    assert_eq!(status, 200);
    let names: Vec<_> = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].clone())
        .collect();
    assert_eq!(names, [json!("acme")]);
    let agent = token(data.path(), "acme", "agent", "agent-1");
    let (status, body) = request(
        &server.http,
        "PATCH",
        "/v1/tenants/acme/settings",
        Some(&agent),
        patch,
    );
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));

    // Sessions: the widget key names the tenant, the Origin must be one of its sites.
    let site = Some("https://acme.example");
    let (status, first) = session(&server, site, json!({"widget_key": acme_key}));
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["tenant"].as_str(), first["verified"].as_bool()),
        (Some("acme"), Some(false))
    );
    let (status, refused) = session(
        &server,
        Some("https://evil.example"),
        json!({"widget_key": acme_key}),
    );
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("origin_forbidden"))
    );
    let (status, refused) = session(&server, site, json!({"widget_key": "wk_0000"}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, refused) = session(&server, site, json!({"widget_key": acme_key, "colour": 1}));
    assert_eq!(
        (status, refused["code"].as_str()),
        (400, Some("invalid_argument"))
    );

    let conversation = open_and_write(&server, &first, "where is my parcel");
    let visitor = first["token"].as_str().unwrap();
    let (status, page) = history_until(&server, visitor, &conversation, "where is my parcel");
    assert_eq!(status, 200, "{page}");

    // Another visitor of the same tenant neither sees nor writes the conversation.
    let (_, second) = session(&server, site, json!({"widget_key": acme_key}));
    assert_ne!(second["visitor_id"], first["visitor_id"]);
    let other = second["token"].as_str().unwrap();
    let path = format!("/v1/conversations/{conversation}/history");
    let (status, _) = request(&server.query, "GET", &path, Some(other), "");
    assert_eq!(status, 404);
    let send = r#"{"type":"post_message","client_msg_id":"x1","body":"let me in"}"#;
    let commands = format!("/v1/conversations/{conversation}/commands");
    let (status, _) = request(&server.http, "POST", &commands, Some(other), send);
    assert_eq!(status, 404);

    // A visitor of globex cannot act in acme, nor acme's visitor in globex.
    let globex_site = Some("https://globex.example");
    let (status, outsider) = session(&server, globex_site, json!({"widget_key": globex_key}));
    assert_eq!((status, outsider["tenant"].as_str()), (200, Some("globex")));
    let outsider_token = outsider["token"].as_str().unwrap();
    let (status, _) = request(&server.http, "POST", &commands, Some(outsider_token), send);
    assert_eq!(status, 404);
    let (status, _) = request(&server.query, "GET", &path, Some(outsider_token), "");
    assert_eq!(status, 404);
    let globex_conversation = open_and_write(&server, &outsider, "hello globex");
    let into_globex = format!("/v1/conversations/{globex_conversation}/commands");
    let (status, _) = request(&server.http, "POST", &into_globex, Some(visitor), send);
    assert_eq!(status, 404);
    let (status, _) = session(&server, site, json!({"widget_key": globex_key}));
    assert_eq!(status, 403, "globex's key does not work on acme's site");

    // A refresh keeps the visitor and their conversations; a forged one is refused.
    let refresh = json!({"widget_key": acme_key, "refresh": {
        "visitor_id": first["visitor_id"], "secret": first["refresh_secret"]}});
    let (status, renewed) = session(&server, site, refresh);
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["visitor_id"], first["visitor_id"]);
    let (status, _) = history_until(
        &server,
        renewed["token"].as_str().unwrap(),
        &conversation,
        "where is my parcel",
    );
    assert_eq!(status, 200);
    let stolen = json!({"widget_key": acme_key, "refresh": {
        "visitor_id": first["visitor_id"], "secret": second["refresh_secret"]}});
    assert_eq!(session(&server, site, stolen).0, 401);
    let cross = json!({"widget_key": globex_key, "refresh": {
        "visitor_id": first["visitor_id"], "secret": first["refresh_secret"]}});
    assert_eq!(
        session(&server, globex_site, cross).0,
        401,
        "a refresh is bound to its tenant"
    );

    // Identity verification: the business signs its user id; any device gets the same customer.
    let shown = cli(&server, &["show", "acme", "--identity-secret"], &operator);
    let secret = shown["identity_secret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = |user: &str| sign_hex(secret.as_bytes(), user.as_bytes());
    let verify = |user: &str, signature: String| {
        session(
            &server,
            site,
            json!({"widget_key": acme_key,
            "identity": {"user_id": user, "signature": signature}}),
        )
    };
    let (status, laptop) = verify("user-42", signed("user-42"));
    assert_eq!(
        (status, laptop["verified"].as_bool()),
        (200, Some(true)),
        "{laptop}"
    );
    let (_, phone) = verify("user-42", signed("user-42"));
    assert_eq!(phone["visitor_id"], laptop["visitor_id"]);
    let (status, refused) = verify("user-42", signed("user-43"));
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = verify("user-42", "00".repeat(32));
    assert_eq!(status, 401);
    let globex_secret = {
        let (_, shown) = request(
            &server.http,
            "GET",
            "/v1/tenants/globex/identity-secret",
            Some(&globex_operator),
            "",
        );
        shown["secret"].as_str().unwrap().to_owned()
    };
    let (status, _) = verify("user-42", sign_hex(globex_secret.as_bytes(), b"user-42"));
    assert_eq!(status, 401, "another tenant's secret does not verify");
    let (status, _) = request(
        &server.http,
        "GET",
        "/v1/tenants/acme/identity-secret",
        Some(&agent),
        "",
    );
    assert_eq!(status, 404, "agents do not get the secret");
}

#[test]
fn a_business_hours_change_is_applied_by_the_router_and_audited() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let operator = token(data.path(), "acme", "service", "operator");
    let created = cli(&server, &["create", "acme", "--name", "Acme"], &operator);
    let key = created["settings"]["widget_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Open all week (no business hours): a new conversation waits for an agent, no notice.
    let (_, before) = session(&server, None, json!({"widget_key": key}));
    let first = open_and_write(&server, &before, "anyone there?");
    let visitor = before["token"].as_str().unwrap();
    let (status, page) = history_until(&server, visitor, &first, "anyone there?");
    assert_eq!(status, 200);

    // Closed every day from now on, with a message of the tenant's own.
    let hours = json!({"time_zone": "UTC", "utc_offset_minutes": 0, "openings": [], "holidays": ["2026-12-25"]});
    let changed = cli(
        &server,
        &[
            "set",
            "acme",
            "--settings",
            &json!({"business_hours": hours}).to_string(),
            "--set",
            "offline_message=Closed for the holidays, back on Monday",
        ],
        &operator,
    );
    assert_eq!(changed["seq"], 2, "{changed}");

    let (_, after) = session(&server, None, json!({"widget_key": key}));
    let second = open_and_write(&server, &after, "hello?");
    let (status, notice) = history_until(
        &server,
        after["token"].as_str().unwrap(),
        &second,
        "Closed for the holidays",
    );
    assert_eq!(status, 200);
    assert!(
        notice.contains("Closed for the holidays"),
        "the router applied the new hours: {notice}"
    );
    assert!(
        !page.contains("Closed for the holidays"),
        "before the change it was open: {page}"
    );

    // The audit replay of the tenant's settings: both changes, who made them, what changed.
    let auditor = token(data.path(), "acme", "auditor", "audit-1");
    let (status, body) = support::get_bytes(&server.query, "/v1/settings/replay", &auditor);
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{body}");
    let lines: Vec<Value> = body
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{body}");
    let change = &lines[1]["event"];
    assert_eq!(change["type"], "switchboard.tenant.TenantSettingsChanged");
    assert_eq!(change["envelope"]["actor"]["id"], "operator");
    assert_eq!(
        change["changed"],
        json!(["business_hours", "offline_message"])
    );
    let settings: Value = serde_json::from_str(change["settings"].as_str().unwrap()).unwrap();
    assert_eq!(
        settings["business_hours"]["holidays"],
        json!(["2026-12-25"])
    );
    let customer = before["token"].as_str().unwrap();
    let (status, _) = request(
        &server.query,
        "GET",
        "/v1/settings/replay",
        Some(customer),
        "",
    );
    assert_eq!(status, 403, "customers do not audit");
}
