//! One message, one trace: a customer's `send` on the edge, the command it becomes on the
//! write side, the log record the writer appends, the projector's fold of that record and the
//! edge's live delivery of it all carry one trace id, exported over OTLP to a receiver the
//! test runs. On `serve` (embedded backends, one process), and across two processes on a
//! tansu broker: an `ingest,router` process and an `edge,projector` process, the trace crossing
//! from one to the other in gRPC metadata and back in Kafka record headers.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::kafka::Broker;
use support::node::{Node, kafka_config, token};
use support::otlp::{Collector, Span};
use support::{Server, WsClient};

/// Flags that export every span to `collector` a tenth of a second after it ends.
fn traced(collector: &Collector) -> Vec<String> {
    [
        format!("telemetry.otlp.endpoint={}", collector.endpoint),
        "telemetry.otlp.export_interval_ms=100".to_owned(),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_owned(), set])
    .collect()
}

/// A customer on `edge` opens a conversation, subscribes to it and sends one message; returns
/// the seq it was acknowledged with, once the message has come back live.
async fn one_message(edge: &str, customer: &str) -> u64 {
    let mut ws = WsClient::connect(edge, customer)
        .await
        .expect("the edge answers");
    ws.send(json!({"type": "open", "ref": "o1"})).await.unwrap();
    let opened = answer(&mut ws, "o1").await;
    assert_eq!(opened["type"], "ack", "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();
    loop {
        let subscribe = json!({"type": "subscribe", "ref": "s1", "conversation_id": conversation, "since_seq": 0});
        ws.send(subscribe).await.unwrap();
        let answer = answer(&mut ws, "s1").await;
        match answer["code"].as_str() {
            None if answer["type"] == "subscribed" => break,
            // The edge's own projector has not folded the open yet.
            Some("history_unavailable" | "not_found") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => panic!("subscribe refused: {answer}"),
        }
    }
    let send = json!({"type": "send", "ref": "m1", "conversation_id": conversation, "client_msg_id": "m-1", "body": "where is my parcel?"});
    ws.send(send).await.unwrap();
    let (mut acked, mut delivered) = (None, Vec::new());
    let within = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.is_none_or(|seq| !delivered.contains(&seq)) {
        let frame = tokio::time::timeout_at(within, ws.next())
            .await
            .expect("the message is acknowledged and delivered within 30 s")
            .expect("the edge keeps the connection");
        match frame["type"].as_str() {
            Some("ack") if frame["ref"] == "m1" => acked = frame["seq"].as_u64(),
            Some("event") => delivered.extend(frame["seq"].as_u64()),
            Some("error") if frame["ref"] == "m1" => panic!("the send was refused: {frame}"),
            _ => {}
        }
    }
    acked.unwrap()
}

/// The answer to the frame with `reference`, within 30 s.
async fn answer(ws: &mut WsClient, reference: &str) -> Value {
    let answer = async {
        loop {
            let frame = ws.next().await.expect("the edge keeps the connection");
            if frame["ref"] == reference {
                return frame;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .unwrap_or_else(|_| panic!("no answer to {reference} within 30 s"))
}

/// The spans of the message's trace, once the receiver has the send's span and the spans of
/// the write, the fold and the delivery of the event at `seq`.
struct Trace {
    send: Span,
    write: Span,
    fold: Span,
    deliver: Span,
    all: Vec<Span>,
}

async fn trace_of_the_send(collector: &Collector, seq: u64) -> Trace {
    let seq = seq.to_string();
    let found = collector
        .wait_for(Duration::from_secs(30), |spans| {
            let send = spans
                .iter()
                .find(|s| s.name == "edge.frame" && s.attribute("frame") == Some("send"))?;
            let all: Vec<Span> = spans
                .iter()
                .filter(|s| s.trace_id == send.trace_id)
                .cloned()
                .collect();
            let named = |name: &str, seq: Option<&str>| {
                all.iter()
                    .find(|s| s.name == name && (seq.is_none() || s.attribute("seq") == seq))
                    .cloned()
            };
            Some(Trace {
                send: send.clone(),
                write: named("ingest.write", Some(&seq))?,
                fold: named("projector.fold", None)?,
                deliver: named("edge.deliver", Some(&seq))?,
                all: all.clone(),
            })
        })
        .await;
    found.unwrap_or_else(|| {
        let names: Vec<String> = collector
            .spans()
            .iter()
            .map(|s| format!("{} {} {:?}", s.name, s.trace_id, s.attributes))
            .collect();
        panic!("the send's trace never had its write, fold and delivery: {names:#?}")
    })
}

/// What holds wherever the roles run: the write, the fold and the delivery continue the send's
/// trace, the fold and the delivery as children of the write (through the record's header), and
/// every span has only the bounded fields, never the message's body.
fn check_the_trace(trace: &Trace) {
    let Trace {
        send,
        write,
        fold,
        deliver,
        all,
    } = trace;
    assert_eq!(send.attribute("tenant"), Some("acme"), "{send:?}");
    assert_eq!(write.attribute("kind"), Some("post_message"), "{write:?}");
    assert!(write.attribute("partition").is_some(), "{write:?}");
    assert_eq!(
        fold.parent_span_id, write.span_id,
        "the fold continues the write through the record's traceparent"
    );
    assert_eq!(
        deliver.parent_span_id, write.span_id,
        "the delivery continues the write through the record's traceparent"
    );
    assert_eq!(fold.attribute("offset"), write.attribute("offset"));
    assert_eq!(deliver.attribute("offset"), write.attribute("offset"));
    assert_eq!(fold.attribute("partition"), write.attribute("partition"));
    assert!(
        deliver
            .attribute("frames")
            .and_then(|f| f.parse::<u64>().ok())
            .is_some_and(|f| f >= 1),
        "the delivery queued the event for the subscriber: {deliver:?}"
    );
    for span in all {
        let text = format!("{span:?}");
        assert!(
            !text.contains("where is my parcel"),
            "a span carries the body: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_one_trace_from_the_frame_to_its_delivery_on_serve() {
    let collector = Collector::start().await;
    let data = tempfile::tempdir().unwrap();
    let customer = support::token(data.path(), "customer", "cust-1");
    let server = {
        let (data, flags) = (data.path().to_owned(), traced(&collector));
        tokio::task::spawn_blocking(move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            Server::start(&data, &flags)
        })
        .await
        .unwrap()
    };

    let seq = one_message(&server.edge, &customer).await;
    let trace = trace_of_the_send(&collector, seq).await;
    check_the_trace(&trace);
    // In one process the edge hands the command to the writer itself.
    assert_eq!(trace.write.parent_span_id, trace.send.span_id);
    assert!(
        trace.all.iter().all(|s| s.roles() == trace.send.roles()),
        "one process: {:?}",
        trace.all
    );
}

/// The configuration both processes read.
fn write_config(dir: &Path, broker: &str) -> std::path::PathBuf {
    let text = kafka_config(dir, broker, 2, 1);
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_one_trace_across_an_edge_and_an_ingest_process_on_kafka() {
    let collector = Collector::start().await;
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.address);
    let customer = token(&config, "customer", "cust-1");
    let (ingest, edge) = {
        let (dir, config, traced) = (dir.path().to_owned(), config.clone(), traced(&collector));
        tokio::task::spawn_blocking(move || {
            let set = |pairs: &[(&str, String)]| {
                let mut flags = traced.clone();
                for (key, value) in pairs {
                    flags.extend(["--set".to_owned(), format!("{key}={value}")]);
                }
                flags
            };
            let ingest = Node::start(
                "ingest",
                "ingest,router",
                &config,
                &dir.join("ingest"),
                &set(&[("log.kafka.client_id", "ingest".to_owned())]),
            );
            let endpoints = format!("[\"http://{}\"]", ingest.address("commands gRPC"));
            let edge = Node::start(
                "edge",
                "edge,projector",
                &config,
                &dir.join("edge"),
                &set(&[
                    ("log.kafka.client_id", "edge".to_owned()),
                    ("ingest.endpoints", endpoints),
                ]),
            );
            (ingest, edge)
        })
        .await
        .unwrap()
    };

    let seq = one_message(edge.address("widget HTTP"), &customer).await;
    let trace = trace_of_the_send(&collector, seq).await;
    check_the_trace(&trace);
    // The edge's process made the frame's, the fold's and the delivery's spans; the ingest
    // process the command's and the write's, under the frame's span it read from the gRPC
    // metadata.
    for span in [&trace.send, &trace.fold, &trace.deliver] {
        assert_eq!(span.roles(), "edge,projector", "{span:?}");
    }
    let command = trace
        .all
        .iter()
        .find(|s| s.name == "ingest.command" && s.attribute("kind") == Some("post_message"))
        .unwrap_or_else(|| panic!("the ingest process traced the command: {:?}", trace.all));
    assert_eq!(command.roles(), "ingest,router", "{command:?}");
    assert_eq!(trace.write.roles(), "ingest,router");
    assert_eq!(
        command.parent_span_id, trace.send.span_id,
        "the command continues the frame's span from the gRPC metadata"
    );
    assert_eq!(trace.write.parent_span_id, command.span_id);
    drop((edge, ingest));
}
