//! `switchboard serve` as an operator runs it: a real process on a data directory, real
//! sockets, real tokens. Acknowledged sends survive a restart and retries stay idempotent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct Server {
    child: Child,
    http: String,
    query: String,
    edge: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn switchboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

fn start(data: &Path) -> Server {
    let mut child = switchboard()
        .args(["serve", "--data-dir", data.to_str().unwrap()])
        .args([
            "--set",
            "listen.ingest_grpc=127.0.0.1:0",
            "--set",
            "listen.ingest_http=127.0.0.1:0",
        ])
        .args([
            "--set",
            "listen.query_http=127.0.0.1:0",
            "--set",
            "log.conversation_partitions=4",
        ])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut http, mut query, mut edge) = (None, None, None);
    while http.is_none() || query.is_none() || edge.is_none() {
        let line = lines
            .next()
            .expect("serve announces its endpoints")
            .unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ' ']).next())
            .map(str::to_owned);
        if line.contains("commands  HTTP") {
            http = address;
        } else if line.contains("queries   HTTP") {
            query = address;
        } else if line.contains("widget") {
            edge = address;
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Server {
        child,
        http: http.unwrap(),
        query: query.unwrap(),
        edge: edge.unwrap(),
    }
}

fn token(data: &Path, role: &str, subject: &str) -> String {
    let out = switchboard()
        .args([
            "token",
            "--data-dir",
            data.to_str().unwrap(),
            "--tenant",
            "acme",
            "--role",
            role,
            "--subject",
            subject,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A minimal HTTP/1.1 request: status and JSON body.
fn request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Bodies may come chunked; the JSON object is between the first '{' or '[' and the last.
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |e| e + 1);
    (
        status,
        serde_json::from_str(&body[start..end]).unwrap_or(Value::Null),
    )
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
    assert_eq!(subjects.as_array().unwrap().len(), 19);
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
    assert_eq!(
        next["seq"].as_u64(),
        Some(first["seq"].as_u64().unwrap() + 1),
        "the sequence continues"
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
