//! The metrics contract against a running `serve`: after a little chat traffic, the admin
//! listener's page exports every metric `docs/telemetry.md`, the alert rules and the dashboard
//! name, and the traffic moved the series it should. (`tests/deploy.rs` holds the same files to
//! the naming rule and runs `promtool check rules`.)

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, WsClient, request, token};

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// Every `switchboard_*` name in a text, without the histogram series' suffixes.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("switchboard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        if base.len() > "switchboard_".len() {
            out.insert(base.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// The metric names of the spec's tables (the first cell of each metric row).
fn specified() -> BTreeSet<String> {
    read("docs/telemetry.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `switchboard_"))
        .filter_map(|rest| Some(format!("switchboard_{}", rest.split('`').next()?)))
        .collect()
}

fn scrape(admin: &str) -> String {
    let mut stream = TcpStream::connect(admin).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the first series whose line starts with `prefix`.
fn value(page: &str, prefix: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {prefix} in:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_specified_alerted_and_charted_metric_is_exported_and_traffic_moves_them() {
    let data = tempfile::tempdir().unwrap();
    let customer = token(data.path(), "customer", "cust-1");
    let server = Server::start(data.path(), &[]);

    let (status, opened) = request(
        &server.http,
        "POST",
        "/v1/conversations",
        Some(&customer),
        r#"{"customer_id":"cust-1","channel":"web"}"#,
    );
    assert_eq!(status, 201, "{opened}");
    let conversation = opened["conversation_id"].as_str().unwrap().to_owned();

    // `connect` returns once the edge said `welcome`.
    let mut ws = WsClient::connect(&server.edge, &customer).await.unwrap();
    ws.send(
        json!({"type": "send", "ref": "r1", "conversation_id": conversation,
        "client_msg_id": "m1", "body": "hello"}),
    )
    .await
    .unwrap();
    let ack = loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an answer to the send within 20 s")
            .expect("the edge keeps the connection");
        if frame["type"] == "ack" || frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(ack["type"], "ack", "{ack}");

    let history = format!("/v1/conversations/{conversation}/history");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = request(&server.query, "GET", &history, Some(&customer), "");
        if status == 200 && page.to_string().contains("hello") {
            break;
        }
        assert!(Instant::now() < deadline, "never projected: {page}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let page = scrape(&server.admin);
    let exported: BTreeSet<String> = page
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect();
    let spec = specified();
    assert!(spec.len() > 50, "the spec lists {} metrics", spec.len());
    let mut wanted: Vec<(&str, BTreeSet<String>)> = vec![("docs/telemetry.md", spec)];
    wanted.push((
        "ops/prometheus/alerts.yml",
        names(&read("ops/prometheus/alerts.yml")),
    ));
    wanted.push((
        "ops/grafana/dashboards/switchboard.json",
        names(&read("ops/grafana/dashboards/switchboard.json")),
    ));
    let mut missing = Vec::new();
    for (file, names) in &wanted {
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            if !exported.contains(name) {
                missing.push(format!("{file}: {name}"));
            }
        }
    }
    assert!(missing.is_empty(), "not exported:\n{}", missing.join("\n"));

    // The traffic moved what it went through.
    let moved = [
        "switchboard_ingest_commands_total{kind=\"post_message\",outcome=\"ok\"}",
        "switchboard_ingest_ack_latency_seconds_count{kind=\"open\"}",
        "switchboard_edge_received_frames_total{type=\"send\"}",
        "switchboard_edge_sent_frames_total{type=\"ack\"}",
        "switchboard_edge_ack_latency_seconds_count{type=\"send\"}",
        "switchboard_edge_opened_connections_total",
        "switchboard_log_appended_records_total{backend=\"embedded\",topic=\"switchboard.conversations\"}",
        "switchboard_log_append_batch_records_count{backend=\"embedded\"}",
        "switchboard_projector_projected_events_total{topic=\"switchboard.conversations\"}",
        "switchboard_query_requests_total{api=\"http\",operation=\"history\",outcome=\"ok\"}",
        "switchboard_store_operation_duration_seconds_count{backend=\"embedded\",operation=\"write_batch\"}",
        "switchboard_process_resident_memory_bytes",
        "switchboard_process_ready_roles{role=\"edge\"}",
    ];
    for series in moved {
        assert!(value(&page, series) > 0.0, "{series} did not move:\n{page}");
    }
    assert!(
        !page.contains(&conversation) && !page.contains("cust-1"),
        "no label carries an id"
    );
}
