//! The harness of the binary's end-to-end tests: `switchboard serve` as a real process on a
//! data directory with every listener on 127.0.0.1:0, tokens from the `token` command, a
//! minimal HTTP/1.1 client and a protocol-v1 WebSocket client.

#![allow(dead_code, reason = "each test binary uses a part of the harness")]

pub mod kafka;
pub mod node;
pub mod otlp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A running `switchboard serve`; dropping it kills the process (SIGKILL).
pub struct Server {
    child: Child,
    pub http: String,
    pub grpc: String,
    pub query: String,
    pub query_grpc: String,
    pub edge: String,
    pub admin: String,
    /// Reads stderr after the announcement (warnings and errors) until the process ends.
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server {
    /// Starts `serve` on `data` and waits until it announces every endpoint.
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        let mut child = switchboard()
            .args(["serve", "--data-dir", data.to_str().unwrap()])
            .args(every_listener_on_port_zero())
            .args(["--set", "log.conversation_partitions=4"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut http, mut grpc, mut query, mut query_grpc, mut edge, mut admin) =
            (None, None, None, None, None, None);
        while http.is_none()
            || grpc.is_none()
            || query.is_none()
            || query_grpc.is_none()
            || edge.is_none()
            || admin.is_none()
        {
            let line = lines
                .next()
                .expect("serve announces its endpoints")
                .unwrap();
            let address = line
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split(['/', ' ']).next())
                .map(str::to_owned);
            if line.contains("commands  HTTP") {
                http = address;
            } else if line.contains("commands  gRPC") {
                grpc = address;
            } else if line.contains("queries   HTTP") {
                query = address;
            } else if line.contains("queries   gRPC") {
                query_grpc = address;
            } else if line.contains("widget") {
                edge = address;
            } else if line.contains("admin") {
                admin = address;
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        let stderr = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        Server {
            child,
            stderr: Some(stderr),
            http: http.unwrap(),
            grpc: grpc.unwrap(),
            query: query.unwrap(),
            query_grpc: query_grpc.unwrap(),
            edge: edge.unwrap(),
            admin: admin.unwrap(),
        }
    }

    /// SIGKILL, as a crash: nothing is flushed or closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Every line the process wrote to stderr after its announcement; call it once the
    /// process has ended (it waits for the end of the pipe).
    pub fn stderr_to_end(&mut self) -> Vec<String> {
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap())
            .unwrap_or_default()
    }

    /// Sends the process `signal` (`HUP`, `TERM`, …) by the `kill` command.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIG{signal} reached the server");
    }

    /// SIGTERM, as Kubernetes or compose stop a container: how the process exited, and how
    /// long it took; `None` when it was still running after `within` (it is killed then).
    pub fn terminate(&mut self, within: Duration) -> Option<(ExitStatus, Duration)> {
        let asked = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM reached the server");
        while asked.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, asked.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        None
    }
}

/// The binary, with none of the test run's `SWITCHBOARD_*` variables (such as
/// `SWITCHBOARD_TEST_SCYLLA`), which its configuration would refuse as unknown keys.
pub fn switchboard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SWITCHBOARD_") {
            command.env_remove(name);
        }
    }
    command
}

/// `--set` flags that put every listener the binary opens on an ephemeral port.
pub fn every_listener_on_port_zero() -> Vec<String> {
    [
        "edge",
        "ingest_grpc",
        "ingest_http",
        "query_http",
        "query_grpc",
        "admin",
    ]
    .iter()
    .flat_map(|name| ["--set".to_owned(), format!("listen.{name}=127.0.0.1:0")])
    .collect()
}

/// A token of tenant `acme` signed by the instance on `data`.
pub fn token(data: &Path, role: &str, subject: &str) -> String {
    issue_token(&["--data-dir", data.to_str().unwrap()], role, subject)
}

/// A token of tenant `acme` from `switchboard token`, the instance named by `instance`
/// (`--data-dir DIR` or `--config FILE`).
pub fn issue_token(instance: &[&str], role: &str, subject: &str) -> String {
    let out = switchboard()
        .arg("token")
        .args(instance)
        .args(["--tenant", "acme", "--role", role, "--subject", subject])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A minimal HTTP/1.1 request: status and JSON body. Panics when the server cannot be reached.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    try_request(address, method, path, token, body).expect("the server answers")
}

