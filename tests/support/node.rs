//! `switchboard run --roles …` as a real process: one node of a distributed deployment, every
//! listener on 127.0.0.1:0, its bound addresses read from what it announces.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{every_listener_on_port_zero, switchboard, try_request};

/// A running node; dropping it kills the process (SIGKILL).
pub struct Node {
    child: Child,
    /// What the node announced, by `what protocol` (`"commands gRPC"`, `"widget HTTP"`,
    /// `"admin HTTP"`, …): the bound `host:port`.
    pub endpoints: BTreeMap<String, String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Node {
    /// Starts `run --roles <roles>` with the configuration file `config` on the data directory
    /// `data`, waits for its announcement and for `/readyz`. Its output goes to the test's
    /// stderr, each line prefixed with `name`.
    pub fn start(name: &str, roles: &str, config: &Path, data: &Path, extra: &[String]) -> Self {
        let mut child = switchboard()
            .args([
                "run",
                "--roles",
                roles,
                "--config",
                config.to_str().unwrap(),
            ])
            .args(["--data-dir", data.to_str().unwrap()])
            .args(every_listener_on_port_zero())
            .args(extra)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // The announcement: the admin listener, then two lines per ingest role (commands over
        // gRPC and HTTP), three per query role (queries over HTTP and gRPC, schemas), one per edge.
        let announced = 1 + roles
            .split(',')
            .map(|role| match role {
                "ingest" => 2,
                "query" => 3,
                "edge" => 1,
                _ => 0,
            })
            .sum::<usize>();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut endpoints = BTreeMap::new();
        let mut announcing = false;
        let mut seen = 0;
        while seen < announced {
            let Some(line) = lines.next().map(Result::unwrap) else {
                panic!("{name} exited before it announced its endpoints");
            };
            eprintln!("[{name}] {line}");
            if line.starts_with("switchboard is serving") {
                announcing = true;
                continue;
            }
            let Some((head, rest)) = line.split_once("http://").filter(|_| announcing) else {
                continue;
            };
            let address = rest.split(['/', ' ']).next().unwrap().to_owned();
            let key = head.split_whitespace().collect::<Vec<_>>().join(" ");
            endpoints.entry(key).or_insert(address);
            seen += 1;
        }
        assert!(
            endpoints.contains_key("admin HTTP"),
            "{name} announced no admin listener (it exited?)"
        );
        let name = name.to_owned();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[{name}] {line}");
            }
        });
        let node = Self { child, endpoints };
        node.wait_ready(Duration::from_secs(30));
        node
    }

    /// The address announced as `what` (e.g. `"commands gRPC"`).
    pub fn address(&self, what: &str) -> &str {
        self.endpoints
            .get(what)
            .unwrap_or_else(|| panic!("no {what} in {:?}", self.endpoints))
    }

    /// Waits until the admin listener answers `/readyz` with 200.
    pub fn wait_ready(&self, within: Duration) {
        let admin = self.address("admin HTTP").to_owned();
        let deadline = Instant::now() + within;
        loop {
            if let Some((200, _)) = try_request(&admin, "GET", "/readyz", None, "") {
                return;
            }
            assert!(Instant::now() < deadline, "{admin}/readyz not ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as a crash: nothing is flushed or closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A token of tenant `acme` signed with the secret the configuration file names.
pub fn token(config: &Path, role: &str, subject: &str) -> String {
    super::issue_token(&["--config", config.to_str().unwrap()], role, subject)
}

/// The service token with which the edges of a multi-process test reach ingest.
pub const SERVICE_TOKEN: &str = "multi-process-test-service-token-0123456789";

/// What every process of a multi-process test on the broker at `broker` reads: the Kafka log
/// (unfenced: tansu has no transactions), one HS256 secret in `dir` (made by the first process
/// to start, read by `token`), and [`SERVICE_TOKEN`], an all-tenants service the edges send
/// commands to ingest with. Tests append sections of their own.
pub fn kafka_config(dir: &Path, broker: &str, conversations: u32, agents: u32) -> String {
    format!(
        r#"
[log]
backend = "kafka"
conversation_partitions = {conversations}
agent_partitions = {agents}

[log.kafka]
bootstrap_servers = "{broker}"
allow_unfenced = true
session_timeout_ms = 6000

[log.kafka.extra]
# tansu serves no fetch that starts inside a multi-record batch.
"batch.num.messages" = "1"

[auth]
jwt_secret_file = "{secret}"

[[auth.service_tokens]]
token = "{SERVICE_TOKEN}"
tenant = "acme"
role = "service"
subject = "edge"
all_tenants = true

[ingest]
service_token = "{SERVICE_TOKEN}"
"#,
        secret = dir.join("jwt-hs256.key").display(),
    )
}
