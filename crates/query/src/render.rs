//! Events as JSON for people: the decoded event (envelope, `type`, fields) with every sealed
//! field opened for the reader — `{"text": "..."}`, or `{"erased": true}` once the customer's
//! key was destroyed — and the timeline's seq and kind beside it.
//!
//! Audit replay and exports do not open sealed fields: the chain covers the ciphertext, and an
//! auditor's copy must verify byte for byte ([`audit_line`]).

use serde_json::{Value, json};
use switchboard_events::id::TenantId;
use switchboard_events::personal::{KeyProvider, Revealed, Sealed};
use switchboard_events::{AnyEvent, ConversationEvent, ConversationPayload, decode_any};

use crate::error::QueryError;

/// The sealed fields of each kind, by JSON name.
fn sealed_fields(payload: &ConversationPayload) -> Vec<(&'static str, &Sealed)> {
    match payload {
        ConversationPayload::Opened(p) => [
            ("customer_name", p.customer_name.as_ref()),
            ("customer_email", p.customer_email.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, sealed)| sealed.map(|s| (name, s)))
        .collect(),
        ConversationPayload::MessagePosted(p) => vec![("body", &p.body)],
        ConversationPayload::MessageEdited(p) => vec![("body", &p.body)],
        ConversationPayload::Rated(p) => p.comment.iter().map(|s| ("comment", s)).collect(),
        _ => Vec::new(),
    }
}

fn revealed(value: Revealed) -> Value {
    match value {
        Revealed::Text(text) => json!({ "text": text }),
        Revealed::Erased => json!({ "erased": true }),
    }
}

/// The event as a reader sees it, sealed fields opened through `keys`.
pub fn event_json(
    tenant: &TenantId,
    event: &ConversationEvent,
    keys: &dyn KeyProvider,
) -> Result<Value, QueryError> {
    let mut value = serde_json::to_value(event).map_err(|e| QueryError::Internal(e.to_string()))?;
    let Some(object) = value.as_object_mut() else {
        return Err(QueryError::Internal("an event is not a JSON object".into()));
    };
    for (name, sealed) in sealed_fields(&event.payload) {
        let opened = sealed
            .reveal(tenant, keys)
            .map_err(|e| QueryError::Internal(format!("cannot open {name}: {e}")))?;
        object.insert(name.to_owned(), revealed(opened));
    }
    Ok(value)
}

/// One line of an audit replay or NDJSON export: the decoded event exactly as recorded
/// (sealed fields as ciphertext) and the original frame in hex, from which the chain verifies.
/// Written straight into `out`, without an intermediate JSON tree: replay is a hot loop.
pub fn audit_line(frame: &[u8], out: &mut Vec<u8>) -> Result<(), QueryError> {
    let internal = |e: serde_json::Error| QueryError::Internal(e.to_string());
    match decode_any(frame) {
        Ok(AnyEvent::Conversation(event)) => {
            out.extend_from_slice(b"{\"seq\":");
            out.extend_from_slice(event.envelope.seq.0.to_string().as_bytes());
            out.extend_from_slice(b",\"event\":");
            serde_json::to_writer(&mut *out, &event).map_err(internal)?;
        }
        // A tenant's settings chain travels on the agent topic.
        Ok(AnyEvent::Agent(event)) => {
            out.extend_from_slice(b"{\"seq\":");
            out.extend_from_slice(event.envelope.seq.0.to_string().as_bytes());
            out.extend_from_slice(b",\"event\":");
            serde_json::to_writer(&mut *out, &event).map_err(internal)?;
        }
        // A frame that no longer decodes is still part of the record: the auditor sees it.
        Err(e) => {
            out.extend_from_slice(b"{\"undecodable\":");
            serde_json::to_writer(&mut *out, &e.to_string()).map_err(internal)?;
        }
    }
    out.extend_from_slice(b",\"frame\":\"");
    write_hex(frame, out);
    out.extend_from_slice(b"\"}\n");
    Ok(())
}

/// Lowercase hex of `bytes`, appended without an intermediate string.
fn write_hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0x0f)]);
    }
}

#[cfg(test)]
mod tests {
    use switchboard_events::{fixtures, hex};

    use super::*;

    #[test]
    fn audit_lines_carry_the_event_and_its_exact_frame() {
        let (event, frame) = &fixtures::conversation_history()[3];
        let mut out = Vec::new();
        audit_line(frame, &mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let line: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["seq"], 4);
        assert_eq!(line["event"], serde_json::to_value(event).unwrap());
        assert_eq!(
            hex::decode(line["frame"].as_str().unwrap()).as_ref(),
            Some(frame)
        );
        let mut bad = Vec::new();
        audit_line(b"\x00\x01", &mut bad).unwrap();
        let line: Value = serde_json::from_slice(&bad).unwrap();
        assert!(line["undecodable"].is_string());
        assert_eq!(line["frame"], "0001");
        let (event, frame) = &fixtures::tenant_history()[1];
        let mut settings = Vec::new();
        audit_line(frame, &mut settings).unwrap();
        let line: Value = serde_json::from_slice(&settings).unwrap();
        assert_eq!(line["event"], serde_json::to_value(event).unwrap());
        assert_eq!(
            line["event"]["type"],
            "switchboard.tenant.TenantSettingsChanged"
        );
    }
}
