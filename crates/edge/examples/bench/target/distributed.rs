//! The distributed target: every role its own `switchboard run` process on a tansu broker
//! (in memory) started here: two ingest instances (unfenced: tansu has no transactions), the
//! read side (projector and query), and two edges, each folding its own embedded store.
//! Customers connect to the first edge, agents to the second, so every message crosses
//! edge → gRPC → ingest → Kafka → the other edge's tail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Endpoint, Programs, SECRET, Server, address, spawn};
use crate::Error;

const SERVICE_TOKEN: &str = "bench-distributed-service-token-0123456789";

pub fn start(programs: &Programs) -> Result<Server, Error> {
    let cluster = Cluster::start()?;
    let mut ingest_1 = cluster.run(programs, "ingest-1", "ingest,router", &[])?;
    let first = format!("http://{}", ingest_1.take("commands  gRPC")?);
    let mut ingest_2 = cluster.run(
        programs,
        "ingest-2",
        "ingest,router",
        &[format!("ingest.endpoints=[\"{first}\"]")],
    )?;
    let second = format!("http://{}", ingest_2.take("commands  gRPC")?);
    let mut read = cluster.run(programs, "read", "projector,query", &[])?;
    let history = read.take("queries   HTTP")?;
    let edge = |name: &str| {
        cluster.run(
            programs,
            name,
            "edge,projector",
            &[
                format!("ingest.endpoints=[\"{first}\",\"{second}\"]"),
                format!("projector.consumer=projector-{name}"),
                format!("edge.history_consumer=projector-{name}"),
            ],
        )
    };
    let (mut customers, mut agents) = (edge("edge-1")?, edge("edge-2")?);
    let (edge, agent_edge) = (customers.take("widget")?, agents.take("widget")?);
    for node in [&ingest_1, &ingest_2, &read, &customers, &agents] {
        node.wait_ready()?;
    }
    let Cluster {
        data, mut others, ..
    } = cluster;
    others.extend([ingest_1.child, ingest_2.child, read.child, agents.child]);
    Ok(Server {
        pid: customers.child.id(),
        child: customers.child,
        endpoint: Endpoint::switchboard(edge, Some(agent_edge), history),
        _data: Some(data),
        // The edges and the rest go before the broker they depend on.
        others: others.into_iter().rev().collect(),
    })
}

/// What the processes of a distributed deployment share: a tansu broker (the first of
/// `others`), the data directory and the configuration file.
#[derive(Debug)]
pub struct Cluster {
    pub data: tempfile::TempDir,
    config: PathBuf,
    pub others: Vec<Child>,
}

impl Cluster {
    /// Starts the broker and writes the configuration every process reads.
    pub fn start() -> Result<Self, Error> {
        let data = tempfile::tempdir()?;
        let secret = data.path().join("jwt-hs256.key");
        std::fs::write(&secret, SECRET)?;
        let mut others = Vec::new();
        let broker = tansu(&mut others)?;
        let config = data.path().join("switchboard.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[log]
backend = "kafka"
[log.kafka]
bootstrap_servers = "{broker}"
allow_unfenced = true
[log.kafka.extra]
"batch.num.messages" = "1"
# tansu holds a fetch for the whole wait even when records arrive: the tails' latency floor.
"fetch.wait.max.ms" = "{fetch_wait_ms}"
[auth]
jwt_secret_file = "{secret}"
[[auth.service_tokens]]
token = "{SERVICE_TOKEN}"
tenant = "bench0"
role = "service"
subject = "edge"
all_tenants = true
[ingest]
service_token = "{SERVICE_TOKEN}"
"#,
                secret = secret.display(),
                fetch_wait_ms =
                    std::env::var("BENCH_FETCH_WAIT_MS").unwrap_or_else(|_| "10".to_owned()),
            ),
        )?;
        Ok(Self {
            data,
            config,
            others,
        })
    }

    /// Starts `switchboard run --roles <roles>` as the process `name`, on ports the OS
    /// picks, and waits for it to announce its listeners.
    pub fn run(
        &self,
        programs: &Programs,
        name: &str,
        roles: &str,
        sets: &[String],
    ) -> Result<Started, Error> {
        let mut command = Command::new(&programs.switchboard);
        command
            .args(["run", "--roles", roles, "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data.path().join(name))
            .args(["--set", &format!("log.kafka.client_id={name}")]);
        for key in [
            "edge",
            "ingest_grpc",
            "ingest_http",
            "query_http",
            "query_grpc",
            "admin",
        ] {
            command.args(["--set", &format!("listen.{key}=127.0.0.1:0")]);
        }
        for set in sets.iter().chain(&programs.switchboard_sets) {
            command.args(["--set", set]);
        }
        command.env("RUST_LOG", "warn");
        let (child, lines) = spawn(command)?;
        Started::announced(child, lines, roles)
    }
}

/// A started process and the lines it announced its listeners with.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    lines: Vec<String>,
}

impl Started {
    /// Waits for the announcement: the admin line, then one line per listener of the roles.
    fn announced(child: Child, output: mpsc::Receiver<String>, roles: &str) -> Result<Self, Error> {
        let expected = 1 + roles
            .split(',')
            .map(|r| match r {
                "ingest" => 2,
                "query" => 3,
                "edge" => 1,
                _ => 0,
            })
            .sum::<usize>();
        let mut lines = Vec::new();
        let mut announcing = false;
        while lines.len() < expected {
            let line = output.recv_timeout(Duration::from_secs(120))?;
            announcing |= line.starts_with("switchboard is serving");
            if announcing && line.contains("http://") {
                lines.push(line);
            }
        }
        Ok(Self { child, lines })
    }

    pub fn take(&mut self, what: &str) -> Result<SocketAddr, Error> {
        self.lines
            .iter()
            .find(|l| l.contains(what))
            .and_then(|l| address(l))
            .ok_or_else(|| format!("no {what} in {:?}", self.lines).into())
    }

    /// Polls `/readyz` on the admin listener for up to a minute.
    pub fn wait_ready(&self) -> Result<(), Error> {
        let admin = self
            .lines
            .iter()
            .find(|l| l.contains("admin"))
            .and_then(|l| address(l))
            .ok_or("no admin listener")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = TcpStream::connect(admin).and_then(|mut s| {
                write!(
                    s,
                    "GET /readyz HTTP/1.1\r\nhost: {admin}\r\nconnection: close\r\n\r\n"
                )?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer.starts_with("HTTP/1.1 200"))
            });
            if ready.unwrap_or(false) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{admin}/readyz not ready within a minute").into())
    }
}

/// A tansu broker in memory on a free port; its process goes into `others`.
fn tansu(others: &mut Vec<Child>) -> Result<String, Error> {
    let program = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/tansu"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("tansu"));
    // tansu prints no address: take a port the OS just gave out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let broker = format!("127.0.0.1:{port}");
    let url = format!("tcp://{broker}");
    let child = Command::new(program)
        .args(["broker", "--storage-engine", "memory://tansu/"])
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("the distributed target needs tansu (ops/install-tansu.sh): {e}"))?;
    others.push(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&broker).is_err() {
        if Instant::now() > deadline {
            return Err("tansu did not listen within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(broker)
}
