//! What the distributed tests need outside the product: a tansu broker (`ops/install-tansu.sh`)
//! on a free loopback port, and a Python with `confluent-kafka` for the analytics consumer,
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

/// A tansu broker with in-memory storage on a free loopback port, killed on drop.
pub struct Broker {
    child: Child,
    pub address: String,
}

impl Broker {
    pub fn start() -> Self {
        // tansu takes its address as a URL and prints none: a port the OS just gave out.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(tansu())
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let mut broker = Self { child, address };
        let deadline = Instant::now() + Duration::from_secs(20);
        // A readiness probe bounded in time, not a sleep standing in for synchronisation.
        while TcpStream::connect(&broker.address).is_err() {
            assert!(broker.child.try_wait().unwrap().is_none(), "tansu exited");
            assert!(Instant::now() < deadline, "tansu did not listen within 20s");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
