//! A protocol v1 client on tokio-tungstenite.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while looking for another kind, in arrival order.
    pending: std::collections::VecDeque<Value>,
}

/// How a connection attempt ended.
#[derive(Debug)]
pub enum Connected {
    Welcome(Box<Client>, Value),
    /// The server answered and closed: the error frame (if any) and the close code.
    Refused(Option<Value>, Option<u16>),
}

impl Connected {
    pub fn client(self) -> Client {
        match self {
            Self::Welcome(client, _) => *client,
            Self::Refused(frame, code) => panic!("refused: {frame:?} {code:?}"),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

/// Connects with the token in `Sec-WebSocket-Protocol` (or in a first `auth` frame when
/// `in_frame`), optionally from an Origin.
pub async fn connect_with(
    url: &str,
    token: &str,
    in_frame: bool,
    origin: Option<&str>,
) -> Connected {
    let mut request = url.into_client_request().unwrap();
    let protocols = if in_frame {
        "switchboard.v1".to_owned()
    } else {
        format!("switchboard.v1, bearer.{token}")
    };
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&protocols).unwrap(),
    );
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("switchboard.v1")
    );
    let mut client = Client {
        ws,
        pending: Default::default(),
    };
    if in_frame {
        client.send(json!({"type": "auth", "token": token})).await;
    }
    let first = client.next_frame().await;
    match first {
        Ok(frame) if frame["type"] == "welcome" => Connected::Welcome(Box::new(client), frame),
        Ok(frame) => {
            let code = client.closed().await;
            Connected::Refused(Some(frame), code)
        }
        Err(code) => Connected::Refused(None, code),
    }
}

/// The handshake alone (v1, no token): the next frame the client sends is its first.
pub async fn connect_bare(url: &str) -> Client {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("switchboard.v1"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    Client {
        ws,
        pending: Default::default(),
    }
}

pub async fn connect(url: &str, token: &str) -> Client {
    connect_with(url, token, false, None).await.client()
}

impl Client {
    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: String) -> Result<(), Error> {
        self.ws.send(Message::text(text)).await
    }

    /// The next protocol frame; `Err(close code)` when the server closed.
    pub async fn next_frame(&mut self) -> Result<Value, Option<u16>> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(frame);
        }
        self.read_frame().await
    }

    async fn read_frame(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame within 10 s");
            match next {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next frame of type `kind`; frames of other kinds stay for later reads.
    pub async fn expect(&mut self, kind: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|f| f["type"] == kind) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let frame = self
                .read_frame()
                .await
                .unwrap_or_else(|code| panic!("closed with {code:?} waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
            if frame["type"] == "error" && kind != "error" {
                panic!("error while waiting for {kind}: {frame}");
            }
            self.pending.push_back(frame);
        }
    }

    /// Reads until the server closes; the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next_frame().await {
                Ok(_) => continue,
                Err(code) => return code,
            }
        }
    }

    /// The next frame of type `kind`, however long it takes (for paused-time tests); frames of
    /// other kinds are dropped.
    pub async fn expect_untimed(&mut self, kind: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|f| f["type"] == kind) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == kind {
                        return frame;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    panic!("closed with {frame:?} waiting for {kind}")
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => panic!("closed waiting for {kind}"),
            }
        }
    }

    /// Reads until the server closes, however long it takes (for paused-time tests).
    pub async fn closed_untimed(&mut self) -> Option<u16> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn open(&mut self) -> String {
        self.send(json!({"type": "open", "ref": "open"})).await;
        let ack = self.expect("ack").await;
        ack["conversation_id"].as_str().unwrap().to_owned()
    }

    pub async fn subscribe(&mut self, conversation: &str, since: u64) -> Value {
        self.send(json!({"type": "subscribe", "ref": "sub", "conversation_id": conversation, "since_seq": since})).await;
        self.expect("subscribed").await
    }

    pub async fn say(&mut self, conversation: &str, id: &str, body: &str) {
        self.send(json!({"type": "send", "ref": id, "conversation_id": conversation, "client_msg_id": id, "body": body})).await;
    }
}

pub fn close_code(code: CloseCode) -> u16 {
    u16::from(code)
}
