//! TLS on the public listeners of a running `serve`: every one of them speaks TLS only, with
//! the ALPN its protocol needs (ingest gRPC when `listen.tls.ingest_grpc` says so, as here);
//! the admin listener stays plain; a replaced certificate is
//! served to new connections without a restart.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use support::{Server, request, self_signed, tls_connect, token};

/// Writes the pair as a renewal tool would: each file written aside, then renamed over.
fn install(dir: &Path, cert: &str, key: &str) {
    for (name, pem) in [("key.pem", key), ("cert.pem", cert)] {
        let aside = dir.join(format!("{name}.new"));
        std::fs::write(&aside, pem).unwrap();
        std::fs::rename(&aside, dir.join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_listeners_speak_only_tls_and_a_replaced_certificate_is_served_without_restart() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, first) = self_signed();
    install(certs.path(), &cert, &key);
    let cert_file = format!(
        "listen.tls.cert_file={}",
        certs.path().join("cert.pem").display()
    );
    let key_file = format!(
        "listen.tls.key_file={}",
        certs.path().join("key.pem").display()
    );
    let server = Server::start(
        data.path(),
        &[
            "--set",
            &cert_file,
            "--set",
            &key_file,
            "--set",
            "listen.tls.reload_interval_ms=100",
            "--set",
            "listen.tls.ingest_grpc=true",
        ],
    );

    let offered: &[&[u8]] = &[b"h2", b"http/1.1"];
    for (address, alpn) in [
        (&server.edge, &b"http/1.1"[..]),
        (&server.http, b"h2"),
        (&server.query, b"h2"),
        (&server.grpc, b"h2"),
        (&server.query_grpc, b"h2"),
    ] {
        let tls = tls_connect(address, std::slice::from_ref(&first), offered)
            .await
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        let (_, session) = tls.get_ref();
        assert_eq!(session.alpn_protocol(), Some(alpn), "{address}");
        assert_eq!(session.peer_certificates().unwrap()[0], first, "{address}");
        // In clear, the same port answers no HTTP.
        assert!(
            support::try_request(address, "GET", "/healthz", None, "")
                .is_none_or(|(s, _)| s != 200),
            "{address} answered in clear"
        );
    }
    assert_eq!(request(&server.admin, "GET", "/healthz", None, "").0, 200);

    // HTTP and a WebSocket session over TLS on the edge.
    let mut page = tls_connect(&server.edge, std::slice::from_ref(&first), &[b"http/1.1"])
        .await
        .unwrap();
    page.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    page.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let customer = token(data.path(), "customer", "cust-1");
    let stream = tls_connect(&server.edge, std::slice::from_ref(&first), &[b"http/1.1"])
        .await
        .unwrap();
    let mut handshake = "wss://localhost/v1/ws".into_client_request().unwrap();
    handshake.headers_mut().insert(
        "sec-websocket-protocol",
        format!("switchboard.v1, bearer.{customer}")
            .parse()
            .unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::client_async(handshake, stream)
        .await
        .unwrap();
    let welcome = socket.next().await.unwrap().unwrap();
    assert!(
        matches!(&welcome, Message::Text(t) if t.contains("\"welcome\"")),
        "{welcome:?}"
    );

    // Renewed on disk: new connections get the new certificate, the process never restarts.
    let (cert, key, second) = self_signed();
    install(certs.path(), &cert, &key);
    let trusted = [first.clone(), second.clone()];
    let started = Instant::now();
    loop {
        let tls = tls_connect(&server.edge, &trusted, &[b"http/1.1"])
            .await
            .unwrap();
        if tls.get_ref().1.peer_certificates().unwrap()[0] == second {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still the old certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A file that does not load leaves the certificate in use.
    std::fs::write(certs.path().join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for address in [&server.edge, &server.query] {
        let tls = tls_connect(address, std::slice::from_ref(&second), offered)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], second);
    }
    // The session opened before the renewal carries on.
    socket
        .send(Message::Text(r#"{"type":"ping","ref":"p"}"#.into()))
        .await
        .unwrap();
    let pong = socket.next().await.unwrap().unwrap();
    assert!(
        matches!(&pong, Message::Text(t) if t.contains("\"pong\"")),
        "{pong:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_dropped_and_ingest_grpc_stays_plain_unless_asked() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed();
    install(certs.path(), &cert, &key);
    let cert_file = format!(
        "listen.tls.cert_file={}",
        certs.path().join("cert.pem").display()
    );
    let key_file = format!(
        "listen.tls.key_file={}",
        certs.path().join("key.pem").display()
    );
    let server = Server::start(
        data.path(),
        &[
            "--set",
            &cert_file,
            "--set",
            &key_file,
            "--set",
            "listen.limits.handshake_timeout_ms=500",
        ],
    );
    // Without `listen.tls.ingest_grpc`, ingest gRPC stays plain HTTP/2 for the edges of
    // other processes: a client preface and empty SETTINGS get the server's SETTINGS.
    let mut grpc = tokio::net::TcpStream::connect(&server.grpc).await.unwrap();
    grpc.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut frame = [0u8; 9];
    grpc.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[3], 0x04, "a SETTINGS frame: {frame:?}");

    let mut silent = tokio::net::TcpStream::connect(&server.edge).await.unwrap();
    // The first bytes of a ClientHello, then nothing.
    silent.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0) | Err(_))), "still open");
    assert!(started.elapsed() >= Duration::from_millis(400));
}
