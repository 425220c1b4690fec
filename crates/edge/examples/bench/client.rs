//! One connection to any target, speaking the bench protocol over that target's transport,
//! and a minimal HTTP/1.1 client for history reads.
//!
//! Switchboard gets its own protocol (token in the subprotocol, `welcome` on success). The
//! Node peers get the same JSON frames after a `hello`; Socket.IO wraps each of them in its
//! Engine.IO v4 / Socket.IO v5 text framing, which [`Conn`] writes and strips here.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::target::{Endpoint, Transport};
use crate::Error;

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;
type Sink = Arc<Mutex<SplitSink<Ws, Message>>>;

/// Who a connection is: the tenant, `customer` or `agent`, and the subject.
#[derive(Clone, Debug)]
pub struct Who {
    pub tenant: String,
    pub role: &'static str,
    pub subject: String,
}

/// A connected, authenticated client.
#[derive(Debug)]
pub struct Conn {
    sink: Sink,
    stream: SplitStream<Ws>,
    socket_io: bool,
}

/// The writing half of a [`Conn`], for a task that sends while another reads.
#[derive(Clone, Debug)]
pub struct Sender {
    sink: Sink,
    socket_io: bool,
}

impl Sender {
    pub async fn send(&self, frame: &Value) -> Result<(), Error> {
        let text = if self.socket_io {
            format!("42[\"frame\",{frame}]")
        } else {
            frame.to_string()
        };
        self.sink.lock().await.send(Message::text(text)).await?;
        Ok(())
    }
}

impl Conn {
    pub fn sender(&self) -> Sender {
        Sender {
            sink: self.sink.clone(),
            socket_io: self.socket_io,
        }
    }

    pub async fn send(&self, frame: &Value) -> Result<(), Error> {
        self.sender().send(frame).await
    }

    /// The next protocol frame; transport frames (pings, Engine.IO packets) are handled here.
    pub async fn recv(&mut self) -> Result<Value, Error> {
        loop {
            let text = match self.stream.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            };
            if !self.socket_io {
                return Ok(serde_json::from_str(&text)?);
            }
            // Engine.IO: 2 = ping (answer 3), 1 = close, 4 = message; Socket.IO inside a
            // message: 0 = connect, 1 = disconnect, 2 = event (["name", payload]).
            match text.as_bytes() {
                b"2" => {
                    self.sink.lock().await.send(Message::text("3")).await?;
                }
                [b'4', b'2', ..] => {
                    let (_, frame): (String, Value) = serde_json::from_str(&text[2..])?;
                    return Ok(frame);
                }
                [b'1', ..] | [b'4', b'1', ..] => return Err("socket.io disconnect".into()),
                _ => {}
            }
        }
    }

    /// Waits for the answer carrying `kind` (skipping everything else), or fails on `error`.
    pub async fn expect(&mut self, kind: &str) -> Result<Value, Error> {
        loop {
            let frame = self.recv().await?;
            if frame["type"] == kind {
                return Ok(frame);
            }
            if frame["type"] == "error" {
                return Err(format!("expected {kind}, got {frame}").into());
            }
        }
    }
}

/// Connects `who` to `server` from the local address `source` (127.0.0.x spreads ephemeral
/// ports over several addresses) and completes the hello of its protocol.
pub async fn connect(server: &Endpoint, who: &Who, source: IpAddr) -> Result<Conn, Error> {
    let (path, socket_io) = match server.transport {
        Transport::Switchboard => ("/v1/ws", false),
        Transport::Ws => ("/v1/ws", false),
        Transport::SocketIo => ("/socket.io/?EIO=4&transport=websocket", true),
    };
    let mut request = format!("ws://{}{path}", server.edge).into_client_request()?;
    if server.transport == Transport::Switchboard {
        let protocols = format!("switchboard.v1, bearer.{}", server.token(who)?);
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(&protocols)?);
    }
    let stream = tcp(server.edge, source).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
    let (sink, mut stream) = ws.split();
    let sink = Arc::new(Mutex::new(sink));
    if socket_io {
        // The Engine.IO open packet, then Socket.IO's connect to the default namespace.
        let open = next_text(&mut stream).await?;
        if !open.starts_with('0') {
            return Err(format!("no engine.io open packet: {open}").into());
        }
        sink.lock().await.send(Message::text("40")).await?;
        let connected = next_text(&mut stream).await?;
        if !connected.starts_with("40") {
            return Err(format!("no socket.io connect: {connected}").into());
        }
    }
    let mut conn = Conn {
        sink,
        stream,
        socket_io,
    };
    if server.transport != Transport::Switchboard {
        conn.send(&json!({"type": "hello", "tenant": who.tenant, "role": who.role, "subject": who.subject}))
            .await?;
    }
    conn.expect("welcome").await?;
    Ok(conn)
}

async fn next_text(stream: &mut SplitStream<Ws>) -> Result<String, Error> {
    loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn tcp(to: SocketAddr, source: IpAddr) -> Result<TcpStream, Error> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    let stream = socket.connect(to).await?;
    // Small frames: never let Nagle hold one back waiting for an ACK.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A keep-alive HTTP/1.1 connection for GET requests.
#[derive(Debug)]
pub struct Http {
    stream: BufReader<TcpStream>,
    host: SocketAddr,
}

impl Http {
    pub async fn connect(host: SocketAddr, source: IpAddr) -> Result<Self, Error> {
        Ok(Self {
            stream: BufReader::new(tcp(host, source).await?),
            host,
        })
    }

    /// GETs `path`; answers the status and the body's length.
    pub async fn get(&mut self, path: &str, token: Option<&str>) -> Result<(u16, usize), Error> {
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n{auth}\r\n", self.host);
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line.get(9..12).unwrap_or("").parse()?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err("connection closed in the headers".into());
            }
            let header = line.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("content-length:") {
                length = Some(v.trim().parse::<usize>()?);
            } else if header.starts_with("transfer-encoding:") && header.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk).await?;
                body.extend_from_slice(&chunk[..size]);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length.ok_or("no content-length")?, 0);
            self.stream.read_exact(&mut body).await?;
        }
        Ok((status, body.len()))
    }
}
