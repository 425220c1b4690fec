//! The servers under test, each started as its own process on ports the OS picks: switchboard
//! (`switchboard serve` on a fresh data directory) and the Node peers in `ops/bench/peers`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use switchboard_events::id::{PrincipalId, TenantId};
use switchboard_events::principal::{Principal, Role};
use switchboard_events::token::{TokenIssuer, now_seconds};

use super::client::Who;
use crate::Error;

pub mod distributed;

/// What a column of the table ran.
#[derive(Clone, Debug)]
pub enum Target {
    /// `switchboard serve` with `log.durability` set to this (`always` or `never`).
    Switchboard(&'static str),
    /// Every role its own process on a tansu broker: two edges, two ingest instances.
    Distributed,
    Ws,
    SocketIo,
}

impl Target {
    pub fn name(&self) -> String {
        match self {
            Target::Switchboard("always") => "switchboard".to_owned(),
            Target::Switchboard(durability) => format!("switchboard {durability}"),
            Target::Distributed => "distributed".to_owned(),
            Target::Ws => "ws".to_owned(),
            Target::SocketIo => "socket.io".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Switchboard,
    Ws,
    SocketIo,
}

/// Where the programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    pub switchboard: PathBuf,
    pub peers: PathBuf,
    /// Extra `--set key=value` for switchboard (the edge's rate limits, when it takes them).
    pub switchboard_sets: Vec<String>,
}

/// A started server; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub pid: u32,
    pub endpoint: Endpoint,
    _data: Option<tempfile::TempDir>,
    /// The deployment's other processes (distributed), killed after `child`.
    others: Vec<Child>,
}

/// How to reach a started server.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub transport: Transport,
    /// The WebSocket listener.
    pub edge: SocketAddr,
    /// Where agents connect, when not to `edge` (the distributed target's second edge).
    pub agent_edge: Option<SocketAddr>,
    /// Where history is read over HTTP (switchboard's query service, the peers' own server).
    pub history: SocketAddr,
    issuer: Option<TokenIssuer>,
}

impl Drop for Server {
    /// SIGINT first (what `switchboard serve` shuts down on), so a server run under a profiler
    /// exits normally and writes its profile;
    /// SIGKILL when it has not exited within a minute.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.pid.to_string()])
            .status();
        for _ in 0..600 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for other in &mut self.others {
            let _ = other.kill();
            let _ = other.wait();
        }
    }
}

/// The secret the bench writes where `switchboard serve` looks for it, so tokens can be
/// signed here instead of one `switchboard token` process per connection.
const SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";

impl Server {
    pub fn start(target: &Target, programs: &Programs) -> Result<Self, Error> {
        match target {
            Target::Switchboard(durability) => switchboard(programs, durability),
            Target::Distributed => distributed::start(programs),
            Target::Ws => node(&programs.peers, "ws.js", Transport::Ws),
            Target::SocketIo => node(&programs.peers, "socketio.js", Transport::SocketIo),
        }
    }
}

impl Endpoint {
    /// A switchboard edge at `edge` (agents at `agent_edge` when set), history at `history`,
    /// taking tokens signed with the bench's secret.
    pub fn switchboard(
        edge: SocketAddr,
        agent_edge: Option<SocketAddr>,
        history: SocketAddr,
    ) -> Self {
        Endpoint {
            transport: Transport::Switchboard,
            edge,
            agent_edge,
            history,
            issuer: Some(TokenIssuer::hs256(
                SECRET.as_bytes(),
                "switchboard",
                "switchboard",
            )),
        }
    }

    /// The endpoint agents connect to.
    pub fn for_agents(&self) -> Endpoint {
        Endpoint {
            edge: self.agent_edge.unwrap_or(self.edge),
            ..self.clone()
        }
    }

    /// A token for `who` (switchboard only; the peers take a `hello`).
    pub fn token(&self, who: &Who) -> Result<String, Error> {
        let issuer = self.issuer.as_ref().ok_or("this server takes no token")?;
        let role = match who.role {
            "customer" => Role::Customer,
            _ => Role::Agent,
        };
        let principal = Principal::new(
            TenantId::new(&who.tenant)?,
            role,
            PrincipalId::new(&who.subject)?,
        );
        Ok(issuer.issue(&principal, now_seconds() + 3600)?)
    }
}

fn switchboard(programs: &Programs, durability: &str) -> Result<Server, Error> {
    let data = tempfile::tempdir()?;
    let secrets = data.path().join("secrets");
    std::fs::create_dir_all(&secrets)?;
    std::fs::write(secrets.join("jwt-hs256.key"), SECRET)?;
    let mut command = Command::new(&programs.switchboard);
    command.arg("serve").arg("--data-dir").arg(data.path());
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
    command.args(["--set", &format!("log.durability={durability}")]);
    let secret = secrets.join("jwt-hs256.key");
    command.args([
        "--set",
        &format!("auth.jwt_secret_file={}", secret.display()),
    ]);
    for set in &programs.switchboard_sets {
        command.args(["--set", set]);
    }
    command.env("RUST_LOG", "warn");
    let (child, lines) = spawn(command)?;
    let (mut edge, mut history) = (None, None);
    while edge.is_none() || history.is_none() {
        let line = lines.recv_timeout(Duration::from_secs(120))?;
        if line.contains("widget") {
            edge = address(&line);
        } else if line.contains("queries   HTTP") {
            history = address(&line);
        }
    }
    Ok(Server {
        pid: child.id(),
        child,
        endpoint: Endpoint::switchboard(
            edge.ok_or("no edge address")?,
            None,
            history.ok_or("no query address")?,
        ),
        _data: Some(data),
        others: Vec::new(),
    })
}

fn node(peers: &Path, script: &str, transport: Transport) -> Result<Server, Error> {
    let mut command = Command::new("node");
    command.arg(script).current_dir(peers);
    let (child, lines) = spawn(command)?;
    let line = lines.recv_timeout(Duration::from_secs(30))?;
    let addr = address(&line).ok_or_else(|| format!("{script} said: {line}"))?;
    Ok(Server {
        pid: child.id(),
        child,
        endpoint: Endpoint {
            transport,
            edge: addr,
            agent_edge: None,
            history: addr,
            issuer: None,
        },
        _data: None,
        others: Vec::new(),
    })
}

/// Starts `command` and hands its stderr over line by line; the first lines the server
/// prints after its address are echoed (warnings under load), the rest only counted.
fn spawn(mut command: Command) -> Result<(Child, mpsc::Receiver<String>), Error> {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut echoed = 0;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line.clone()).is_err() && echoed < 20 {
                echoed += 1;
                eprintln!("  server: {line}");
            }
        }
    });
    Ok((child, rx))
}

/// The `host:port` after `http://` in an announcement line.
fn address(line: &str) -> Option<SocketAddr> {
    line.split("http://")
        .nth(1)?
        .split(['/', ' '])
        .next()?
        .parse()
        .ok()
}
