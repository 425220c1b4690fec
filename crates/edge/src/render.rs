//! Conversation events as protocol frames, rendered once per audience and shared by every
//! subscriber. Sealed personal data is opened with the customer's key (or shown as erased).

use serde_json::{Map, Value};
use switchboard_events::ConversationEvent;
use switchboard_events::conversation::ConversationPayload;
use switchboard_events::id::TenantId;
use switchboard_events::personal::{KeyProvider, Revealed, Sealed};

use crate::protocol::ServerFrame;

/// The snake_case kind of a payload, from its Avro record name.
pub fn kind(payload: &ConversationPayload) -> String {
    use switchboard_events::event::Payload;
    let record = payload.record_name();
    let short = record.rsplit('.').next().unwrap_or(record);
    let short = short.strip_prefix("Conversation").unwrap_or(short);
    let mut out = String::with_capacity(short.len() + 4);
    for (i, c) in short.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `event` frame of `event`: the payload's fields, sealed fields opened.
pub fn event_frame(event: &ConversationEvent, keys: &dyn KeyProvider) -> ServerFrame {
    let envelope = &event.envelope;
    let mut data = serde_json::to_value(&event.payload).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        map.remove("type");
        open_sealed(map, &envelope.tenant_id, keys);
    }
    ServerFrame::Event {
        conversation_id: envelope.conversation_id.to_string(),
        seq: envelope.seq.0,
        kind: kind(&event.payload),
        occurred_at_us: envelope.occurred_at.as_micros(),
        actor: serde_json::json!({
            "kind": serde_json::to_value(envelope.actor.kind).unwrap_or(Value::Null),
            "id": envelope.actor.id.to_string(),
        }),
        data,
    }
}

/// Replaces every sealed field by its text, `null` when the customer was erased. A key that
/// cannot be read (a store failure) hides the field rather than failing the whole event.
fn open_sealed(map: &mut Map<String, Value>, tenant: &TenantId, keys: &dyn KeyProvider) {
    for value in map.values_mut() {
        let is_sealed = matches!(value, Value::Object(o) if o.contains_key("ciphertext") && o.contains_key("key_id"));
        if !is_sealed {
            continue;
        }
        let opened = serde_json::from_value::<Sealed>(value.take())
            .ok()
            .and_then(|sealed| sealed.reveal(tenant, keys).ok());
        *value = match opened {
            Some(Revealed::Text(text)) => Value::String(text),
            Some(Revealed::Erased) | None => Value::Null,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_snake_case_without_the_conversation_prefix() {
        use switchboard_events::Seq;
        use switchboard_events::conversation::ParticipantRead;
        let payload = ConversationPayload::ParticipantRead(ParticipantRead { up_to_seq: Seq(3) });
        assert_eq!(kind(&payload), "participant_read");
    }
}
