//! The order of pipelined commands. A connection runs its commands off its loop, so that a
//! slow write never stalls its reads and live events; but a client that sends several frames
//! to one conversation without waiting for each ack must get seqs in the order it sent them.
//! So the commands of one lane (a conversation, or the agent's own status) run one after the
//! other, each after the one before it has been answered, while lanes run side by side.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;
use tracing::Instrument;

/// Past this many lanes, those whose last command has finished are forgotten.
const PRUNE_AT: usize = 64;

/// The last command of each lane, as a signal that fires (by being dropped) once it is done.
#[derive(Debug)]
pub(crate) struct Lanes<K> {
    last: HashMap<K, oneshot::Receiver<()>>,
}

impl<K> Default for Lanes<K> {
    fn default() -> Self {
        Self {
            last: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> Lanes<K> {
    /// Spawns `work`, to start once every command spawned before it on `lane` has finished.
    /// It runs in the caller's span, so the command stays in the trace of its frame.
    pub fn spawn(&mut self, lane: K, work: impl Future<Output = ()> + Send + 'static) {
        let work = work.in_current_span();
        if self.last.len() >= PRUNE_AT {
            self.last
                .retain(|_, done| matches!(done.try_recv(), Err(TryRecvError::Empty)));
        }
        let (finished, done) = oneshot::channel::<()>();
        let before = self.last.insert(lane, done);
        tokio::spawn(async move {
            if let Some(before) = before {
                // Dropped unsent when the previous command ends, however it ends.
                let _ = before.await;
            }
            work.await;
            drop(finished);
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test]
    async fn a_lane_runs_its_commands_in_order_and_lanes_do_not_wait_for_each_other() {
        let mut lanes = Lanes::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Notify::new());
        let (all_done, mut done) = tokio::sync::mpsc::channel(8);
        for i in 0..3 {
            let (order, gate, all_done) = (order.clone(), gate.clone(), all_done.clone());
            lanes.spawn("a", async move {
                if i == 0 {
                    // The first command of lane a is slow: the others of a wait for it.
                    gate.notified().await;
                }
                order.lock().unwrap().push(format!("a{i}"));
                all_done.send(()).await.unwrap();
            });
        }
        let (b_order, b_done) = (order.clone(), all_done.clone());
        lanes.spawn("b", async move {
            b_order.lock().unwrap().push("b0".to_owned());
            b_done.send(()).await.unwrap();
        });
        done.recv().await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["b0"], "lane b ran while a waited");
        gate.notify_one();
        for _ in 0..3 {
            done.recv().await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["b0", "a0", "a1", "a2"]);
    }

    #[tokio::test]
    async fn finished_lanes_are_forgotten() {
        let mut lanes = Lanes::default();
        let (all_done, mut done) = tokio::sync::mpsc::channel(PRUNE_AT);
        for lane in 0..PRUNE_AT {
            let all_done = all_done.clone();
            lanes.spawn(lane, async move { all_done.send(()).await.unwrap() });
        }
        for _ in 0..PRUNE_AT {
            done.recv().await.unwrap();
        }
        // Each task drops its signal right after its work: let them get there.
        tokio::task::yield_now().await;
        lanes.spawn(PRUNE_AT, async {});
        assert!(lanes.len() < PRUNE_AT, "{} lanes kept", lanes.len());
    }
}
