//! The dependency invariants of ARCHITECTURE.md, checked against the resolved dependency graph
//! (`cargo metadata`), so that a forbidden edge fails the build's tests the day it appears.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Normal (non-dev, non-build) dependencies of every package, by name.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is json");

    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let name = names[node["id"].as_str().unwrap()].to_owned();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|dep| names[dep["pkg"].as_str().unwrap()].to_owned())
            .collect::<BTreeSet<_>>();
        graph.entry(name).or_insert_with(BTreeSet::new).extend(deps);
    }
    graph
}

fn reachable(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(name) = stack.pop() {
        for dep in graph.get(&name).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen
}

fn assert_never_reaches(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    forbidden: &[&str],
) {
    assert!(graph.contains_key(from), "{from} is not in the workspace");
    let reached = reachable(graph, from);
    let bad: Vec<_> = forbidden.iter().filter(|f| reached.contains(**f)).collect();
    assert!(
        bad.is_empty(),
        "{from} must not depend on {bad:?} (see ARCHITECTURE.md)"
    );
}

/// Crates that do I/O: network clients and servers, async runtimes, storage engines.
const IO: &[&str] = &[
    "tokio",
    "mio",
    "rdkafka",
    "rdkafka-sys",
    "scylla",
    "tonic",
    "axum",
    "hyper",
    "reqwest",
    "object_store",
    "fjall",
    "redb",
    "rocksdb",
    "librocksdb-sys",
];

const SERVICES: &[&str] = &[
    "switchboard-ingest",
    "switchboard-projector",
    "switchboard-query",
    "switchboard-edge",
];

#[test]
fn events_does_no_io_and_depends_on_no_other_crate_of_ours() {
    let graph = graph();
    let mut forbidden = IO.to_vec();
    forbidden.extend(["switchboard-log", "switchboard-store"]);
    forbidden.extend(SERVICES);
    assert_never_reaches(&graph, "switchboard-events", &forbidden);
}

#[test]
fn the_ports_know_nothing_of_the_services_or_of_each_other() {
    let graph = graph();
    let mut forbidden = SERVICES.to_vec();
    forbidden.push("switchboard-store");
    forbidden.push("scylla");
    assert_never_reaches(&graph, "switchboard-log", &forbidden);
    let mut forbidden = SERVICES.to_vec();
    forbidden.push("switchboard-log");
    forbidden.push("rdkafka");
    assert_never_reaches(&graph, "switchboard-store", &forbidden);
}

#[test]
fn readers_cannot_reach_the_writers() {
    let graph = graph();
    // query never writes events: it cannot reach the command side.
    assert_never_reaches(
        &graph,
        "switchboard-query",
        &["switchboard-ingest", "switchboard-projector"],
    );
    // edge never writes read models: it cannot reach the projector.
    assert_never_reaches(&graph, "switchboard-edge", &["switchboard-projector"]);
    // The projector folds events; it neither takes commands nor serves reads.
    assert_never_reaches(
        &graph,
        "switchboard-projector",
        &[
            "switchboard-ingest",
            "switchboard-query",
            "switchboard-edge",
        ],
    );
}

#[test]
fn the_check_itself_sees_real_edges() {
    // Guards the guard: if the graph came back empty, every test above would pass vacuously.
    let graph = graph();
    let events = reachable(&graph, "switchboard-events");
    assert!(
        events.contains("apache-avro") && events.contains("sha2"),
        "{events:?}"
    );
    assert!(reachable(&graph, "switchboard").contains("switchboard-events"));
}
