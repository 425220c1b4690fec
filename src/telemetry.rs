//! What the process tells its operator: the log subscriber (text or JSON lines, by
//! configuration), the trace export (OTLP, when configured) and the metrics page of the admin
//! listener, which puts the process's own figures (build, readiness, CPU, memory, descriptors)
//! before every crate's metrics. `docs/telemetry.md` is the contract for all three.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use serde::{Deserialize, Serialize};
use switchboard_events::metrics::Exposition;
use switchboard_log::EventLog;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::serving::{MetricsPage, Shutdown};

/// `[telemetry]`: how the process logs and where its traces go.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `text` (the default, for a terminal) or `json` (one object per line, for a collector).
    pub log_format: LogFormat,
    /// `[telemetry.otlp]`: trace export, off unless an endpoint is set.
    pub otlp: OtlpConfig,
}

/// `[telemetry.otlp]`: the services' spans (`docs/telemetry.md` § Traces) exported over
/// OTLP/gRPC to a collector. Without an `endpoint` no span is made at all.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// The collector's OTLP/gRPC address, e.g. `http://otel-collector:4317`; empty (the
    /// default) turns tracing off.
    pub endpoint: String,
    /// The `service.name` of the spans. Default `switchboard`; the roles a process runs are
    /// in the `switchboard.roles` resource attribute either way.
    pub service_name: String,
    /// The share of new traces kept, 0.0 to 1.0 (default 1.0). A trace that arrives with a
    /// `traceparent` follows its caller's decision.
    pub sample_ratio: f64,
    /// How often finished spans are sent (default 5000 ms); spans still waiting are sent at
    /// shutdown.
    pub export_interval_ms: u64,
    /// How long one export may take before it is abandoned (default 10000 ms).
    pub timeout_ms: u64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            service_name: "switchboard".to_owned(),
            sample_ratio: 1.0,
            export_interval_ms: 5000,
            timeout_ms: 10_000,
        }
    }
}

impl OtlpConfig {
    /// Refuses what would fail later, or silently export nothing.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.endpoint.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"),
            "telemetry.otlp.endpoint {:?} is not a URL such as http://otel-collector:4317",
            self.endpoint
        );
        anyhow::ensure!(
            !self.endpoint.starts_with("https://"),
            "telemetry.otlp.endpoint {:?}: TLS to the collector is not built in; reach it over \
             http:// (a collector or sidecar on the node)",
            self.endpoint
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.sample_ratio),
            "telemetry.otlp.sample_ratio is {}, it must be between 0.0 and 1.0",
            self.sample_ratio
        );
        anyhow::ensure!(
            self.export_interval_ms > 0 && self.timeout_ms > 0,
            "telemetry.otlp.export_interval_ms and timeout_ms must be above 0"
        );
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The trace exporter of the process, when there is one: [`Telemetry::shutdown`] sends what
/// it still holds.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still waiting and stops the exporter. Call it while the runtime the
    /// exporter was made in still runs.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "the last spans were not exported");
        }
    }
}

/// Installs the process's subscriber: logs to standard error, filtered by `RUST_LOG` (default
/// `info`); and, with `[telemetry.otlp] endpoint` set, the services' spans exported over OTLP.
/// Call it within the tokio runtime the roles run on: the exporter's connection lives there.
pub fn init(config: &TelemetryConfig, roles: &str) -> anyhow::Result<Telemetry> {
    LazyLock::force(&STARTED);
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter);
    let provider = tracer_provider(&config.otlp, roles)?;
    // The services' spans are DEBUG, so the log filter leaves them disabled (no span is made)
    // unless traces are exported; their events at INFO and above become span events.
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("switchboard"))
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                let ours = meta.target().starts_with("switchboard");
                let level = if meta.is_span() {
                    tracing::Level::DEBUG
                } else {
                    tracing::Level::INFO
                };
                ours && *meta.level() <= level
            }))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(Telemetry { provider })
}

/// The OTLP exporter and its batching, or `None` when no endpoint is configured.
fn tracer_provider(config: &OtlpConfig, roles: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    config.check()?;
    if config.endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .with_timeout(Duration::from_millis(config.timeout_ms))
        .build()
        .with_context(|| format!("the OTLP exporter to {}", config.endpoint))?;
    let batches = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(config.export_interval_ms))
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes([
            opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            opentelemetry::KeyValue::new("switchboard.roles", roles.to_owned()),
            opentelemetry::KeyValue::new("process.pid", i64::from(std::process::id())),
        ])
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)));
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batches)
                    .build(),
            )
            .with_sampler(sampler)
            .with_resource(resource)
            .build(),
    ))
}

static STARTED: LazyLock<SystemTime> = LazyLock::new(SystemTime::now);

