//! TLS on the public listeners of a running `serve`: every one of them speaks TLS only, with
//! the ALPN its protocol needs (ingest gRPC when `listen.tls.ingest_grpc` says so, as here);
//! the admin listener stays plain; a replaced certificate is served to new connections
//! without a restart, on the reload interval or at SIGHUP; the edge's gRPC client
//! (`GrpcCommands`) sends commands to ingest over TLS, and a client in clear is refused.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use switchboard_events::conversation::{Channel, Priority};
use switchboard_events::id::{ClientMsgId, CorrelationId, CustomerId, PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_ingest::api::{CommandHandler, GrpcCommands, GrpcCommandsConfig};
use switchboard_ingest::command::{ConversationCommand, OpenConversation, PostMessage};

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

/// The flags of `serve` with TLS from the pair in `certs`, ingest gRPC included.
fn tls_flags(certs: &Path, reload_interval_ms: u64) -> Vec<String> {
    [
        format!("listen.tls.cert_file={}", certs.join("cert.pem").display()),
        format!("listen.tls.key_file={}", certs.join("key.pem").display()),
        format!("listen.tls.reload_interval_ms={reload_interval_ms}"),
        "listen.tls.ingest_grpc=true".to_owned(),
    ]
    .into_iter()
    .flat_map(|pair| ["--set".to_owned(), pair])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_between_intervals() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, first) = self_signed();
    install(certs.path(), &cert, &key);
    // An interval that never comes in the test: only the signal can reload.
    let flags = tls_flags(certs.path(), 3_600_000);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(data.path(), &flags);
    let served = |trusted: Vec<_>| {
        let edge = server.edge.clone();
        async move {
            let tls = tls_connect(&edge, &trusted, &[b"http/1.1"]).await.unwrap();
            tls.get_ref().1.peer_certificates().unwrap()[0].clone()
        }
    };
    assert_eq!(served(vec![first.clone()]).await, first);

    let (cert, key, second) = self_signed();
    install(certs.path(), &cert, &key);
    let both = vec![first.clone(), second.clone()];
    assert_eq!(
        served(both.clone()).await,
        first,
        "no reload before the signal"
    );
    server.signal("HUP");
    let started = Instant::now();
    while served(both.clone()).await != second {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still the old certificate after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The process lives on: SIGHUP is a reload, not the default's exit.
    assert_eq!(request(&server.admin, "GET", "/healthz", None, "").0, 200);
}

const SERVICE_TOKEN: &str = "tls-test-service-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_client_sends_commands_to_ingest_over_tls_and_clear_text_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed();
    install(certs.path(), &cert, &key);
    let config = data.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[[auth.service_tokens]]\ntoken = \"{SERVICE_TOKEN}\"\ntenant = \"acme\"\n\
             role = \"service\"\nsubject = \"edge\"\nall_tenants = true\n"
        ),
    )
    .unwrap();
    let mut flags = tls_flags(certs.path(), 10_000);
    flags.extend(["--config".to_owned(), config.display().to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(data.path(), &flags);
    let port = server.grpc.rsplit(':').next().unwrap();
    let client = |endpoint: String, ca_file: Option<std::path::PathBuf>| {
        GrpcCommands::new(GrpcCommandsConfig {
            endpoints: vec![endpoint],
            ca_file,
            service_token: SERVICE_TOKEN.to_owned(),
            deadline: Duration::from_secs(2),
            ..GrpcCommandsConfig::default()
        })
        .unwrap()
    };
    let customer = Principal::new(
        TenantId::new("acme").unwrap(),
        Role::Customer,
        PrincipalId::new("cust-1").unwrap(),
    );
    let correlation = || CorrelationId(uuid::Uuid::now_v7());
    let open = ConversationCommand::Open(OpenConversation {
        customer_id: CustomerId::new("cust-1").unwrap(),
        channel: Channel::Web,
        priority: Priority::Normal,
        team_id: None,
        required_skills: vec![],
        vip: false,
        attributes: Default::default(),
        customer_name: None,
        customer_email: None,
    });

    // The certificate names localhost: the endpoint does too, and the CA file is the
    // self-signed certificate itself.
    let secure = client(
        format!("https://localhost:{port}"),
        Some(certs.path().join("cert.pem")),
    );
    let opened = secure
        .conversation(customer.clone(), None, open.clone(), correlation())
        .await
        .unwrap();
    let post = ConversationCommand::PostMessage(PostMessage {
        client_msg_id: ClientMsgId::new("m1").unwrap(),
        body: "over TLS".to_owned(),
        attachments: vec![],
        private_note: false,
    });
    let conversation = Some(opened.stream_id.parse().unwrap());
    let posted = secure
        .conversation(customer.clone(), conversation.clone(), post, correlation())
        .await
        .unwrap();
    assert_eq!(opened.seq.0, 1);
    assert!(posted.seq > opened.seq && !posted.unchanged, "{posted:?}");

    // In clear, the TLS listener takes nothing: the HTTP/2 preface is no ClientHello, the
    // connection ends in a TLS alert, and the client's HTTP/2 reports the broken protocol.
    let clear = client(format!("http://{}", server.grpc), None);
    let refused = clear
        .conversation(customer, None, open, correlation())
        .await
        .unwrap_err();
    assert!(
        matches!(refused.code(), "internal" | "unavailable")
            && refused.to_string().contains(&server.grpc),
        "{refused}"
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
