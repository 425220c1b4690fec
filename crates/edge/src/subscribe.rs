//! Subscribe: who may read a conversation, and the gap before live delivery (`resume.md`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocket;
use switchboard_events::principal::Role;
use switchboard_ingest::api::CommandHandler;
use switchboard_store::timeline::Audience;
use tokio::time::Instant;

use crate::conn::{Session, send_text};
use crate::protocol::ServerFrame;
use crate::resume::{Gap, Seam, read_gap};

impl<H: CommandHandler> Session<H> {
    pub(crate) async fn subscribe(
        &mut self,
        socket: &mut WebSocket,
        reference: Option<String>,
        conversation_id: String,
        since: u64,
    ) {
        // Every `not_found` answers at this deadline, whatever the reason (`may_read`).
        let deadline = Instant::now() + self.shared.config.history_wait;
        let Some(key) = self.key(&conversation_id) else {
            return self.not_found(reference, deadline).await;
        };
        let most = self.shared.config.max_subscriptions;
        if self.subscriptions.len() >= most
            && !self.subscriptions.contains_key(conversation_id.as_str())
        {
            return self.refuse(
                reference,
                "too_many_subscriptions",
                format!("at most {most} conversations per connection"),
            );
        }
        if !self.may_read(&key, deadline).await {
            return self.not_found(reference, deadline).await;
        }
        let audience = self.audience();
        let registered = self
            .shared
            .hub
            .subscribe(key.clone(), self.handle.clone(), audience);
        let conversation: Arc<str> = conversation_id.as_str().into();
        // Registered before the gap is read: live events queue meanwhile, and `admit` drops
        // those the gap already covered.
        if self
            .subscriptions
            .insert(conversation.clone(), u64::MAX)
            .is_none()
        {
            crate::metrics::subscriptions(1);
        }
        let config = &self.shared.config;
        let seam = Seam {
            registered: &registered,
            consumer: &config.history_consumer,
            max_gap: config.max_gap,
            wait: config.history_wait,
        };
        let gap = read_gap(self.shared.store.as_ref(), &key, audience, since, seam).await;
        let (code, message) = match gap {
            Ok(Gap::Events { frames, last }) => {
                for (_, json) in frames {
                    crate::metrics::sent("event");
                    if send_text(socket, json).await.is_err() {
                        break;
                    }
                }
                self.subscriptions.insert(conversation, last);
                let done = ServerFrame::Subscribed {
                    reference,
                    conversation_id,
                    seq: last,
                };
                crate::metrics::sent(done.kind());
                let _ = send_text(socket, done.to_json().into()).await;
                return;
            }
            Ok(Gap::TooLarge { latest }) => {
                self.unsubscribe_quietly(&conversation);
                let reload = ServerFrame::Reload {
                    reference,
                    conversation_id,
                    reason: "gap_too_large".into(),
                    latest_seq: latest,
                };
                self.handle.frame(&reload);
                return;
            }
            Ok(Gap::Behind) => (
                "history_unavailable",
                "history is catching up: subscribe again shortly".to_owned(),
            ),
            Err(error) => (
                "history_unavailable",
                format!("history could not be read: {error}"),
            ),
        };
        self.unsubscribe_quietly(&conversation);
        self.refuse(reference, code, message);
    }

    fn unsubscribe_quietly(&mut self, conversation: &Arc<str>) {
        if self.subscriptions.remove(conversation).is_some() {
            crate::metrics::subscriptions(-1);
        }
        if let Some(key) = self.key(conversation) {
            self.shared.hub.unsubscribe(&key, self.handle.id);
        }
    }

    async fn not_found(&self, reference: Option<String>, deadline: Instant) {
        tokio::time::sleep_until(deadline).await;
        self.refuse(reference, "not_found", "conversation not found");
    }

    /// Staff read any conversation of their tenant; customers only their own. A conversation of
    /// another tenant is keyed by this tenant, so it is simply not found. A conversation the
    /// read models do not know yet (just opened elsewhere) is waited for, until `deadline`.
    ///
    /// A refusal must not tell, by when it comes, which of these it is: a missing id (waited
    /// for until the deadline), another tenant's (the same), another customer's (known at
    /// once). So the caller answers every refusal at the deadline, never earlier.
    async fn may_read(&self, key: &crate::hub::Key, deadline: Instant) -> bool {
        if self.opened.contains(&key.1) {
            return true;
        }
        let mut backoff = Duration::from_millis(2);
        let customer = loop {
            if let Some(customer) = self.shared.hub.customer(key) {
                break customer;
            }
            if let Ok(Some(summary)) = self.shared.store.conversation(&key.0, &key.1).await {
                break summary.customer;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep(backoff.min(deadline - now)).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        };
        match self.audience() {
            Audience::Staff => self.principal.role != Role::Service,
            Audience::Customer => self.principal.is_customer(&customer),
        }
    }
}
