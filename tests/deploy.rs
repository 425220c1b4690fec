//! The deployment files and the metrics contract: `ops/check-deploy.sh` validates the files
//! with the real tools (promtool, the Kubernetes and compose-spec schemas, hadolint), and the
//! tests below hold `docs/telemetry.md`, the alerts and the dashboard to the naming rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_deployment_files_pass_check_deploy() {
    let output = Command::new("bash")
        .arg("ops/check-deploy.sh")
        .current_dir(root())
        .output()
        .expect("bash runs");
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "ops/check-deploy.sh failed");
}

/// The subsystems a metric's noun starts with (docs/telemetry.md, "Naming").
const SUBSYSTEMS: &[&str] = &[
    "process",
    "build",
    "log",
    "store",
    "ingest",
    "router",
    "projector",
    "archive",
    "query",
    "edge",
];

/// Units a histogram may measure.
const HISTOGRAM_UNITS: &[&str] = &["seconds", "bytes", "records", "commands"];

/// Label names that would carry an id of a person, a conversation or a tenant.
const FORBIDDEN_LABELS: &[&str] = &[
    "conversation",
    "customer",
    "visitor",
    "agent",
    "message",
    "tenant",
    "user",
    "session",
    "token",
    "subject",
    "email",
];

/// Labels the scrape or Prometheus adds, not the process.
const TARGET_LABELS: &[&str] = &["job", "instance", "role", "namespace", "pod", "le"];

#[derive(Debug)]
struct Metric {
    kind: String,
    unit: String,
    labels: Vec<String>,
}

#[derive(Debug)]
struct Spec {
    units: BTreeSet<String>,
    labels: BTreeSet<String>,
    metrics: BTreeMap<String, Metric>,
}

/// The cells of a Markdown table row, trimmed; `None` for other lines.
fn cells(line: &str) -> Option<Vec<&str>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

/// `` `name` `` → `name`.
fn code(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

fn spec() -> Spec {
    let text = read("docs/telemetry.md");
    let mut section = "";
    let mut spec = Spec {
        units: BTreeSet::new(),
        labels: BTreeSet::new(),
        metrics: BTreeMap::new(),
    };
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim();
            continue;
        }
        let Some(row) = cells(line) else { continue };
        let Some(first) = code(row[0]) else { continue };
        match section {
            "Units" => {
                spec.units.insert(first.to_owned());
            }
            "Labels" => {
                spec.labels.insert(first.to_owned());
            }
            "Metrics" => {
                assert_eq!(row.len(), 6, "a metric row has six cells: {line}");
                let labels = row[3]
                    .split(',')
                    .filter_map(|l| code(l.trim()))
                    .map(str::to_owned)
                    .collect();
                let metric = Metric {
                    kind: row[1].to_owned(),
                    unit: row[2].to_owned(),
                    labels,
                };
                let previous = spec.metrics.insert(first.to_owned(), metric);
                assert!(previous.is_none(), "{first} is specified twice");
            }
            _ => {}
        }
    }
    assert!(!spec.units.is_empty(), "docs/telemetry.md lists no unit");
    assert!(!spec.labels.is_empty(), "docs/telemetry.md lists no label");
    assert!(
        !spec.metrics.is_empty(),
        "docs/telemetry.md lists no metric"
    );
    spec
}

