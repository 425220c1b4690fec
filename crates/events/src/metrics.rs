//! The one metrics registry of the workspace: counters, gauges and histograms, with bounded
//! label sets, written in Prometheus' text exposition format (version 0.0.4).
//!
//! Each crate declares its metrics as statics in its own `metrics.rs` (names, labels and
//! meaning as `docs/telemetry.md` specifies them) and renders them with [`Exposition`]; the
//! binary concatenates the crates' pages on the admin listener. Recording is a relaxed atomic
//! add; a labelled series is found by a read-locked scan of its family's few series, so a hot
//! path that always uses the same labels keeps the [`Arc`] it gets from [`Family::get`].

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Buckets of every `*_seconds` histogram: 100 µs to 10 s.
pub const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets of every count-per-operation histogram (`*_records`, `*_commands`).
pub const COUNTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A monotonic count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Self {
        Self(AtomicI64::new(0))
    }

    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn dec(&self) {
        self.add(-1);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Observations counted into fixed buckets ([`SECONDS`] or [`COUNTS`]).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then the `+Inf` bucket; not cumulative (the exposition sums them).
    buckets: Box<[AtomicU64]>,
    /// The sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// A histogram of durations, in seconds.
    pub fn seconds() -> Self {
        Self::new(SECONDS)
    }

    /// A histogram of counts per operation.
    pub fn counts() -> Self {
        Self::new(COUNTS)
    }

    pub fn observe(&self, value: f64) {
        let index = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn observe_duration(&self, duration: Duration) {
        self.observe(duration.as_secs_f64());
    }

    /// How many observations there were.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(bound) => format!("{bound}"),
                None => "+Inf".to_owned(),
            };
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = braced(labels);
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// What a family's series can be.
pub trait Series: Send + Sync {
    /// `counter`, `gauge` or `histogram`.
    const KIND: &'static str;
    fn write(&self, out: &mut String, name: &str, labels: &str);
}

impl Series for Counter {
    const KIND: &'static str = "counter";
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{} {}", braced(labels), self.get());
    }
}

impl Series for Gauge {
    const KIND: &'static str = "gauge";
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{} {}", braced(labels), self.get());
    }
}

impl Series for Histogram {
    const KIND: &'static str = "histogram";
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        Histogram::write(self, out, name, labels);
    }
}

fn braced(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

type Labelled<M> = (Box<[Box<str>]>, Arc<M>);

/// One metric's series, one per combination of its labels' values. The values come from
/// closed sets (`docs/telemetry.md`, "Labels"): never an id.
#[derive(Debug)]
pub struct Family<M> {
    labels: &'static [&'static str],
    make: fn() -> M,
    series: RwLock<Vec<Labelled<M>>>,
}

impl<M: Series> Family<M> {
    pub const fn new(labels: &'static [&'static str], make: fn() -> M) -> Self {
        Self {
            labels,
            make,
            series: RwLock::new(Vec::new()),
        }
    }

    /// The series of these label values (in the family's label order), made on first use.
    pub fn get(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.labels.len(), "{:?}", self.labels);
        let same = |(key, _): &&Labelled<M>| key.iter().map(|k| &**k).eq(values.iter().copied());
        if let Some((_, series)) = self.read().iter().find(same) {
            return series.clone();
        }
        let mut all = self.series.write().unwrap_or_else(|e| e.into_inner());
        if let Some((_, series)) = all.iter().find(same) {
            return series.clone();
        }
        let series = Arc::new((self.make)());
        all.push((values.iter().map(|v| (*v).into()).collect(), series.clone()));
        series
    }

    /// Drops the series of these label values (a partition released, say).
    pub fn remove(&self, values: &[&str]) {
        let mut all = self.series.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(key, _)| !key.iter().map(|k| &**k).eq(values.iter().copied()));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Labelled<M>>> {
        self.series.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// A page of metrics in the text format: `# HELP`, `# TYPE`, then the series, per metric.
#[derive(Debug)]
pub struct Exposition<'a> {
    out: &'a mut String,
}

impl<'a> Exposition<'a> {
    pub fn new(out: &'a mut String) -> Self {
        Self { out }
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A metric without labels.
    pub fn one<M: Series>(&mut self, name: &str, help: &str, metric: &M) {
        self.header(name, help, M::KIND);
        metric.write(self.out, name, "");
    }

    /// A gauge read at scrape time (memory, entries held).
    pub fn value(&mut self, name: &str, help: &str, kind: &str, value: f64) {
        self.header(name, help, kind);
        let _ = writeln!(self.out, "{name} {value}");
    }

    /// A metric with labels: every series it has, sorted by their values.
    pub fn family<M: Series>(&mut self, name: &str, help: &str, family: &Family<M>) {
        self.header(name, help, M::KIND);
        let mut series: Vec<(String, Arc<M>)> = family
            .read()
            .iter()
            .map(|(values, series)| (labels(family.labels, values), series.clone()))
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for (labels, series) in series {
            series.write(self.out, name, &labels);
        }
    }
}

fn labels(names: &[&str], values: &[Box<str>]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_resolves_a_tenth_of_a_millisecond() {
        let h = Histogram::seconds();
        h.observe_duration(Duration::from_micros(80));
        h.observe_duration(Duration::from_micros(200));
        h.observe(30.0);
        let mut out = String::new();
        Exposition::new(&mut out).one("switchboard_x_seconds", "x.", &h);
        assert!(
            out.contains("switchboard_x_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("switchboard_x_seconds_bucket{le=\"0.00025\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("switchboard_x_seconds_bucket{le=\"10\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("switchboard_x_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("switchboard_x_seconds_count 3\n"), "{out}");
        assert!(
            out.contains("# TYPE switchboard_x_seconds histogram\n"),
            "{out}"
        );
    }

    #[test]
    fn a_family_keeps_one_series_per_label_values_and_forgets_removed_ones() {
        let family: Family<Counter> = Family::new(&["kind", "outcome"], Counter::new);
        family.get(&["open", "ok"]).inc();
        family.get(&["open", "ok"]).add(2);
        family.get(&["send", "quo\"te"]).inc();
        let mut out = String::new();
        Exposition::new(&mut out).family("switchboard_c_total", "c.", &family);
        assert_eq!(
            out,
            "# HELP switchboard_c_total c.\n# TYPE switchboard_c_total counter\n\
             switchboard_c_total{kind=\"open\",outcome=\"ok\"} 3\n\
             switchboard_c_total{kind=\"send\",outcome=\"quo\\\"te\"} 1\n"
        );
        family.remove(&["open", "ok"]);
        let mut out = String::new();
        Exposition::new(&mut out).family("switchboard_c_total", "c.", &family);
        assert!(!out.contains("open"), "{out}");
    }
}
