//! What the Kafka-backed tests need outside the product: a tansu broker (`ops/install-tansu.sh`)
//! on a free loopback port, in memory or on storage that survives a kill, and a Python with `confluent-kafka` for the analytics consumer,
//! installed with pip into a virtual environment under the target directory, once. The same
//! as `crates/query/tests/analytics.rs` uses, written to be included from any test crate.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned client: the version the analytics tests were written against.
const CONFLUENT_KAFKA: &str = "confluent-kafka[avro,schemaregistry]==2.16.0";

fn tansu() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain(home.map(|h| h.join("bin")))
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file())
        .expect("this test needs the tansu broker: run `bash ops/install-tansu.sh` first")
}

/// A tansu broker on a free loopback port, killed on drop: in memory ([`Broker::start`]), or
/// on sqlite storage in a directory ([`Broker::on_disk`]), which survives a kill and restart.
pub struct Broker {
    child: Option<Child>,
    /// Where the sqlite storage and the broker's log live; `None` in memory.
    storage: Option<PathBuf>,
    pub address: String,
}

impl Broker {
    /// A broker with in-memory storage.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// A broker keeping its log in `storage` (tansu's `libsql` feature, `ops/install-tansu.sh`).
    pub fn on_disk(storage: &Path) -> Self {
        Self::launch(Some(storage.to_owned()))
    }

    fn launch(storage: Option<PathBuf>) -> Self {
        // tansu takes its address as a URL and prints none: a port the OS just gave out.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut broker = Self {
            child: None,
            storage,
            address: format!("127.0.0.1:{port}"),
        };
        broker.restart();
        broker
    }

    /// Starts the broker (again) on its storage and port, and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let url = format!("tcp://{}", self.address);
        let mut command = Command::new(tansu());
        command
            .arg("broker")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.storage {
            Some(dir) => {
                let log = std::fs::File::create(dir.join("tansu.log")).unwrap();
                command.current_dir(dir).stderr(log);
                command.args(["--storage-engine", "sqlite://tansu.db"]);
            }
            None => {
                command.args(["--storage-engine", "memory://tansu/"]);
            }
        }
        let mut child = command
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(20);
        // A readiness probe bounded in time, not a sleep standing in for synchronisation.
        while TcpStream::connect(&self.address).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let log = self
                    .storage
                    .as_ref()
                    .and_then(|dir| std::fs::read_to_string(dir.join("tansu.log")).ok())
                    .unwrap_or_default();
                panic!(
                    "tansu exited ({status}) before listening on {} (sqlite storage needs the \
                     libsql feature: `bash ops/install-tansu.sh`): {log}",
                    self.address
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 20 s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// SIGKILL, as a crash of the broker's host: its storage stays as it was.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A configuration file for `serve` on this broker, written into `dir`.
    pub fn config(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kafka.toml");
        // tansu is a broker without transactions, and serves no fetch that starts inside a
        // multi-record batch: unfenced writes, one record per batch.
        let toml = format!(
            "[log]\nbackend = \"kafka\"\n\n[log.kafka]\nbootstrap_servers = \"{}\"\n\
             allow_unfenced = true\n\n[log.kafka.extra]\n\"batch.num.messages\" = \"1\"\n",
            self.address
        );
        std::fs::write(&path, toml).unwrap();
        path
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Python with confluent-kafka, installed under the target directory on first use.
pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-analytics");
    let python = venv.join("bin").join("python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import confluent_kafka.schema_registry.avro"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return python;
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("this test needs python3 with venv");
    assert!(created.success(), "python3 -m venv failed");
    let installed = Command::new(venv.join("bin").join("pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CONFLUENT_KAFKA,
        ])
        .status()
        .expect("run pip");
    assert!(installed.success(), "pip install {CONFLUENT_KAFKA} failed");
    assert!(
        ready(&python),
        "confluent-kafka does not import after installing it"
    );
    python
}

/// The analytics consumer of `crates/query/tests/analytics`: reads `expected` records of
/// `topic` from every partition through the schema registry at `registry` with
/// confluent-kafka's `AvroDeserializer`; one JSON line per record (`conversation_id`, `seq`).
pub fn consume(
    python: &Path,
    broker: &str,
    registry: &str,
    topic: &str,
    partitions: u32,
    expected: usize,
) -> std::process::Output {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/query/tests/analytics/consume.py");
    Command::new(python)
        .arg(script)
        .args([broker, registry, topic])
        .args([partitions.to_string(), expected.to_string()])
        .output()
        .expect("run the analytics consumer")
}
