//! Versioned encodings of stored values, shared by both backends where they store blobs.
//!
//! Every value starts with a format version byte. Writers write only [`VERSION`]; readers
//! read every version ever written (today only 1). A change of a stored type is a new
//! version, decoded beside the old one, never an in-place change.
//!
//! Timeline values, read fifty at a time on the hot path, have a hand-written layout; the
//! other values are postcard (serde, compact, not self-describing: hence the version byte).

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_events::envelope::ActorKind;
use switchboard_events::id::MessageId;
use switchboard_events::{Seq, Timestamp};

use crate::error::StoreError;
use crate::timeline::{EventKind, TimelineEntry};

/// The version this build writes.
pub const VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own types into a Vec cannot fail: no sequences of unknown length.
    postcard::to_extend(value, vec![VERSION]).expect("stored types serialize")
}

pub fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, rest)) => {
            postcard::from_bytes(rest).map_err(|e| StoreError::corrupt(table, e))
        }
        Some((&version, _)) => Err(StoreError::UnknownVersion {
            table,
            version,
            newest: VERSION,
        }),
        None => Err(StoreError::corrupt(table, "empty value")),
    }
}

pub fn actor_code(actor: ActorKind) -> u8 {
    match actor {
        ActorKind::Customer => 0,
        ActorKind::Agent => 1,
        ActorKind::Supervisor => 2,
        ActorKind::Auditor => 3,
        ActorKind::System => 4,
    }
}

pub fn actor_from_code(code: u8) -> Option<ActorKind> {
    Some(match code {
        0 => ActorKind::Customer,
        1 => ActorKind::Agent,
        2 => ActorKind::Supervisor,
        3 => ActorKind::Auditor,
        4 => ActorKind::System,
        _ => return None,
    })
}

const PRIVATE_NOTE: u8 = 1;

/// `[version][kind][actor][flags][occurred_at: i64 le][message id len][message id][frame..]`;
/// the seq is in the key.
pub fn encode_entry(entry: &TimelineEntry, out: &mut Vec<u8>) {
    let id = entry.message_id.as_ref().map_or("", |id| id.as_str());
    out.reserve(13 + id.len() + entry.frame.len());
    out.extend_from_slice(&[
        VERSION,
        entry.kind.0,
        actor_code(entry.actor),
        if entry.private_note { PRIVATE_NOTE } else { 0 },
    ]);
    out.extend_from_slice(&entry.occurred_at.as_micros().to_le_bytes());
    out.push(id.len() as u8);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(&entry.frame);
}

/// The entry at `seq` from its stored value.
pub fn decode_entry(seq: Seq, bytes: &[u8]) -> Result<TimelineEntry, StoreError> {
    let corrupt = |reason: &str| StoreError::corrupt("timeline", format!("seq {seq}: {reason}"));
    let (head, rest) = bytes
        .split_at_checked(13)
        .ok_or_else(|| corrupt("value too short"))?;
    if head[0] != VERSION {
        return Err(StoreError::UnknownVersion {
            table: "timeline",
            version: head[0],
            newest: VERSION,
        });
    }
    let actor = actor_from_code(head[2]).ok_or_else(|| corrupt("unknown actor kind"))?;
    let occurred_at = i64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
    let (id, frame) = rest
        .split_at_checked(usize::from(head[12]))
        .ok_or_else(|| corrupt("message id runs past the value"))?;
    let message_id = match id {
        [] => None,
        id => {
            let id = std::str::from_utf8(id).map_err(|_| corrupt("message id is not utf-8"))?;
            Some(MessageId::new(id).map_err(|e| corrupt(&e.to_string()))?)
        }
    };
    Ok(TimelineEntry {
        seq,
        occurred_at: Timestamp(occurred_at),
        kind: EventKind(head[1]),
        actor,
        private_note: head[3] & PRIVATE_NOTE != 0,
        message_id,
        frame: frame.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use switchboard_events::fixtures;

    use super::*;
    use crate::timeline::TimelineRow;

    #[test]
    fn every_sample_entry_round_trips() {
        for (event, frame) in fixtures::conversation_history() {
            let entry = TimelineRow::from_event(&event, frame).entry;
            let mut bytes = Vec::new();
            encode_entry(&entry, &mut bytes);
            assert_eq!(decode_entry(entry.seq, &bytes).unwrap(), entry);
        }
    }

    #[test]
    fn unknown_versions_and_short_values_are_typed_errors() {
        assert!(matches!(
            decode_entry(Seq(1), &[9; 20]),
            Err(StoreError::UnknownVersion { version: 9, .. })
        ));
        assert!(matches!(
            decode_entry(Seq(1), &[1, 0]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<u64>("agents", &[]),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<u64>("agents", &[2, 0]),
            Err(StoreError::UnknownVersion { version: 2, .. })
        ));
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_entry(Seq(1), &bytes);
            let _ = decode::<crate::agent::AgentRecord>("agents", &bytes);
        }
    }
}
