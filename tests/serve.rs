//! `switchboard serve` as an operator runs it: a real process on a data directory, real
//! sockets, real tokens. Acknowledged sends survive a restart and retries stay idempotent.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::Value;
use support::{Server, request, switchboard};

fn start(data: &Path) -> Server {
    Server::start(data, &[])
}

fn token(data: &Path, role: &str, subject: &str) -> String {
    support::token(data, role, subject)
}

#[test]
fn serve_takes_commands_and_keeps_them_across_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let customer = token(data.path(), "customer", "cust-1");
    let server = start(data.path());

    let (status, opened) = request(
        &server.http,
        "POST",
        "/v1/conversations",
        Some(&customer),
        r#"{"customer_id":"cust-1","channel":"web"}"#,
    );
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/conversations/{conversation}/commands");
    let send = r#"{"type":"post_message","client_msg_id":"m1","body":"my order is late"}"#;
    let (status, first) = request(&server.http, "POST", &path, Some(&customer), send);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["unchanged"], false);

    let (status, body) = request(&server.http, "POST", &path, None, send);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let stranger = token(data.path(), "customer", "cust-2");
    let (status, body) = request(&server.http, "POST", &path, Some(&stranger), send);
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    // The projector catches up in the background; a reader sees the message once it has.
    let history = format!("/v1/conversations/{conversation}/history");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let page = loop {
        let (status, page) = request(&server.query, "GET", &history, Some(&customer), "");
        let projected = status == 200 && page.to_string().contains("my order is late");
        if projected || std::time::Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(
        page.to_string().contains("my order is late"),
        "the customer reads their message back: {page}"
    );
    let (status, _) = request(&server.query, "GET", &history, Some(&stranger), "");
    assert_eq!(status, 404, "another customer finds nothing");
    let auditor = token(data.path(), "auditor", "audit-1");
    let (status, verdict) = request(
        &server.query,
        "GET",
        &format!("/v1/conversations/{conversation}/verify"),
        Some(&auditor),
        "",
    );
    assert_eq!(status, 200, "{verdict}");
    assert!(verdict.to_string().contains("intact"), "{verdict}");

    let mut stream = TcpStream::connect(&server.edge).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        server.edge
    )
    .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("<html"),
        "the edge serves the web UI"
    );

    let (status, subjects) = request(&server.query, "GET", "/subjects", None, "");
    assert_eq!(status, 200);
    assert_eq!(subjects.as_array().unwrap().len(), 20);
    drop(server);

    let server = start(data.path());
    let (status, retry) = request(&server.http, "POST", &path, Some(&customer), send);
    assert_eq!(status, 200, "{retry}");
    assert_eq!(
        (retry["seq"].clone(), retry["unchanged"].clone()),
        (first["seq"].clone(), Value::Bool(true))
    );
    let (_, next) = request(
        &server.http,
        "POST",
        &path,
        Some(&customer),
        r#"{"type":"post_message","client_msg_id":"m2","body":"hello?"}"#,
    );
    // The router may append its own event (queued) in between: the seq goes on, never back.
    assert!(
        next["seq"].as_u64().unwrap() > first["seq"].as_u64().unwrap(),
        "the sequence continues: {next} after {first}"
    );
}

#[test]
fn bad_configuration_stops_serve_with_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let out = switchboard()
        .args([
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--set",
            "listen.nope=1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid configuration") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[test]
fn the_admin_listener_answers_health_readiness_and_metrics() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    let (status, _) = request(&server.admin, "GET", "/healthz", None, "");
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut stream = TcpStream::connect(&server.admin).unwrap();
        write!(
            stream,
            "GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        if response.starts_with("HTTP/1.1 200") {
            assert!(response.contains("ready"), "{response}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready: {response}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut stream = TcpStream::connect(&server.admin).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("switchboard_"), "{response}");
}

#[test]
fn a_router_without_ingest_is_refused_before_anything_starts() {
    let data = tempfile::tempdir().unwrap();
    let out = switchboard()
        .args(["run", "--roles", "router", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("router role runs in a process with the ingest role"),
        "{stderr}"
    );
}
