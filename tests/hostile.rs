//! Hostile clients against a running `serve`: slowloris and megabytes of garbage on every
//! port, oversized and malformed WebSocket frames, a reader that stops reading, a flooder and
//! a client that never authenticates. Each is refused or cut with the code `docs/protocol.md`
//! documents, while a well-behaved client on the same server keeps its latency
//! (`docs/reliability.md`, "Hostile clients").

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, WsClient, token};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The slowest round trip the well-behaved client may see while the others attack.
const BOUNDED: Duration = Duration::from_secs(2);

/// A well-behaved customer: a `ping` on its session and a fresh HTTP request to the edge,
/// every 100 ms, until stopped; gives the slowest of them.
struct Probe {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(Duration, usize)>,
}

impl Probe {
    async fn start(server: &Server, data: &Path) -> Self {
        let token = token(data, "customer", "polite");
        let mut client = WsClient::connect(&server.edge, &token).await.unwrap();
        let edge = server.edge.clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let (mut slowest, mut rounds) = (Duration::ZERO, 0);
            loop {
                let started = Instant::now();
                client
                    .send(json!({"type": "ping", "ref": "probe"}))
                    .await
                    .unwrap();
                let pong = tokio::time::timeout(BOUNDED, client.next())
                    .await
                    .expect("a pong within the bound")
                    .expect("the polite session stays open");
                assert_eq!(pong["type"], "pong", "{pong}");
                let mut http = TcpStream::connect(&edge).await.unwrap();
                http.write_all(b"GET /healthz HTTP/1.1\r\nhost: e\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut answer = String::new();
                http.read_to_string(&mut answer).await.unwrap();
                assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                slowest = slowest.max(started.elapsed());
                rounds += 1;
                tokio::select! {
                    _ = &mut stopped => return (slowest, rounds),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Self { stop, task }
    }

    /// Stops the probe and checks it kept working, within [`BOUNDED`].
    async fn check(self) {
        // A few rounds at least, however quick the attack was.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let _ = self.stop.send(());
        let (slowest, rounds) = self.task.await.expect("the polite client never failed");
        assert!(rounds >= 3, "only {rounds} rounds");
        assert!(slowest < BOUNDED, "a polite round trip took {slowest:?}");
    }
}

/// Every port `serve` opens, by name.
fn ports(server: &Server) -> [(&'static str, String); 6] {
    [
        ("edge", server.edge.clone()),
        ("ingest HTTP", server.http.clone()),
        ("ingest gRPC", server.grpc.clone()),
        ("query HTTP", server.query.clone()),
        ("query gRPC", server.query_grpc.clone()),
        ("admin", server.admin.clone()),
    ]
}

/// Sends an HTTP/1.1 head one byte every 200 ms, never finishing it: how long until the
/// server hangs up.
async fn slowloris(address: String) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let head = b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ";
    let mut buf = [0u8; 512];
    for byte in head.iter().chain(std::iter::repeat(&b'a')) {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::select! {
            read = stream.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { break },
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{address} never hung up"
        );
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_on_every_port_is_dropped_at_the_handshake_deadline() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let probe = Probe::start(&server, data.path()).await;
    let attacks: Vec<_> = ports(&server)
        .into_iter()
        .map(|(name, address)| (name, tokio::spawn(slowloris(address))))
        .collect();
    for (name, attack) in attacks {
        let held = attack.await.unwrap();
        // The default `listen.limits.handshake_timeout_ms` is 5 s.
        assert!(
            held >= Duration::from_millis(4_500) && held < Duration::from_secs(8),
            "{name}: dropped after {held:?}"
        );
    }
    probe.check().await;
}

/// Deterministic noise: xorshift bytes.
fn garbage(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes `noise` to `address` while reading: what the server said before it hung up.
async fn spray(address: String, noise: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        for chunk in noise.chunks(64 * 1024) {
            if writer.write_all(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut said = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut said)).await;
    assert!(read.is_ok(), "{address} kept reading garbage");
    writing.abort();
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn megabytes_of_garbage_on_every_port_are_refused_and_the_connection_closed() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let probe = Probe::start(&server, data.path()).await;
    for (name, address) in ports(&server) {
        for noise in [garbage(4 << 20), b"GET / HTTP/1.1\r\nx: ".repeat(200_000)] {
            let said = spray(address.clone(), noise).await;
            let grpc = name.ends_with("gRPC");
            // HTTP ports answer 400 or 431 (or nothing, when the reset beat the answer);
            // gRPC ports speak HTTP/2 only and hang up.
            let text = String::from_utf8_lossy(&said);
            assert!(
                said.is_empty()
                    || (!grpc
                        && (text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 431")))
                    || (grpc && !text.starts_with("HTTP/1.1 2")),
                "{name}: {text:.200}"
            );
        }
    }
    probe.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_frames_get_their_documented_codes() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &["--set", "edge.auth_timeout_ms=1000"]);
    let probe = Probe::start(&server, data.path()).await;
    let customer = token(data.path(), "customer", "cust-1");

    // Refused frames that leave the session open.
    let mut client = WsClient::connect(&server.edge, &customer).await.unwrap();
    let big = json!({"type": "ping", "ref": "big", "pad": "x".repeat(100 * 1024)});
    for (frame, code) in [
        (Message::Text(big.to_string().into()), "frame_too_large"),
        (Message::Text("{not json".into()), "bad_frame"),
        (
            Message::Text(r#"{"type":"launch","ref":"l"}"#.into()),
            "bad_frame",
        ),
        (Message::Binary(garbage(1024).into()), "unsupported"),
    ] {
        client.send_message(frame).await.unwrap();
        let error = client.next().await.unwrap();
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("error"), Some(code)),
            "{error}"
        );
    }
    client
        .send(json!({"type": "ping", "ref": "after"}))
        .await
        .unwrap();
    assert_eq!(client.next().await.unwrap()["type"], "pong");

    // Above the transport cap (256 KiB): close 1009.
    let mut client = WsClient::connect(&server.edge, &customer).await.unwrap();
    let huge = Message::Text("x".repeat(300 * 1024).into());
    let _ = client.send_message(huge).await;
    assert_eq!(client.until_closed().await.1, Some(1009));

    // Bytes that break the WebSocket framing (an unmasked client frame): close 1009.
    let mut client = WsClient::connect(&server.edge, &customer).await.unwrap();
    client
        .raw()
        .write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .unwrap();
    assert_eq!(client.until_closed().await.1, Some(1009));

    // A handshake without a token and no `auth` frame: close 4001 after the auth timeout.
    let stream = TcpStream::connect(&server.edge).await.unwrap();
    let mut silent = WsClient::handshake(stream, &server.edge, None)
        .await
        .unwrap();
    let started = Instant::now();
    let (frames, code) = silent.until_closed().await;
    assert_eq!(code, Some(4001), "{frames:?}");
    assert_eq!(frames.last().unwrap()["code"], "unauthenticated");
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    probe.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooder_is_rate_limited_then_cut_with_4029() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let probe = Probe::start(&server, data.path()).await;
    let flooder = token(data.path(), "customer", "flooder");
    let mut client = WsClient::connect(&server.edge, &flooder).await.unwrap();
    for i in 0..200 {
        if client
            .send(json!({"type": "ping", "ref": format!("f{i}")}))
            .await
            .is_none()
        {
            break;
        }
    }
    let (frames, code) = client.until_closed().await;
    let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
    let limited: Vec<&Value> = frames
        .iter()
        .filter(|f| f["code"] == "rate_limited")
        .collect();
    // The burst of 40 passes; the default 50 refusals in a row cut the connection.
    assert!((40..=45).contains(&pongs), "{pongs} pongs");
    assert!(limited.len() >= 50, "{} rate_limited", limited.len());
    assert!(
        limited
            .iter()
            .all(|f| f["retry_after_ms"].as_u64().is_some() && f["ref"].is_string())
    );
    assert_eq!(code, Some(4029));
    probe.check().await;
}

/// 6 MiB of messages for a reader that stopped.
const MESSAGES: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_cut_with_4008() {
    let data = tempfile::tempdir().unwrap();
    // A short send queue, so that a few messages overflow it once the socket buffers are
    // full; rates that let one writer fill them quickly (the flooder has its own test).
    let server = Server::start(
        data.path(),
        &[
            "--set",
            "edge.send_queue=8",
            "--set",
            "edge.connection_rate={per_second=1000.0,burst=1000.0}",
            "--set",
            "ingest.admission.staff={per_second=1000.0,burst=1000.0}",
        ],
    );
    let probe = Probe::start(&server, data.path()).await;
    let customer = token(data.path(), "customer", "cust-1");

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.edge.parse().unwrap()).await.unwrap();
    let mut reader = WsClient::handshake(stream, &server.edge, Some(&customer))
        .await
        .unwrap();
    assert_eq!(reader.next().await.unwrap()["type"], "welcome");
    reader
        .send(json!({"type": "open", "ref": "o"}))
        .await
        .unwrap();
    let opened = reader.next().await.unwrap();
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    reader
        .send(json!({"type": "subscribe", "ref": "s", "conversation_id": conversation, "since_seq": 0}))
        .await
        .unwrap();
    loop {
        if reader.next().await.unwrap()["type"] == "subscribed" {
            break;
        }
    }

    // The reader stops reading; a supervisor writes more into the conversation than the
    // socket buffers hold (the server's send buffer grows to 4 MiB on Linux).
    let supervisor = token(data.path(), "supervisor", "sup-1");
    let mut writer = WsClient::connect(&server.edge, &supervisor).await.unwrap();
    let body = "b".repeat(15 * 1024);
    // In batches of 4: the writer's own acks must fit its send queue of 8.
    for batch in (0..MESSAGES).collect::<Vec<_>>().chunks(4) {
        for i in batch {
            let send = json!({"type": "send", "ref": format!("m{i}"),
                "conversation_id": conversation, "client_msg_id": format!("m{i}"), "body": body});
            writer.send(send).await.unwrap();
        }
        for _ in batch {
            let ack = writer.next().await.expect("the writer stays connected");
            assert_eq!(ack["type"], "ack", "{ack}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (frames, code) = tokio::time::timeout(Duration::from_secs(10), reader.until_closed())
        .await
        .expect("the stalled reader is cut");
    assert_eq!(code, Some(4008), "after {} frames", frames.len());
    assert!(
        frames.len() < MESSAGES,
        "the whole backlog came: {}",
        frames.len()
    );
    probe.check().await;
}