/// Why `name` breaks `switchboard_<noun>_<unit>[_total]`, if it does.
fn naming_error(spec: &Spec, name: &str, kind: &str) -> Option<String> {
    let Some(rest) = name.strip_prefix("switchboard_") else {
        return Some("does not start with switchboard_".into());
    };
    let mut words: Vec<&str> = rest.split('_').collect();
    if words.iter().any(|w| {
        w.is_empty()
            || !w
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) {
        return Some("is not lowercase words joined by single underscores".into());
    }
    let total = words.last() == Some(&"total");
    if total != (kind == "counter") {
        return Some("only counters, and every counter, end in _total".into());
    }
    if total {
        words.pop();
    }
    let Some((unit, noun)) = words.split_last() else {
        return Some("has no unit".into());
    };
    if noun.is_empty() {
        return Some("has no noun before its unit".into());
    }
    if !SUBSYSTEMS.contains(&noun[0]) {
        return Some(format!(
            "noun does not start with a subsystem ({SUBSYSTEMS:?})"
        ));
    }
    if !spec.units.contains(*unit) {
        return Some(format!("unit {unit} is not in the Units table"));
    }
    if kind == "histogram" && !HISTOGRAM_UNITS.contains(unit) {
        return Some(format!("a histogram of {unit}"));
    }
    None
}

fn forbidden(label: &str) -> bool {
    label.ends_with("_id")
        || FORBIDDEN_LABELS
            .iter()
            .any(|f| label == *f || label.starts_with(&format!("{f}_")))
}

#[test]
fn every_specified_metric_follows_the_naming_rule_with_bounded_labels() {
    let spec = spec();
    let mut errors = Vec::new();
    for label in &spec.labels {
        if forbidden(label) {
            errors.push(format!("label {label} would carry an id"));
        }
    }
    for (name, metric) in &spec.metrics {
        if !["counter", "gauge", "histogram"].contains(&metric.kind.as_str()) {
            errors.push(format!("{name}: type {}", metric.kind));
        }
        if let Some(error) = naming_error(&spec, name, &metric.kind) {
            errors.push(format!("{name}: {error}"));
        }
        let unit_word = name.trim_end_matches("_total").rsplit('_').next();
        if unit_word != Some(metric.unit.as_str()) {
            errors.push(format!("{name}: unit column says {}", metric.unit));
        }
        for label in &metric.labels {
            if forbidden(label) {
                errors.push(format!("{name}: label {label} would carry an id"));
            }
            if !spec.labels.contains(label) {
                errors.push(format!("{name}: label {label} has no value set in Labels"));
            }
            if label == "le" {
                errors.push(format!("{name}: le is Prometheus's own label"));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "docs/telemetry.md:\n{}",
        errors.join("\n")
    );
}

#[test]
fn the_spec_covers_what_the_issue_asks_for() {
    let spec = spec();
    let required = [
        "switchboard_edge_open_connections",
        "switchboard_edge_opened_connections_total",
        "switchboard_edge_received_frames_total",
        "switchboard_edge_sent_frames_total",
        "switchboard_ingest_commands_total",
        "switchboard_ingest_ack_latency_seconds",
        "switchboard_log_append_latency_seconds",
        "switchboard_log_append_batch_records",
        "switchboard_log_consumer_lag_records",
        "switchboard_projector_lag_seconds",
        "switchboard_query_cache_lookups_total",
        "switchboard_projector_dead_lettered_records_total",
        "switchboard_edge_refused_frames_total",
        "switchboard_archive_runs_total",
        "switchboard_archive_written_bytes_total",
        "switchboard_process_cpu_seconds_total",
        "switchboard_process_resident_memory_bytes",
    ];
    let missing: Vec<_> = required
        .iter()
        .filter(|name| !spec.metrics.contains_key(**name))
        .collect();
    assert!(missing.is_empty(), "not specified: {missing:?}");
    assert!(spec.metrics["switchboard_edge_received_frames_total"].labels == ["type"]);
    assert!(spec.metrics["switchboard_ingest_commands_total"].labels == ["kind", "outcome"]);
    let lag = &spec.metrics["switchboard_log_consumer_lag_records"].labels;
    assert!(lag.contains(&"partition".to_owned()) && lag.contains(&"consumer".to_owned()));

    let text = read("docs/telemetry.md");
    let buckets = text
        .lines()
        .find(|l| l.starts_with('`') && l.contains("0.0001"))
        .expect("the duration buckets are listed");
    assert!(
        buckets.starts_with("`0.0001,") && buckets.contains(", 10`"),
        "duration buckets resolve 100 µs to 10 s: {buckets}"
    );
}

/// The PromQL expressions of a Prometheus rules file: `expr:` values, plain or block scalars.
fn rule_expressions(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        i += 1;
        let Some(rest) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let mut block = String::new();
            while i < lines.len() {
                let next = lines[i];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push_str(next.trim());
                block.push(' ');
                i += 1;
            }
            exprs.push(block);
        } else {
            exprs.push(rest.trim_matches(['"', '\'']).to_owned());
        }
    }
    exprs
}

/// The PromQL expressions of a Grafana dashboard: every `expr` string, at any depth.
fn dashboard_expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(expr) if key == "expr" => out.push(expr.clone()),
                    other => dashboard_expressions(other, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                dashboard_expressions(item, out);
            }
        }
        _ => {}
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Metric names and label names an expression uses: names start with `switchboard_` (or are
/// Prometheus's own, such as `up`); labels come from `{…}` matchers and from the label lists
/// of `by`, `without`, `on`, `ignoring`, `group_left` and `group_right`.
fn names_in(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\'' {
            // A string: skip it.
            i += 1;
            while i < bytes.len() && bytes[i] != b {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b == b'{' {
            // Matchers: label op "value", …
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    i += 1;
                    break;
                }
                let start = i;
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
                labels.insert(expr[start..i].to_owned());
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\'' {
                    i += 1;
                }
                let quote = bytes.get(i).copied().unwrap_or(b'"');
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
        } else if is_ident(b) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("switchboard_") {
                metrics.insert(word.to_owned());
            } else if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&word)
            {
                let mut j = i;
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                if bytes.get(j) == Some(&b'(') {
                    let end = expr[j..].find(')').map_or(expr.len(), |e| j + e);
                    for label in expr[j + 1..end].split(',') {
                        let label = label.trim();
                        if !label.is_empty() {
                            labels.insert(label.to_owned());
                        }
                    }
                    i = end + 1;
                }
            }
        } else {
            i += 1;
        }
    }
    (metrics, labels)
}

