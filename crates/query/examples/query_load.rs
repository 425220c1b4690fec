//! Load generator for history pages over HTTP: a store of many conversations, the query
//! service on a loopback port, and `connections` kept-alive HTTP/1.1 clients asking for the
//! newest 50 events of conversations drawn from a hot set, as fast as they are answered.
//! Prints requests/s and latency percentiles; cached pages are the case it measures.
//!
//! ```sh
//! cargo run --release -p switchboard-query --example query_load -- [seconds] [connections] [hot conversations] [cache: 1|0]
//! ```
//!
//! With `0` as the last argument the page cache holds nothing: every request reads the store,
//! decodes the events and opens their sealed bodies.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_events::principal::Role;
use switchboard_query::{CacheConfig, QueryService};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends one GET and reads the response; returns the status.
async fn get(stream: &mut TcpStream, request: &[u8], buffer: &mut Vec<u8>) -> u16 {
    stream.write_all(request).await.unwrap();
    buffer.clear();
    let mut chunk = [0u8; 16 * 1024];
    let mut header_end = None;
    let mut length = 0;
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
        if header_end.is_none()
            && let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            header_end = Some(end + 4);
        }
        if let Some(end) = header_end
            && buffer.len() >= end + length
        {
            return String::from_utf8_lossy(&buffer[9..12]).parse().unwrap();
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let seconds = args.first().copied().unwrap_or(10);
    let connections = args.get(1).copied().unwrap_or(32) as usize;
    let hot = args.get(2).copied().unwrap_or(200) as usize;
    let cached = args.get(3).copied().unwrap_or(1) != 0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = support::populate(dir.path(), hot, 80).await;
        let mut cache = CacheConfig::default();
        if !cached {
            cache.page_bytes = 0;
        }
        // One agent token drives every request: its read rate must not be what is measured.
        let unlimited = switchboard_events::rate::Rate::new(1e12, 1e12);
        let limits = switchboard_query::access::ReadLimits {
            staff: unlimited,
            ..Default::default()
        };
        let service = Arc::new(
            QueryService::new(store, support::verifier(), &cache).with_read_limits(limits),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, switchboard_query::http::router(service))
                .await
                .unwrap()
        });
        let token = support::token(Role::Agent);
        let requests: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..hot)
                .map(|n| {
                    format!(
                        "GET /v1/conversations/conv-{n}/history?limit=50 HTTP/1.1\r\nhost: query\r\nauthorization: Bearer {token}\r\n\r\n"
                    )
                    .into_bytes()
                })
                .collect(),
        );
        // Warm the cache: one pass over the hot set.
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buffer = Vec::new();
        for request in requests.iter() {
            assert_eq!(get(&mut stream, request, &mut buffer).await, 200);
        }
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut clients = Vec::new();
        for c in 0..connections {
            let requests = Arc::clone(&requests);
            clients.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut buffer = Vec::with_capacity(64 * 1024);
                let mut latencies = Vec::new();
                let mut i = c;
                while Instant::now() < deadline {
                    let request = &requests[i % requests.len()];
                    let sent = Instant::now();
                    let status = get(&mut stream, request, &mut buffer).await;
                    latencies.push(sent.elapsed());
                    assert_eq!(status, 200);
                    i += connections;
                }
                (latencies, buffer.len())
            }));
        }
        let mut latencies = Vec::new();
        let mut page_bytes = 0;
        for client in clients {
            let (mut l, bytes) = client.await.unwrap();
            latencies.append(&mut l);
            page_bytes = bytes;
        }
        let elapsed = started.elapsed();
        latencies.sort();
        eprintln!(
            "history page of 50 over HTTP, cached: {cached}: {} connections, {hot} hot conversations, {:.1}s",
            connections,
            elapsed.as_secs_f64()
        );
        eprintln!(
            "  {} requests, {:.0} req/s; latency p50 {:?}, p99 {:?}, max {:?}; response {} bytes",
            latencies.len(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies.last().unwrap(),
            page_bytes
        );
    });
}