/// The page `/metrics` serves for a process running `roles`, each with its readiness flag when
/// it has one (a role without is ready once it serves).
pub fn metrics_page(
    roles: Vec<&'static str>,
    flags: Vec<(&'static str, Arc<AtomicBool>)>,
) -> MetricsPage {
    LazyLock::force(&STARTED);
    Arc::new(move || {
        let mut out = String::new();
        process(&mut out, &roles, &flags);
        switchboard_log::metrics::render(&mut out);
        switchboard_store::metrics::render(&mut out);
        switchboard_ingest::metrics::render(&mut out);
        switchboard_projector::metrics::render(&mut out);
        switchboard_query::metrics::render(&mut out);
        switchboard_edge::metrics::render(&mut out);
        out
    })
}

/// Refreshes every consumer's lag from the log every 5 s until shutdown.
pub async fn refresh_lag(log: Arc<dyn EventLog>, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(Duration::from_secs(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => switchboard_log::metrics::refresh_lag(log.as_ref()).await,
        }
    }
}

/// The process's own figures, read from `/proc/self` at each scrape.
fn process(out: &mut String, roles: &[&'static str], flags: &[(&'static str, Arc<AtomicBool>)]) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP switchboard_build_info The binary's version.");
    let _ = writeln!(out, "# TYPE switchboard_build_info gauge");
    let _ = writeln!(
        out,
        "switchboard_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let name = "switchboard_process_ready_roles";
    let _ = writeln!(out, "# HELP {name} 1 while the role is ready, per role.");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for role in roles {
        let ready = flags
            .iter()
            .filter(|(r, _)| r == role)
            .all(|(_, flag)| flag.load(Ordering::Acquire));
        let _ = writeln!(out, "{name}{{role=\"{role}\"}} {}", u8::from(ready));
    }
    let mut page = Exposition::new(out);
    let (cpu, rss, descriptors) = read_proc();
    page.value(
        "switchboard_process_cpu_seconds_total",
        "User and system CPU time of the process.",
        "counter",
        cpu,
    );
    page.value(
        "switchboard_process_resident_memory_bytes",
        "Resident set size of the process.",
        "gauge",
        rss,
    );
    page.value(
        "switchboard_process_open_descriptors",
        "Open file descriptors of the process.",
        "gauge",
        descriptors,
    );
    let started = STARTED
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    page.value(
        "switchboard_process_start_time_seconds",
        "Unix time the process started.",
        "gauge",
        started,
    );
}

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/self/stat`, 100 on every
/// architecture Linux supports (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: f64 = 100.0;
/// The unit of `/proc/self/statm` (4 KiB pages on the platforms the image is built for).
const PAGE_BYTES: f64 = 4096.0;

/// CPU seconds, resident bytes and open descriptors; zeros where `/proc` is not there.
fn read_proc() -> (f64, f64, f64) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| cpu_seconds(&stat))
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * PAGE_BYTES);
    let descriptors = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
    (cpu, rss, descriptors as f64)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name in
/// parentheses may hold spaces, so fields are counted after its closing one.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_is_off_unless_an_endpoint_is_set() {
        let off = TelemetryConfig::default().otlp;
        assert!(off.endpoint.is_empty());
        assert!(tracer_provider(&off, "edge").unwrap().is_none());
    }

    #[test]
    fn the_otlp_settings_load_from_the_configuration_and_bad_ones_are_refused() {
        let flags = [
            "telemetry.otlp.endpoint=http://otel-collector:4317".to_owned(),
            "telemetry.otlp.sample_ratio=0.25".to_owned(),
        ];
        let config = crate::config::load(None, &Vec::new(), &flags).unwrap();
        let otlp = &config.telemetry.otlp;
        assert_eq!(otlp.endpoint, "http://otel-collector:4317");
        assert_eq!((otlp.sample_ratio, otlp.export_interval_ms), (0.25, 5000));
        otlp.check().unwrap();
        for (endpoint, ratio, interval) in [
            ("otel-collector:4317", 1.0, 5000),
            ("https://otel-collector:4317", 1.0, 5000),
            ("http://otel-collector:4317", 1.5, 5000),
            ("http://otel-collector:4317", 1.0, 0),
        ] {
            let bad = OtlpConfig {
                endpoint: endpoint.to_owned(),
                sample_ratio: ratio,
                export_interval_ms: interval,
                ..OtlpConfig::default()
            };
            let error = bad.check().unwrap_err().to_string();
            assert!(error.contains("telemetry.otlp"), "{error}");
        }
        let unknown = ["telemetry.otlp.endpoints=http://x:4317".to_owned()];
        assert!(crate::config::load(None, &Vec::new(), &unknown).is_err());
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1";
        assert_eq!(cpu_seconds(stat), Some(4.0));
    }

    #[test]
    fn this_process_has_cpu_memory_and_descriptors() {
        // A test process may not have run a clock tick yet: work until it has (or 5 s).
        let started = std::time::Instant::now();
        let mut work = 0u64;
        while read_proc().0 == 0.0 && started.elapsed() < std::time::Duration::from_secs(5) {
            for i in 0..1_000_000u64 {
                work = std::hint::black_box(work.wrapping_mul(31).wrapping_add(i));
            }
        }
        let (cpu, rss, descriptors) = read_proc();
        assert!(
            cpu > 0.0 && rss > 1e6 && descriptors >= 3.0,
            "{cpu} {rss} {descriptors}"
        );
    }
}