#[test]
fn alerts_and_dashboard_use_only_specified_metrics_and_labels() {
    let spec = spec();
    let mut exprs: Vec<(String, String)> = Vec::new();
    let alerts = "ops/prometheus/alerts.yml";
    for expr in rule_expressions(&read(alerts)) {
        exprs.push((alerts.to_owned(), expr));
    }
    let dashboards = root().join("ops/grafana/dashboards");
    let mut dashboard_count = 0;
    for entry in std::fs::read_dir(&dashboards).expect("ops/grafana/dashboards") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        dashboard_count += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut found = Vec::new();
        dashboard_expressions(&json, &mut found);
        let shown = Path::new("ops/grafana/dashboards").join(path.file_name().unwrap());
        exprs.extend(found.into_iter().map(|e| (shown.display().to_string(), e)));
    }
    assert!(dashboard_count > 0, "no dashboard");
    assert!(
        exprs.len() > 20,
        "too few expressions found: {}",
        exprs.len()
    );

    let mut errors = Vec::new();
    let mut used = BTreeSet::new();
    for (file, expr) in &exprs {
        let (metrics, labels) = names_in(expr);
        for name in metrics {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|base| {
                    spec.metrics
                        .get(*base)
                        .is_some_and(|m| m.kind == "histogram")
                })
                .unwrap_or(&name);
            match spec.metrics.get(base) {
                None => errors.push(format!("{file}: {name} is not in docs/telemetry.md")),
                Some(metric) => {
                    if let Some(error) = naming_error(&spec, base, &metric.kind) {
                        errors.push(format!("{file}: {base}: {error}"));
                    }
                    used.insert(base.to_owned());
                }
            }
        }
        for label in labels {
            if forbidden(&label) {
                errors.push(format!("{file}: label {label} would carry an id"));
            } else if !spec.labels.contains(&label) && !TARGET_LABELS.contains(&label.as_str()) {
                errors.push(format!("{file}: label {label} is not in docs/telemetry.md"));
            }
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(
        used.len() > 30,
        "the dashboard and alerts use {} metrics",
        used.len()
    );
}

#[test]
fn the_expression_scanner_finds_names_and_labels() {
    let (metrics, labels) = names_in(
        r#"sum by (consumer, topic) (rate(switchboard_a_b_total{outcome=~"x|y",kind!="a,b"}[5m])) / on(instance) up"#,
    );
    assert_eq!(
        metrics.into_iter().collect::<Vec<_>>(),
        ["switchboard_a_b_total"]
    );
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        ["consumer", "instance", "kind", "outcome", "topic"]
    );
    let exprs = rule_expressions(
        "  - alert: A\n    expr: |\n      sum(x)\n      > 1\n    for: 5m\n  - alert: B\n    expr: up == 0\n",
    );
    assert_eq!(exprs, ["sum(x) > 1 ", "up == 0"]);
    assert!(forbidden("conversation_id") && forbidden("tenant") && forbidden("customer"));
    assert!(!forbidden("consumer") && !forbidden("partition"));
}

#[test]
fn every_shipped_configuration_file_loads_in_the_binary() {
    for file in [
        "ops/container.toml",
        "ops/compose/switchboard.toml",
        "ops/k8s/switchboard.toml",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["config", "--config"])
            .arg(root().join(file))
            .env_remove("SWITCHBOARD_TEST_SCYLLA")
            .env_remove("SWITCHBOARD_TEST_KAFKA")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file} does not load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The role sets the deployment files start, each with its deployment's configuration.
fn deployed_roles() -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    let mut scan = |config: &'static str, file: &str| {
        for line in read(file).lines() {
            let Some((_, rest)) = line.split_once("--roles,") else {
                continue;
            };
            let roles = rest.split(',').next().unwrap_or_default();
            let roles = rest
                .trim_start()
                .strip_prefix('"')
                .and_then(|quoted| quoted.split_once('"'))
                .map_or(roles, |(inside, _)| inside);
            found.push((config, roles.trim().to_owned()));
        }
    };
    scan("ops/compose/switchboard.toml", "ops/compose/compose.yaml");
    for entry in std::fs::read_dir(root().join("ops/k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            scan("ops/k8s/switchboard.toml", &name);
        }
    }
    found
}

#[test]
fn every_deployed_role_set_passes_the_start_up_checks_with_its_configuration() {
    let deployed = deployed_roles();
    let roles: BTreeSet<&str> = deployed
        .iter()
        .flat_map(|(_, roles)| roles.split(','))
        .collect();
    for role in ["edge", "ingest", "router", "projector", "archiver", "query"] {
        assert!(roles.contains(role), "no deployment runs the {role} role");
    }
    for (config, roles) in deployed {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["config", "--roles", &roles, "--config"])
            .arg(root().join(config))
            .env_remove("SWITCHBOARD_TEST_SCYLLA")
            .env_remove("SWITCHBOARD_TEST_KAFKA")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "--roles {roles} with {config} would not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_role_check_refuses_a_router_without_ingest() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["config", "--roles", "router", "--config"])
        .arg(root().join("ops/compose/switchboard.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ingest role"), "{stderr}");
}
