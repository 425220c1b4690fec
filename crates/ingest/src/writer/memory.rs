//! What a shard keeps in memory and how it gets it back: folding records, snapshots of the
//! partition, and parking the conversations used least recently (see `state.md`).

use switchboard_events::conversation::ConversationPayload;
use switchboard_events::{ConversationEvent, Topic};

use crate::conversation::{ConversationState, Status};
use crate::error::CommandError;
use crate::writer::cache::StateCache;
use crate::writer::replay;
use crate::writer::shard::{Key, Resident, Shard};
use crate::writer::snapshot::{self, Held, PartitionImage, Proof};

impl Shard {
    pub(super) fn state(&self, id: &Key) -> Option<&ConversationState> {
        self.states.get(id).map(|r| &r.held.state)
    }

    pub(super) fn hold(&mut self, id: Key, held: Held) {
        self.tick += 1;
        let used = self.tick;
        self.states.insert(id, Resident { held, used });
    }

    /// Forgets everything and starts again from the latest snapshot the log proves, or from
    /// the partition's start when there is none.
    pub(super) async fn restore(&mut self) {
        self.states.clear();
        self.poisoned.clear();
        self.undecodable.clear();
        self.pending.clear();
        self.erased_in_log.clear();
        self.next_offset = 0;
        self.last = None;
        self.snapshot_at = 0;
        let keys = self.keys.clone();
        let Some(cache) = keys.state_cache() else {
            return;
        };
        let image = match cache.snapshot(self.partition).await {
            Ok(Some(bytes)) => snapshot::decode_partition(&bytes),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(partition = self.partition, error = %e, "the snapshot cannot be read; folding the whole partition");
                return;
            }
        };
        let Some(image) = image else {
            tracing::warn!(
                partition = self.partition,
                "the snapshot is damaged or of an unknown version; folding the whole partition"
            );
            return;
        };
        if !self.proves_snapshot(&image).await {
            tracing::warn!(
                partition = self.partition,
                offset = image.next_offset,
                "the log does not prove the snapshot; folding the whole partition"
            );
            return;
        }
        self.next_offset = image.next_offset;
        self.snapshot_at = image.next_offset;
        self.last = image.last;
        for held in image.conversations {
            let id = (held.state.tenant.clone(), held.state.id.clone());
            self.hold(id, held);
        }
        for (tenant, conversation, reason) in image.poisoned {
            self.poisoned.insert((tenant, conversation), reason);
        }
        self.undecodable.extend(image.undecodable);
    }

    /// Whether the record before the snapshot's offset is the one it names: the snapshot
    /// was taken of this log.
    async fn proves_snapshot(&self, image: &PartitionImage) -> bool {
        match (image.next_offset, image.last) {
            (0, None) => true,
            (next, Some(last)) if last.offset + 1 == next => self.event_at(last).await.is_some(),
            _ => false,
        }
    }

    /// The event at the proof's offset, when it is there and has the proof's hash.
    async fn event_at(&self, proof: Proof) -> Option<ConversationEvent> {
        let topic = Topic::Conversations.name();
        let records = self
            .log
            .read(topic, self.partition, proof.offset, 1)
            .await
            .ok()?;
        let record = records.into_iter().find(|r| r.offset == proof.offset)?;
        let event = ConversationEvent::decode(&record.value).ok()?;
        (event.envelope.hash.0 == proof.hash).then_some(event)
    }

    /// Folds one record read from the log.
    pub(super) fn fold(&mut self, key: &[u8], frame: &[u8], offset: u64) {
        let event = match ConversationEvent::decode(frame) {
            Ok(event) => event,
            Err(e) => {
                self.last = None;
                if let Ok(id) = switchboard_events::id::ConversationId::new(
                    String::from_utf8_lossy(key).into_owned(),
                ) {
                    tracing::error!(partition = self.partition, conversation = %id, error = %e, "undecodable event; the id refuses commands");
                    self.undecodable.insert(id, e.to_string());
                }
                return;
            }
        };
        let proof = Proof {
            offset,
            hash: event.envelope.hash.0,
        };
        self.last = Some(proof);
        let id = (
            event.envelope.tenant_id.clone(),
            event.envelope.conversation_id.clone(),
        );
        if self.poisoned.contains_key(&id) {
            return;
        }
        if let ConversationPayload::CustomerDataErased(erased) = &event.payload {
            self.erased_in_log
                .push((event.envelope.tenant_id.clone(), erased.customer_id.clone()));
        }
        if let Some(waiting) = self.pending.get_mut(&id) {
            waiting.push((offset, event));
            return;
        }
        self.tick += 1;
        let folded = match self.states.get_mut(&id) {
            Some(resident) => {
                resident.used = self.tick;
                resident.held.last = proof;
                resident.held.state.apply(&event)
            }
            None if matches!(event.payload, ConversationPayload::Opened(_)) => {
                ConversationState::opened(&event).map(|state| {
                    self.hold(id.clone(), Held { state, last: proof });
                })
            }
            // Not in memory: parked, or opened before the retained log. Decided after the read.
            None => {
                self.pending.insert(id, vec![(offset, event)]);
                return;
            }
        };
        if let Err(e) = folded {
            self.poison(id, e.to_string());
        }
    }

    fn poison(&mut self, id: Key, reason: String) {
        tracing::error!(partition = self.partition, tenant = %id.0, conversation = %id.1, error = %reason, "events do not fold; conversation refuses commands");
        self.states.remove(&id);
        self.poisoned.insert(id, reason);
    }

    /// Folds the events read for conversations that were not in memory onto their parked
    /// states.
    pub(super) async fn fold_pending(&mut self) -> Result<(), CommandError> {
        for (id, events) in std::mem::take(&mut self.pending) {
            self.bring_back(&id).await?;
            for (offset, event) in events {
                let proof = Proof {
                    offset,
                    hash: event.envelope.hash.0,
                };
                let folded = match self.states.get_mut(&id) {
                    Some(r) if event.envelope.seq <= r.held.state.last_seq => Ok(()),
                    Some(r) => r.held.state.apply(&event).map(|()| r.held.last = proof),
                    None => ConversationState::opened(&event)
                        .map(|state| self.hold(id.clone(), Held { state, last: proof })),
                };
                if let Err(e) = folded {
                    self.poison(id.clone(), e.to_string());
                    break;
                }
            }
        }
        Ok(())
    }

    /// Brings a parked conversation back into memory. A parked state the log does not prove
    /// is ignored and the conversation is folded from the partition instead. Nothing parked
    /// means nothing to bring back: the conversation was never on this partition, or is in
    /// memory already.
    pub(super) async fn bring_back(&mut self, id: &Key) -> Result<(), CommandError> {
        if let Some(resident) = self.states.get_mut(id) {
            self.tick += 1;
            resident.used = self.tick;
            return Ok(());
        }
        if self.poisoned.contains_key(id) {
            return Ok(());
        }
        let keys = self.keys.clone();
        let Some(cache) = keys.state_cache() else {
            return Ok(());
        };
        let Some(bytes) = cache.parked(&id.0, &id.1).await? else {
            return Ok(());
        };
        if let Some(held) = snapshot::decode_parked(&bytes)
            && self.proves_parked(id, &held).await
        {
            if held.state.status == Status::Resolved {
                self.unparked.push((id.clone(), held.state.last_seq));
            }
            self.hold(id.clone(), held);
            return Ok(());
        }
        tracing::warn!(partition = self.partition, tenant = %id.0, conversation = %id.1, "a parked state the log does not prove; folding the conversation from the partition");
        self.refold(id).await
    }

    async fn proves_parked(&self, id: &Key, held: &Held) -> bool {
        let s = &held.state;
        if (&s.tenant, &s.id) != (&id.0, &id.1) || s.last_hash.0 != held.last.hash {
            return false;
        }
        self.event_at(held.last).await.is_some_and(|e| {
            (
                &e.envelope.tenant_id,
                &e.envelope.conversation_id,
                e.envelope.seq,
            ) == (&id.0, &id.1, s.last_seq)
        })
    }

    /// Folds one conversation from the whole partition: slow, and only when its parked state
    /// cannot be used.
    async fn refold(&mut self, id: &Key) -> Result<(), CommandError> {
        let mut events = Vec::new();
        let mut next = 0;
        replay::read_to_end(
            self.log.as_ref(),
            Topic::Conversations,
            self.partition,
            &mut next,
            |record| {
                if record.key != id.1.as_str().as_bytes() {
                    return;
                }
                if let Ok(event) = ConversationEvent::decode(&record.value)
                    && event.envelope.tenant_id == id.0
                {
                    events.push((record.offset, event));
                }
            },
        )
        .await?;
        let mut held: Option<Held> = None;
        for (offset, event) in events {
            let last = Proof {
                offset,
                hash: event.envelope.hash.0,
            };
            let folded = match &mut held {
                None => ConversationState::opened(&event).map(|state| {
                    held = Some(Held { state, last });
                }),
                Some(h) => h.state.apply(&event).map(|()| h.last = last),
            };
            if let Err(e) = folded {
                self.poison(id.clone(), e.to_string());
                return Ok(());
            }
        }
        if let Some(held) = held {
            self.hold(id.clone(), held);
        }
        Ok(())
    }

    /// Parks the conversations the last batches resolved, then, beyond the bound, those used
    /// least recently until a tenth of the bound is free. A conversation whose park fails
    /// stays in memory.
    pub(super) async fn evict(&mut self) {
        self.evict_parked().await;
        self.count_held();
    }

    async fn evict_parked(&mut self) {
        let resolved = std::mem::take(&mut self.resolved);
        let unparked = std::mem::take(&mut self.unparked);
        if self.stale {
            return;
        }
        // Brought back and left as they were parked: the cache holds them already.
        for (id, seq) in unparked {
            let as_parked = self.states.get(&id).is_some_and(|r| {
                r.held.state.status == Status::Resolved && r.held.state.last_seq == seq
            });
            if as_parked {
                self.states.remove(&id);
            }
        }
        let keys = self.keys.clone();
        let Some(cache) = keys.state_cache() else {
            return;
        };
        for id in resolved {
            let still_resolved = self
                .states
                .get(&id)
                .is_some_and(|r| r.held.state.status == Status::Resolved);
            if still_resolved && !self.park(cache, &id).await {
                return;
            }
        }
        let max = self.config.max_conversations.max(1);
        if self.states.len() <= max {
            return;
        }
        let keep = max - max / 10;
        let mut by_use: Vec<(u64, Key)> = self
            .states
            .iter()
            .map(|(id, r)| (r.used, id.clone()))
            .collect();
        let evicted = by_use.len() - keep;
        by_use.select_nth_unstable_by_key(evicted - 1, |(used, _)| *used);
        by_use.truncate(evicted);
        for (_, id) in by_use {
            if !self.park(cache, &id).await {
                return;
            }
        }
    }

    /// Writes a conversation's state to the cache and only then drops it from memory; false
    /// when the write failed (it stays).
    async fn park(&mut self, cache: &dyn StateCache, id: &Key) -> bool {
        let Some(resident) = self.states.get(id) else {
            return true;
        };
        let state = &resident.held.state;
        let body = snapshot::encode_parked(&resident.held);
        if let Err(e) = cache.park(&id.0, &id.1, state.last_seq.0, body).await {
            tracing::warn!(partition = self.partition, error = %e, "parking conversations failed; they stay in memory");
            return false;
        }
        self.states.remove(id);
        true
    }

    /// Moves the gauge of conversations in memory to this shard's count.
    pub(super) fn count_held(&mut self) {
        let now = self.states.len();
        crate::metrics::held_conversations(now as i64 - self.counted as i64);
        self.counted = now;
    }

    pub(super) async fn snapshot_if_due(&mut self) {
        self.snapshot_if_due_every(self.config.snapshot_every.max(1))
            .await;
    }

    /// Writes a snapshot when `every` records were folded or appended since the last one.
    pub(super) async fn snapshot_if_due_every(&mut self, every: u64) {
        // Only a state that is exactly the log's, with every erasure finished.
        let settled = !self.stale && self.pending.is_empty() && self.erased_in_log.is_empty();
        if self.next_offset < self.snapshot_at + every || !settled {
            return;
        }
        // A record that did not decode names nothing the next owner could check.
        if self.next_offset > 0 && self.last.is_none() {
            return;
        }
        let keys = self.keys.clone();
        let Some(cache) = keys.state_cache() else {
            return;
        };
        let image = PartitionImage {
            next_offset: self.next_offset,
            last: self.last,
            conversations: self.states.values().map(|r| r.held.clone()).collect(),
            poisoned: self
                .poisoned
                .iter()
                .map(|((t, c), reason)| (t.clone(), c.clone(), reason.clone()))
                .collect(),
            undecodable: self
                .undecodable
                .iter()
                .map(|(c, reason)| (c.clone(), reason.clone()))
                .collect(),
        };
        let body = snapshot::encode_partition(&image);
        match cache
            .put_snapshot(self.partition, self.next_offset, body)
            .await
        {
            Ok(()) => self.snapshot_at = self.next_offset,
            Err(e) => {
                tracing::warn!(partition = self.partition, error = %e, "writing a snapshot failed; the next start folds a longer tail");
            }
        }
    }
}
