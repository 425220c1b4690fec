//! The harness of the binary's end-to-end tests: `switchboard serve` as a real process on a
//! data directory with every listener on 127.0.0.1:0, tokens from the `token` command, a
//! minimal HTTP/1.1 client and a protocol-v1 WebSocket client.

#![allow(dead_code, reason = "each test binary uses a part of the harness")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A running `switchboard serve`; dropping it kills the process (SIGKILL).
pub struct Server {
    child: Child,
    pub http: String,
    pub grpc: String,
    pub query: String,
    pub edge: String,
    pub admin: String,
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
        let (mut http, mut grpc, mut query, mut edge, mut admin) = (None, None, None, None, None);
        while http.is_none()
            || grpc.is_none()
            || query.is_none()
            || edge.is_none()
            || admin.is_none()
        {
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
            } else if line.contains("commands  gRPC") {
                grpc = address;
            } else if line.contains("queries   HTTP") {
                query = address;
            } else if line.contains("widget") {
                edge = address;
            } else if line.contains("admin") {
                admin = address;
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server {
            child,
            http: http.unwrap(),
            grpc: grpc.unwrap(),
            query: query.unwrap(),
            edge: edge.unwrap(),
            admin: admin.unwrap(),
        }
    }

    /// SIGKILL, as a crash: nothing is flushed or closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let out = switchboard()
        .args(["token", "--data-dir", data.to_str().unwrap()])
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
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
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

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A protocol-v1 client, authenticated in the handshake.
pub struct WsClient {
    socket: Socket,
}

impl WsClient {
    /// Connects and waits for `welcome`; `None` when the server is not there.
    pub async fn connect(edge: &str, token: &str) -> Option<Self> {
        let mut request = format!("ws://{edge}/v1/ws").into_client_request().ok()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            format!("switchboard.v1, bearer.{token}").parse().ok()?,
        );
        let (socket, _) = tokio_tungstenite::connect_async(request).await.ok()?;
        let mut client = Self { socket };
        let welcome = client.next().await?;
        (welcome["type"] == "welcome").then_some(client)
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