/// [`request`], or `None` when the connection fails (the server is down or restarting).
pub fn try_request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, Value)> {
    let (status, body) = try_request_text(address, method, path, token, body)?;
    // Bodies may come chunked; the JSON value is between the first '{' or '[' and the last.
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |e| e + 1);
    Some((
        status,
        serde_json::from_str(&body[start..end]).unwrap_or(Value::Null),
    ))
}

/// A request whose body is returned as it came (NDJSON, Avro, chunked): status and body.
pub fn try_request_text(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    try_request_with(address, method, path, &headers, body)
}

/// [`request`] with these headers (and no token unless one of them is `authorization`).
pub fn request_with(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let (status, body) =
        try_request_with(address, method, path, headers, body).expect("the server answers");
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |e| e + 1);
    (
        status,
        serde_json::from_str(&body[start..end]).unwrap_or(Value::Null),
    )
}

fn try_request_with(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response);
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_owned()))
}

/// A GET answered with its status and raw body bytes (chunked bodies reassembled).
pub fn get_bytes(address: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(address).expect("the server answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let mut body = &response[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return (status, body.to_vec());
    }
    let mut out = Vec::new();
    loop {
        let line = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&body[..line]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line + 2..];
        if size == 0 {
            return (status, out);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A protocol-v1 client, authenticated in the handshake.
pub struct WsClient {
    socket: Socket,
}

impl WsClient {
    /// Connects and waits for `welcome`; `None` when the server is not there.
    pub async fn connect(edge: &str, token: &str) -> Option<Self> {
        let stream = tokio::net::TcpStream::connect(edge).await.ok()?;
        let mut client = Self::handshake(stream, edge, Some(token)).await?;
        let welcome = client.next().await?;
        (welcome["type"] == "welcome").then_some(client)
    }

    /// The WebSocket handshake over `stream` (a socket the test shaped, e.g. with a small
    /// receive buffer), with the token in it when there is one; does not wait for `welcome`.
    pub async fn handshake(
        stream: tokio::net::TcpStream,
        edge: &str,
        token: Option<&str>,
    ) -> Option<Self> {
        let mut request = format!("ws://{edge}/v1/ws").into_client_request().ok()?;
        let offer = match token {
            Some(token) => format!("switchboard.v1, bearer.{token}"),
            None => "switchboard.v1".to_owned(),
        };
        request
            .headers_mut()
            .insert("sec-websocket-protocol", offer.parse().ok()?);
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (socket, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .ok()?;
        Some(Self { socket })
    }

    /// Sends any message: binary, oversized, not JSON.
    pub async fn send_message(&mut self, message: Message) -> Option<()> {
        self.socket.send(message).await.ok()
    }

    /// The socket under the WebSocket, to write bytes that are no valid frame.
    pub fn raw(&mut self) -> &mut tokio::net::TcpStream {
        match self.socket.get_mut() {
            tokio_tungstenite::MaybeTlsStream::Plain(stream) => stream,
            _ => unreachable!("the harness connects in clear"),
        }
    }

    /// Reads to the end: the JSON frames that came, and the close code (`None` when the
    /// connection ended without a close frame).
    pub async fn until_closed(&mut self) -> (Vec<Value>, Option<u16>) {
        let mut frames = Vec::new();
        while let Some(message) = self.socket.next().await {
            match message {
                Ok(Message::Text(text)) => frames.extend(serde_json::from_str(&text).ok()),
                Ok(Message::Close(close)) => return (frames, close.map(|c| c.code.into())),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (frames, None)
    }

    pub async fn send(&mut self, frame: Value) -> Option<()> {
        self.socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .ok()
    }

    /// The next JSON frame; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

/// A self-signed certificate for `localhost`: its PEM, its key's PEM, and its DER.
pub fn self_signed() -> (String, String, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().clone(),
    )
}

/// A TLS connection to `address` as `localhost`, trusting only `roots`, offering `alpn`.
pub async fn tls_connect(
    address: &str,
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio_rustls::rustls;
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(std::io::Error::other)?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let stream = tokio::net::TcpStream::connect(address).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, stream)
        .await
}

/// Chat load over HTTP: one customer posting to one conversation, one message after another,
/// on whichever server `http` names now. A send that fails (the server or its broker is down)
/// is retried with the same `client_msg_id` until it is acknowledged.
pub struct Load {
    pub http: Mutex<String>,
    pub acked: Mutex<Vec<(String, u64)>>,
    pub stop: AtomicBool,
}

impl Load {
    pub fn new(http: &str) -> Self {
        Self {
            http: Mutex::new(http.to_owned()),
            acked: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        }
    }

    /// Sends until [`Load::stop`] is set; every acknowledgement lands in [`Load::acked`].
    pub fn send_until_stopped(&self, customer: &str, conversation: &str) {
        let path = format!("/v1/conversations/{conversation}/commands");
        let mut n = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let id = format!("m-{n}");
            let body = serde_json::json!({"type": "post_message", "client_msg_id": id, "body": format!("message {n}")});
            let http = self.http.lock().unwrap().clone();
            match try_request(&http, "POST", &path, Some(customer), &body.to_string()) {
                Some((200, ack)) => {
                    let seq = ack["seq"].as_u64().expect("an ack has a seq");
                    self.acked.lock().unwrap().push((id, seq));
                    n += 1;
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    pub fn acked(&self) -> Vec<(String, u64)> {
        self.acked.lock().unwrap().clone()
    }
}

/// Every event of the conversation from the query service at `query`, page after page.
pub fn history(query: &str, token: &str, conversation: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0u64;
    loop {
        let path = format!("/v1/conversations/{conversation}/history?after={after}&limit=200");
        let (status, page) = request(query, "GET", &path, Some(token), "");
        assert_eq!(status, 200, "{page}");
        let entries = page["events"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            return events;
        }
        after = entries.last().unwrap()["seq"].as_u64().unwrap();
        events.extend(entries);
    }
}

/// The promise every fault test checks: each acknowledged message is in `history` exactly
/// once, at the seq it was acknowledged with, and the history is gapless from seq 1.
pub fn assert_every_ack_once_in_order(history: &[Value], acked: &[(String, u64)]) {
    let mut seen = std::collections::HashMap::new();
    for event in history {
        if event["kind"] == "switchboard.conversation.MessagePosted" {
            let id = event["event"]["client_msg_id"].as_str();
            let id = id.unwrap_or_else(|| panic!("a message has its client id: {event}"));
            let seq = event["seq"].as_u64().unwrap();
            assert!(
                seen.insert(id.to_owned(), seq).is_none(),
                "{id} is in the history twice"
            );
        }
    }
    for (id, seq) in acked {
        assert_eq!(
            seen.get(id),
            Some(seq),
            "{id} was acknowledged at seq {seq}"
        );
    }
    let seqs: Vec<u64> = history.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "history is gapless"
    );
}

/// Follows the conversation from `since` until the connection drops or `until` passes,
/// checking each event continues the sequence. Returns the last seq seen.
pub async fn follow(
    edge: &str,
    agent: &str,
    conversation: &str,
    since: u64,
    until: Instant,
) -> u64 {
    let mut last = since;
    let Some(mut ws) = WsClient::connect(edge, agent).await else {
        return last;
    };
    let subscribe = serde_json::json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": since});
    if ws.send(subscribe.clone()).await.is_none() {
        return last;
    }
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => return last,
        };
        match frame["type"].as_str() {
            Some("event") => {
                let seq = frame["seq"].as_u64().unwrap();
                assert_eq!(
                    seq,
                    last + 1,
                    "the follower got seq {seq} after {last}: seqs {}..{} were lost at the seam",
                    last + 1,
                    seq - 1
                );
                last = seq;
            }
            Some("error") if frame["code"] == "history_unavailable" => {
                // History is catching up after the restart: ask again.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let again = serde_json::json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": last});
                if ws.send(again).await.is_none() {
                    return last;
                }
            }
            Some("error") => panic!("the follower was refused: {frame}"),
            _ => {}
        }
    }
}
