//! Ephemeral signals — typing, presence, queue position — that cross edge instances but are
//! never events of record.
//!
//! Why a small bus trait and a log-backed implementation rather than a new kind of event: the
//! audit history is the conversation topic, which the projector folds and auditors replay. The
//! signals travel on their own topic (`switchboard.edge.signals`, one partition, JSON values)
//! that nothing projects or archives, and that operators give a retention of minutes on Kafka.
//! Every edge appends to it and tails it from its end, so a typing indicator sent on one
//! instance reaches subscribers on every instance. A single-process deployment uses
//! [`MemoryBus`] and writes nothing to disk.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_log::{EventLog, Follow, LogError, NewRecord, StartAt, TopicSpec};
use tokio::sync::{broadcast, mpsc};

/// The topic of ephemeral signals.
pub const SIGNALS_TOPIC: &str = "switchboard.edge.signals";

/// One signal. Times are durations, never clocks, so instances need no clock agreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    Typing {
        tenant: String,
        conversation: String,
        role: String,
        subject: String,
        active: bool,
    },
    /// An agent's liveness: `lease_ms` from now unless renewed; `online: false` ends it.
    Presence {
        tenant: String,
        agent: String,
        online: bool,
        lease_ms: u64,
    },
    Queue {
        tenant: String,
        conversation: String,
        position: Option<u32>,
        estimated_wait_s: Option<u64>,
    },
}

/// Where signals are published and heard. Publishing never waits: signals are advisory, and
/// one that cannot be sent is dropped.
pub trait SignalBus: Send + Sync + std::fmt::Debug {
    fn publish(&self, signal: Signal);
    fn subscribe(&self) -> broadcast::Receiver<Signal>;
}

/// Signals within one process.
#[derive(Debug, Clone)]
pub struct MemoryBus {
    tx: broadcast::Sender<Signal>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(4096).0,
        }
    }
}

impl SignalBus for MemoryBus {
    fn publish(&self, signal: Signal) {
        let _ = self.tx.send(signal);
    }

    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }
}

/// Signals across instances, through the signals topic of the event log.
#[derive(Debug, Clone)]
pub struct LogBus {
    out: mpsc::Sender<Signal>,
    local: broadcast::Sender<Signal>,
}

impl LogBus {
    /// Creates the topic if needed and starts the appender and the tail.
    pub async fn start(log: Arc<dyn EventLog>) -> Result<Self, LogError> {
        log.create_topic(&TopicSpec::new(SIGNALS_TOPIC, 1)).await?;
        // Follow survives read errors (a broker restarting): signals resume with it.
        let mut follow = Follow::start(log.clone(), SIGNALS_TOPIC, 0, StartAt::Latest).await?;
        let local = broadcast::channel(4096).0;
        let (out, mut pending) = mpsc::channel::<Signal>(4096);
        let heard = local.clone();
        tokio::spawn(async move {
            loop {
                let record = follow.next().await;
                if let Ok(signal) = serde_json::from_slice::<Signal>(&record.value) {
                    let _ = heard.send(signal);
                }
            }
        });
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while pending.recv_many(&mut batch, 256).await > 0 {
                let records = batch
                    .drain(..)
                    .filter_map(|s| serde_json::to_vec(&s).ok())
                    .map(|value| NewRecord::new(Vec::new(), value))
                    .collect();
                if let Err(error) = log
                    .append(SIGNALS_TOPIC, records, &Default::default())
                    .await
                {
                    tracing::warn!(%error, "ephemeral signals dropped");
                }
            }
        });
        Ok(Self { out, local })
    }
}

impl SignalBus for LogBus {
    fn publish(&self, signal: Signal) {
        let _ = self.out.try_send(signal);
    }

    fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.local.subscribe()
    }
}
