//! Progress on long work, drawn on stderr only when stderr is a terminal (so pipes and scripts
//! see nothing but the final summary), and the summary itself.

use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a command went through, counted as it goes.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    pub events: u64,
    pub conversations: u64,
    pub bytes: u64,
    /// Whether events and conversations are counted (not in an Avro body over --url).
    counted: bool,
    last_conversation: Option<String>,
}

impl Progress {
    /// A spinner for work of unknown size, showing the counts.
    pub fn spinner(what: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(None, target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .expect("the template parses"),
        );
        bar.set_prefix(what);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::with(bar)
    }

    /// A bar of `total` steps (records, for a rebuild).
    pub fn bar(what: &'static str, total: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), target());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} records, {per_sec}, eta {eta}",
            )
            .expect("the template parses")
            .progress_chars("=> "),
        );
        bar.set_prefix(what);
        Self::with(bar)
    }

    fn with(bar: ProgressBar) -> Self {
        Self {
            bar,
            started: Instant::now(),
            events: 0,
            conversations: 0,
            bytes: 0,
            counted: true,
            last_conversation: None,
        }
    }

    /// The events and conversations are not counted: the summary gives bytes only.
    pub fn uncounted(mut self) -> Self {
        self.counted = false;
        self
    }

    /// Counts `events` events and `bytes` bytes of `conversation` (a new one when it changes).
    pub fn add(&mut self, conversation: Option<&str>, events: u64, bytes: u64) {
        if let Some(id) = conversation
            && self.last_conversation.as_deref() != Some(id)
        {
            self.conversations += 1;
            self.last_conversation = Some(id.to_owned());
        }
        self.events += events;
        self.bytes += bytes;
        if self.bar.length().is_some() {
            self.bar.set_position(self.events);
        } else {
            self.bar.set_message(format!(
                "{} events, {} conversations, {}",
                self.events,
                self.conversations,
                Bytes(self.bytes)
            ));
        }
    }

    /// Clears the bar; the summary is what stays.
    pub fn finish(self) -> Summary {
        self.bar.finish_and_clear();
        Summary {
            events: self.events,
            conversations: self.conversations,
            bytes: self.bytes,
            counted: self.counted,
            took: self.started.elapsed(),
        }
    }
}

fn target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// The counts at the end, as one line: `12 events of 3 conversations, 4.2 KiB, in 0.05 s`.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub events: u64,
    pub conversations: u64,
    pub bytes: u64,
    pub counted: bool,
    pub took: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.counted {
            return write!(
                f,
                "{} in {:.2} s (events are not counted in an Avro body)",
                Bytes(self.bytes),
                self.took.as_secs_f64()
            );
        }
        write!(
            f,
            "{} events of {} conversations, {}, in {:.2} s",
            self.events,
            self.conversations,
            Bytes(self.bytes),
            self.took.as_secs_f64()
        )
    }
}

/// A byte count in binary units.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as f64;
        match self.0 {
            0..1024 => write!(f, "{} B", self.0),
            1024..1_048_576 => write!(f, "{:.1} KiB", n / 1024.0),
            1_048_576..1_073_741_824 => write!(f, "{:.1} MiB", n / 1_048_576.0),
            _ => write!(f, "{:.2} GiB", n / 1_073_741_824.0),
        }
    }
}
