//! What the process tells its operator: the log subscriber (text or JSON lines, by
//! configuration) and the metrics page of the admin listener, which puts the process's own
//! figures (build, readiness, CPU, memory, descriptors) before every crate's metrics.
//! `docs/telemetry.md` is the contract for both.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use switchboard_events::metrics::Exposition;
use switchboard_log::EventLog;

use crate::serving::{MetricsPage, Shutdown};

/// `[telemetry]`: how the process logs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `text` (the default, for a terminal) or `json` (one object per line, for a collector).
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the process's subscriber: `RUST_LOG` filters (default `info`), to standard error.
pub fn init(config: &TelemetryConfig) {
    LazyLock::force(&STARTED);
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
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
