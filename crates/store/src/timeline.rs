//! The message timeline of a conversation: every event, by seq, as its original frame.

use switchboard_events::envelope::ActorKind;
use switchboard_events::event::Payload;
use switchboard_events::id::{ConversationId, MessageId, TenantId};
use switchboard_events::{ConversationEvent, ConversationPayload, Seq, Timestamp};

use crate::error::StoreError;

/// The largest page a read may ask for.
pub const MAX_PAGE: u32 = 500;

/// The kind of a conversation event: its index in [`ConversationPayload::RECORDS`], which the
/// event contract only ever extends at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventKind(pub u8);

impl EventKind {
    pub fn of(payload: &ConversationPayload) -> Self {
        Self(payload.kind_index() as u8)
    }

    /// The Avro record's full name, `None` for a kind newer than this build.
    pub fn record_name(self) -> Option<&'static str> {
        ConversationPayload::RECORDS
            .get(usize::from(self.0))
            .copied()
    }

    pub fn is_message(self) -> bool {
        self.record_name() == Some("switchboard.conversation.MessagePosted")
    }
}

/// One event of a conversation as the timeline keeps it: the frame exactly as the log holds
/// it (so the hash chain verifies from it) and the few fields reads filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub seq: Seq,
    pub occurred_at: Timestamp,
    pub kind: EventKind,
    pub actor: ActorKind,
    /// The event posts, edits or redacts a private note: customers never see it. Set from
    /// the event for a posting; the projector sets it for edits and redactions of a note.
    pub private_note: bool,
    pub message_id: Option<MessageId>,
    pub frame: Vec<u8>,
}

/// A timeline entry with the conversation it belongs to: what a batch upserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub entry: TimelineEntry,
}

impl TimelineRow {
    /// The row of `event`, whose original frame is `frame`.
    pub fn from_event(event: &ConversationEvent, frame: Vec<u8>) -> Self {
        let envelope = &event.envelope;
        let (message_id, private_note) = match &event.payload {
            ConversationPayload::MessagePosted(p) => (Some(p.message_id.clone()), p.private_note),
            ConversationPayload::MessageEdited(p) => (Some(p.message_id.clone()), false),
            ConversationPayload::MessageRedacted(p) => (Some(p.message_id.clone()), false),
            _ => (None, false),
        };
        Self {
            tenant: envelope.tenant_id.clone(),
            conversation: envelope.conversation_id.clone(),
            entry: TimelineEntry {
                seq: envelope.seq,
                occurred_at: envelope.occurred_at,
                kind: EventKind::of(&event.payload),
                actor: envelope.actor.kind,
                private_note,
                message_id,
                frame,
            },
        }
    }
}

/// Where a page starts and which way it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineCursor {
    /// Forward from seq 1.
    Oldest,
    /// Backward from the newest event.
    Newest,
    /// Forward, from the seq after this one.
    After(Seq),
    /// Backward, from the seq before this one.
    Before(Seq),
}

impl TimelineCursor {
    pub fn is_forward(self) -> bool {
        matches!(self, Self::Oldest | Self::After(_))
    }

    /// The seqs this cursor may still reach, inclusive; `None` when there are none.
    pub fn bounds(self) -> Option<(u64, u64)> {
        match self {
            Self::Oldest | Self::Newest => Some((1, u64::MAX)),
            Self::After(Seq(s)) => s.checked_add(1).map(|from| (from, u64::MAX)),
            Self::Before(Seq(s)) => (s > 1).then(|| (1, s - 1)),
        }
    }
}

/// Who reads: staff see everything, customers never see private notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Customer,
}

impl Audience {
    pub fn sees(self, entry: &TimelineEntry) -> bool {
        self == Self::Staff || !entry.private_note
    }
}

/// A page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineQuery {
    pub cursor: TimelineCursor,
    pub limit: u32,
    pub audience: Audience,
}

impl TimelineQuery {
    pub fn new(cursor: TimelineCursor, limit: u32, audience: Audience) -> Self {
        Self {
            cursor,
            limit,
            audience,
        }
    }

    pub(crate) fn validate(&self) -> Result<usize, StoreError> {
        match self.limit {
            0 => Err(StoreError::invalid("page limit must be at least 1")),
            n if n > MAX_PAGE => Err(StoreError::invalid(format!(
                "page limit {n} is above the maximum {MAX_PAGE}"
            ))),
            n => Ok(n as usize),
        }
    }
}

/// A page of a timeline, in the cursor's direction (ascending seq forward, descending
/// backward), and the cursor of the next page when there is more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    pub next: Option<TimelineCursor>,
}

impl TimelinePage {
    /// Builds a page from visible entries read in the cursor's direction, at most `limit + 1`
    /// of them: the extra one only tells that there is a next page.
    pub(crate) fn from_scan(mut entries: Vec<TimelineEntry>, limit: usize, forward: bool) -> Self {
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = match entries.last() {
            Some(last) if more => Some(if forward {
                TimelineCursor::After(last.seq)
            } else {
                TimelineCursor::Before(last.seq)
            }),
            _ => None,
        };
        Self { entries, next }
    }
}

#[cfg(test)]
mod tests {
    use switchboard_events::fixtures;

    use super::*;

    #[test]
    fn rows_keep_the_original_frame_and_the_read_metadata() {
        let history = fixtures::conversation_history();
        let rows: Vec<_> = history
            .iter()
            .map(|(event, frame)| TimelineRow::from_event(event, frame.clone()))
            .collect();
        assert_eq!(
            rows[0].entry.kind.record_name(),
            Some(ConversationPayload::RECORDS[0])
        );
        assert_eq!(rows[3].entry.message_id.as_ref().unwrap().as_str(), "msg-4");
        assert!(rows[3].entry.kind.is_message() && !rows[3].entry.private_note);
        assert!(
            rows[4].entry.private_note,
            "the agent's note at seq 5 is private"
        );
        assert_eq!(rows[4].entry.actor, ActorKind::Agent);
        for (row, (_, frame)) in rows.iter().zip(&history) {
            assert_eq!(&row.entry.frame, frame);
        }
        assert!(!Audience::Customer.sees(&rows[4].entry));
        assert!(Audience::Staff.sees(&rows[4].entry));
    }

    #[test]
    fn cursor_bounds_stop_at_the_ends() {
        assert_eq!(TimelineCursor::Before(Seq(1)).bounds(), None);
        assert_eq!(TimelineCursor::Before(Seq(10)).bounds(), Some((1, 9)));
        assert_eq!(TimelineCursor::After(Seq(u64::MAX)).bounds(), None);
        assert_eq!(TimelineCursor::After(Seq(0)).bounds(), Some((1, u64::MAX)));
    }

    #[test]
    fn page_limits_are_checked() {
        let query = |limit| TimelineQuery::new(TimelineCursor::Oldest, limit, Audience::Staff);
        assert!(query(0).validate().is_err());
        assert!(query(MAX_PAGE + 1).validate().is_err());
        assert_eq!(query(50).validate().unwrap(), 50);
    }
}
