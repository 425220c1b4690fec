//! The edge serves the web UI, health and metrics over plain HTTP.

mod support;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_console_client_and_health_are_served_and_metrics_are_not() {
    let (_backends, edge) = support::stack().await;
    for (path, needle) in [
        ("/", "Agent console"),
        ("/widget", "new Switchboard("),
        ("/console", "private note"),
        ("/switchboard.js", "switchboard.v1"),
        ("/healthz", "ok"),
    ] {
        let response = get(edge.addr, path).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
        assert!(response.contains(needle), "{path}");
    }
    // Metrics are the admin listener's, never on the public port.
    let response = get(edge.addr, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}
