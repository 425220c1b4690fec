//! What is measured: latency histograms and a server process's CPU time and memory.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"))
    }
}

impl Latency {
    pub fn record(&mut self, micros: u64) {
        self.0.saturating_record(micros.max(1));
    }

    pub fn record_duration(&mut self, d: Duration) {
        self.record(d.as_micros() as u64);
    }

    pub fn add(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// The quantile `q` (0.5, 0.99, ...) in milliseconds; `None` when nothing was recorded.
    pub fn ms(&self, q: f64) -> Option<f64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(q) as f64 / 1000.0)
    }
}

/// Ticks of `/proc/<pid>/stat` per second (`getconf CLK_TCK`, 100 on Linux).
const TICKS: f64 = 100.0;

/// User + system CPU seconds the process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: count fields after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (field(11) + field(12)) / TICKS
}

/// The process's resident memory in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
