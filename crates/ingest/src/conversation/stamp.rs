//! Turns decided payloads into events of record: envelope, gapless seq, hash chain, frame.

use switchboard_events::envelope::{Actor, ConversationEnvelope};
use switchboard_events::id::{ConversationId, CorrelationId, EventId, TenantId};
use switchboard_events::{ChainHash, ConversationEvent, ConversationPayload, Seq, Timestamp};

use crate::conversation::state::ConversationState;
use crate::error::CommandError;

/// Who caused the events, and why.
#[derive(Clone, Debug)]
pub struct Cause {
    pub actor: Actor,
    pub correlation_id: CorrelationId,
    pub causation_id: Option<CorrelationId>,
    pub now: Timestamp,
}

/// The events that follow `state` (or open the conversation), each with its frame.
pub fn stamp(
    state: Option<&ConversationState>,
    tenant: &TenantId,
    conversation: &ConversationId,
    cause: &Cause,
    payloads: Vec<ConversationPayload>,
) -> Result<Vec<(ConversationEvent, Vec<u8>)>, CommandError> {
    let head = match state {
        Some(s) => (s.last_seq, s.last_hash),
        None => (Seq(0), ChainHash::GENESIS),
    };
    stamp_after(head, tenant, conversation, cause, payloads)
}

/// The events that follow the conversation's last event `(seq, hash)`; `(Seq(0),
/// ChainHash::GENESIS)` opens it. For tools that write a log without folding its states.
pub fn stamp_after(
    (mut seq, mut prev): (Seq, ChainHash),
    tenant: &TenantId,
    conversation: &ConversationId,
    cause: &Cause,
    payloads: Vec<ConversationPayload>,
) -> Result<Vec<(ConversationEvent, Vec<u8>)>, CommandError> {
    let mut out = Vec::with_capacity(payloads.len());
    for payload in payloads {
        seq = seq.next();
        let mut event = ConversationEvent {
            envelope: ConversationEnvelope {
                hash: ChainHash::GENESIS,
                prev_hash: prev,
                seq,
                event_id: EventId::generate(),
                tenant_id: tenant.clone(),
                conversation_id: conversation.clone(),
                occurred_at: cause.now,
                actor: cause.actor.clone(),
                correlation_id: cause.correlation_id,
                causation_id: cause.causation_id,
            },
            payload,
        };
        let frame = event
            .encode_chained(prev)
            .map_err(|e| CommandError::invalid("command", e.to_string()))?;
        prev = event.envelope.hash;
        out.push((event, frame));
    }
    Ok(out)
}
