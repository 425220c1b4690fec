//! Agent presence from leases: an agent is online while some connection renews its lease, and
//! goes offline when the lease runs out — so an agent whose edge vanished goes offline within
//! the lease, on every instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_events::id::TenantId;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::hub::{Hub, Key};
use crate::protocol::ServerFrame;
use crate::signals::Signal;

/// The lease table of this instance.
#[derive(Debug, Default)]
pub struct Presence {
    leases: HashMap<(String, String), Instant>,
}

impl Presence {
    /// Applies a presence signal; says whether the agent's online state changed.
    pub fn apply(&mut self, tenant: &str, agent: &str, online: bool, lease: Duration) -> bool {
        let key = (tenant.to_owned(), agent.to_owned());
        if online {
            self.leases.insert(key, Instant::now() + lease).is_none()
        } else {
            self.leases.remove(&key).is_some()
        }
    }

    /// Removes the expired leases and returns their agents.
    pub fn expire(&mut self) -> Vec<(String, String)> {
        let now = Instant::now();
        let expired: Vec<_> = self
            .leases
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.leases.remove(key);
        }
        expired
    }
}

/// Hears signals and hands them to the connections of this instance; expires leases.
pub async fn dispatch(hub: Arc<Hub>, mut signals: broadcast::Receiver<Signal>, sweep: Duration) {
    let mut presence = Presence::default();
    let mut tick = tokio::time::interval(sweep);
    loop {
        tokio::select! {
            heard = signals.recv() => match heard {
                Ok(signal) => handle(&hub, &mut presence, signal),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "ephemeral signals skipped: the edge fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                for (tenant, agent) in presence.expire() {
                    if let Ok(tenant) = TenantId::new(tenant) {
                        hub.to_staff(&tenant, &ServerFrame::Presence { agent_id: agent, online: false });
                    }
                }
            }
        }
    }
}

fn handle(hub: &Hub, presence: &mut Presence, signal: Signal) {
    match signal {
        Signal::Typing {
            tenant,
            conversation,
            role,
            subject,
            active,
        } => {
            let Some(key) = key(&tenant, &conversation) else {
                return;
            };
            let frame = ServerFrame::Typing {
                conversation_id: conversation,
                role,
                subject,
                active,
            };
            hub.to_subscribers(&key, &frame, None);
        }
        Signal::Presence {
            tenant,
            agent,
            online,
            lease_ms,
        } => {
            if presence.apply(&tenant, &agent, online, Duration::from_millis(lease_ms))
                && let Ok(tenant) = TenantId::new(tenant)
            {
                hub.to_staff(
                    &tenant,
                    &ServerFrame::Presence {
                        agent_id: agent,
                        online,
                    },
                );
            }
        }
        Signal::Queue {
            tenant,
            conversation,
            position,
            estimated_wait_s,
        } => {
            let Some(key) = key(&tenant, &conversation) else {
                return;
            };
            let frame = ServerFrame::Queue {
                conversation_id: conversation,
                position,
                estimated_wait_s,
            };
            hub.to_subscribers(&key, &frame, None);
        }
    }
}

fn key(tenant: &str, conversation: &str) -> Option<Key> {
    Some((TenantId::new(tenant).ok()?, conversation.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lease_not_renewed_expires() {
        let mut presence = Presence::default();
        let lease = Duration::from_secs(30);
        assert!(presence.apply("acme", "a1", true, lease));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(
            !presence.apply("acme", "a1", true, lease),
            "a renewal is no change"
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert!(presence.expire().is_empty());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            presence.expire(),
            vec![("acme".to_owned(), "a1".to_owned())]
        );
    }
}
