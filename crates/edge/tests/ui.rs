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
        ("/widget", "/widget.js"),
        ("/widget.js", "new Switchboard("),
        ("/widget.css", "font:"),
        ("/console.js", "private"),
        ("/console.css", "font:"),
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

/// The value of header `name` (lowercase) in a raw response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_runs_only_its_own_scripts_and_only_the_widget_is_framed_elsewhere() {
    let backends = support::Backends::embedded().await;
    let config = switchboard_edge::EdgeConfig {
        widget_frame_ancestors: vec!["https://shop.example".to_owned()],
        ..switchboard_edge::EdgeConfig::default()
    };
    let edge = support::edge(&backends, config).await;
    for path in [
        "/",
        "/widget",
        "/widget.js",
        "/widget.css",
        "/console",
        "/console.js",
        "/console.css",
        "/switchboard.js",
    ] {
        let response = get(edge.addr, path).await;
        let policy = header(&response, "content-security-policy").expect(path);
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self';"), "{path}: {policy}");
        assert!(policy.contains("style-src 'self';"), "{path}: {policy}");
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        let framing = policy.split("frame-ancestors").nth(1).expect(path).trim();
        if path.starts_with("/widget") {
            assert_eq!(framing, "'self' https://shop.example", "{path}");
        } else {
            assert_eq!(framing, "'self'", "{path}");
        }
        assert_eq!(header(&response, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&response, "referrer-policy"), Some("no-referrer"));
    }
}
