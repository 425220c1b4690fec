//! The tenant directory: every tenant's latest settings, folded from the agent topic on which
//! they are events of record. Each instance that needs them (the admin API, the edge) follows
//! every partition of the topic, so a change made anywhere reaches it without a restart.
//!
//! The writer decides changes on its own fold (`crate::tenant`); the directory is a read model
//! for lookups (by tenant, by widget key) and lists.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde::Serialize;
use switchboard_events::agent::AgentPayload;
use switchboard_events::envelope::Actor;
use switchboard_events::id::TenantId;
use switchboard_events::tenant::{TENANT_STREAM, TenantSettings};
use switchboard_events::{AgentEvent, Seq, Timestamp, Topic};
use switchboard_log::{EventLog, Follow, LogError, StartAt};
use tokio::sync::watch;

/// A tenant as the directory knows it: its settings and who last changed them, when.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct TenantRecord {
    pub tenant: TenantId,
    pub settings: TenantSettings,
    /// The seq of the latest settings event on the tenant's chain.
    pub seq: Seq,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub updated_by: Actor,
}

#[derive(Debug)]
struct Inner {
    tenants: RwLock<HashMap<TenantId, TenantRecord>>,
    /// Bumped at every change, so that a caller can wait for one.
    changes: watch::Sender<u64>,
}

/// Every tenant's latest settings. Clones share one directory.
#[derive(Clone, Debug)]
pub struct Directory {
    inner: Arc<Inner>,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                tenants: RwLock::new(HashMap::new()),
                changes: watch::channel(0).0,
            }),
        }
    }
}

impl Directory {
    /// Reads every partition of the agent topic to its end, then follows it for as long as a
    /// clone of the directory lives. The topic must exist (the writer creates it).
    pub async fn follow(log: Arc<dyn EventLog>) -> Result<Self, LogError> {
        let directory = Self::default();
        let topic = Topic::Agents.name();
        for partition in 0..log.partitions(topic).await? {
            let range = log.offsets(topic, partition).await?;
            let mut next = range.start;
            while next < range.end {
                let records = log.read(topic, partition, next, 1024).await?;
                let Some(last) = records.last() else { break };
                next = last.offset + 1;
                for record in &records {
                    directory.apply_frame(&record.value);
                }
            }
            let mut follow =
                Follow::start(log.clone(), topic, partition, StartAt::Offset(next)).await?;
            let weak: Weak<Inner> = Arc::downgrade(&directory.inner);
            tokio::spawn(async move {
                loop {
                    let record = follow.next().await;
                    let Some(inner) = weak.upgrade() else { return };
                    Self { inner }.apply_frame(&record.value);
                }
            });
        }
        Ok(directory)
    }

    fn apply_frame(&self, frame: &[u8]) {
        match AgentEvent::decode(frame) {
            Ok(event) => self.apply(&event),
            // The projector dead-letters it; here it only is not a tenant.
            Err(e) => {
                tracing::debug!(error = %e, "the tenant directory skips an undecodable event")
            }
        }
    }

    /// Takes in an event of the agent topic: a tenant's settings change replaces its record.
    pub fn apply(&self, event: &AgentEvent) {
        let AgentPayload::TenantSettingsChanged(change) = &event.payload else {
            return;
        };
        let envelope = &event.envelope;
        if envelope.agent_id.as_str() != TENANT_STREAM {
            return;
        }
        let settings = match change.document() {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!(tenant = %envelope.tenant_id, seq = envelope.seq.0, error = %e, "tenant settings that do not read are skipped");
                return;
            }
        };
        {
            let mut tenants = self
                .inner
                .tenants
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let created_at = match tenants.get(&envelope.tenant_id) {
                Some(known) if known.seq >= envelope.seq => return, // seen already
                Some(known) => known.created_at,
                None => envelope.occurred_at,
            };
            tenants.insert(
                envelope.tenant_id.clone(),
                TenantRecord {
                    tenant: envelope.tenant_id.clone(),
                    settings,
                    seq: envelope.seq,
                    created_at,
                    updated_at: envelope.occurred_at,
                    updated_by: envelope.actor.clone(),
                },
            );
        }
        self.inner.changes.send_modify(|n| *n += 1);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<TenantId, TenantRecord>> {
        self.inner
            .tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, tenant: &TenantId) -> Option<TenantRecord> {
        self.read().get(tenant).cloned()
    }

    /// The tenant whose widget key this is.
    pub fn by_widget_key(&self, key: &str) -> Option<TenantRecord> {
        self.read()
            .values()
            .find(|r| r.settings.widget_key == key)
            .cloned()
    }

    /// Every tenant, by id.
    pub fn list(&self) -> Vec<TenantRecord> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        all
    }

    /// Waits until the directory holds `tenant` at `seq` or later, at most `within`: so that a
    /// read after an acknowledged change sees it. Returns whether it does.
    pub async fn wait_for(&self, tenant: &TenantId, seq: Seq, within: Duration) -> bool {
        let mut changes = self.inner.changes.subscribe();
        let reached = || self.get(tenant).is_some_and(|r| r.seq >= seq);
        tokio::time::timeout(within, async {
            loop {
                if reached() {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
            && reached()
    }
}

#[cfg(test)]
mod tests {
    use switchboard_events::fixtures;

    use super::*;

    #[test]
    fn the_latest_settings_event_of_a_tenant_is_its_record() {
        let directory = Directory::default();
        let history = fixtures::tenant_history();
        for (event, _) in &history {
            directory.apply(event);
        }
        // Delivered again (a re-read of the log): nothing moves back.
        directory.apply(&history[0].0);
        let record = directory.get(&fixtures::tenant()).unwrap();
        assert_eq!(record.seq, Seq(2));
        assert!(record.settings.business_hours.is_some());
        assert_eq!(record.created_at, history[0].0.envelope.occurred_at);
        assert_eq!(
            directory
                .by_widget_key("wk_0123456789abcdef")
                .map(|r| r.tenant),
            Some(fixtures::tenant())
        );
        assert!(directory.by_widget_key("wk_other").is_none());
        // Agent events are not tenants.
        for (event, _) in fixtures::agent_history() {
            directory.apply(&event);
        }
        assert_eq!(directory.list().len(), 1);
    }

    #[tokio::test]
    async fn waiting_for_a_change_ends_when_it_is_folded() {
        let directory = Directory::default();
        let history = fixtures::tenant_history();
        let tenant = fixtures::tenant();
        let waiter = {
            let directory = directory.clone();
            let tenant = tenant.clone();
            tokio::spawn(async move {
                directory
                    .wait_for(&tenant, Seq(2), Duration::from_secs(30))
                    .await
            })
        };
        directory.apply(&history[0].0);
        directory.apply(&history[1].0);
        assert!(waiter.await.unwrap());
        tokio::time::pause();
        assert!(
            !directory
                .wait_for(&tenant, Seq(3), Duration::from_secs(1))
                .await
        );
    }
}
