//! One bad or slow client never hurts the others: oversize frames and floods get error
//! frames, a client that does not read is cut with 4008 while a reader keeps up, a silent one
//! is closed with 4009, and shutdown drains with goaway and 1001.

mod support;

use std::time::Duration;

use serde_json::json;
use support::client::connect;
use support::{Backends, edge, principal, stack, token};
use switchboard_edge::{EdgeConfig, Rate};
use switchboard_events::id::{ClientMsgId, ConversationId, CorrelationId};
use switchboard_events::principal::Role;
use switchboard_ingest::ConversationCommand;
use switchboard_ingest::api::CommandHandler;
use switchboard_ingest::command::PostMessage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_and_floods_get_error_frames_and_the_server_stays_fine() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        connection_rate: Rate {
            per_second: 1.0,
            burst: 5.0,
        },
        max_strikes: 20,
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let t = token(&principal("acme", Role::Customer, "cust-1"));

    let mut big = connect(&edge.url(), &t).await;
    big.send_raw(format!(
        r#"{{"type":"ping","ref":"{}"}}"#,
        "x".repeat(70 * 1024)
    ))
    .await
    .unwrap();
    let error = big.expect("error").await;
    assert_eq!(error["code"], "frame_too_large");
    big.send_raw("not json".into()).await.unwrap();
    assert_eq!(big.expect("error").await["code"], "bad_frame");
    // Above the transport's hard cap the socket closes.
    let _ = big.send_raw("y".repeat(300 * 1024)).await;
    assert_eq!(big.closed().await, Some(1009));

    let mut flood = connect(&edge.url(), &t).await;
    for i in 0..10 {
        flood
            .send(json!({"type": "ping", "ref": i.to_string()}))
            .await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    while pongs + limited < 10 {
        let frame = flood.next_frame().await.unwrap();
        match frame["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited");
                assert!(frame["retry_after_ms"].as_u64().unwrap() > 0);
                limited += 1;
            }
            _ => {}
        }
    }
    assert_eq!((pongs, limited), (5, 5));
    // Flooding on: closed after the strikes.
    for i in 0..30 {
        if flood
            .send_raw(json!({"type": "ping", "ref": i.to_string()}).to_string())
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(flood.closed().await, Some(4029));

    // Everyone else is served.
    let mut fine = connect(&edge.url(), &t).await;
    fine.open().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_cut_and_a_reader_gets_everything() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        send_queue: 512,
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let t = token(&principal("acme", Role::Customer, "cust-1"));
    let mut customer = connect(&edge.url(), &t).await;
    let conversation = customer.open().await;
    let staff = token(&principal("acme", Role::Agent, "agent-1"));
    let mut slow = connect(&edge.url(), &staff).await;
    slow.subscribe(&conversation, 0).await;
    let mut reader = connect(&edge.url(), &staff).await;
    reader.subscribe(&conversation, 0).await;

    // 2000 messages of 16 kB (32 MB), four writers at a time: about twice what the loopback
    // socket buffers (about 10 MB) and the queue of 512 hold.
    const N: u64 = 2000;
    // The reader keeps up by construction: senders stay at most 256 events ahead of what it
    // has read, so only the client that reads nothing can fall 512 frames behind.
    const AHEAD: u64 = 256;
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = backends.writer.clone();
    let id: ConversationId = conversation.parse().unwrap();
    let read_so_far = seen.clone();
    let sending = tokio::spawn(async move {
        let customer = principal("acme", Role::Customer, "cust-1");
        let body = "z".repeat(16_000);
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..4u64 {
            let (writer, customer, id, body) =
                (writer.clone(), customer.clone(), id.clone(), body.clone());
            let read_so_far = read_so_far.clone();
            tasks.spawn(async move {
                for i in (lane..N).step_by(4) {
                    while i > read_so_far.load(std::sync::atomic::Ordering::Acquire) + AHEAD {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    let post = PostMessage {
                        client_msg_id: ClientMsgId::new(format!("s{i}")).unwrap(),
                        body: body.clone(),
                        attachments: vec![],
                        private_note: false,
                    };
                    writer
                        .conversation(
                            customer.clone(),
                            Some(id.clone()),
                            ConversationCommand::PostMessage(post),
                            CorrelationId(uuid::Uuid::now_v7()),
                        )
                        .await
                        .unwrap();
                }
            });
        }
        tasks.join_all().await;
    });
    let mut last = 0;
    while last < N + 1 {
        let seq = reader.expect("event").await["seq"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "the reader gets every event in order");
        last = seq;
        seen.store(last, std::sync::atomic::Ordering::Release);
    }
    sending.await.unwrap();
    assert_eq!(slow.closed().await, Some(4008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_goaway_and_closes_with_1001() {
    let (_backends, edge) = stack().await;
    let mut client = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    client.open().await;
    let url = edge.url();
    edge.shutdown().await;
    let goaway = client.expect("goaway").await;
    assert_eq!(goaway["reason"], "draining");
    assert_eq!(client.closed().await, Some(1001));
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no new connections"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let backends = Backends::embedded().await;
    let config = EdgeConfig {
        idle_timeout: Duration::from_secs(60),
        heartbeat: Duration::from_secs(3600),
        ..EdgeConfig::default()
    };
    let edge = edge(&backends, config).await;
    let mut client = connect(
        &edge.url(),
        &token(&principal("acme", Role::Customer, "cust-1")),
    )
    .await;
    let started = tokio::time::Instant::now();
    assert_eq!(client.closed_untimed().await, Some(4009));
    assert!(started.elapsed() >= Duration::from_secs(60));
}
