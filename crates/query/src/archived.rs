//! History pages of a conversation whose oldest events went to the cold archive: the hot
//! timeline no longer holds them, so the page is cut from the whole history as the sources
//! give it (hot store, archive, log; see `source.rs`). An archived conversation is a finished
//! one, bounded in size, and its pages are cached like any other.
//!
//! Customers never see private notes here either: a note's posting says so, and its edits and
//! redactions are recognised by the note's message id, which always comes earlier.

use std::collections::HashSet;

use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::{ConversationEvent, ConversationPayload, Seq};
use switchboard_store::timeline::{Audience, MAX_PAGE, TimelineEntry, TimelineRow};

use crate::error::QueryError;
use crate::service::{HistoryFrom, QueryService};

impl QueryService {
    /// The entries of a page, ascending, from every source of the conversation's history.
    pub(crate) async fn archived_entries(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        from: HistoryFrom,
        limit: u32,
        audience: Audience,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        let mut visible = Vec::new();
        let mut notes = HashSet::new();
        let mut after = Seq(0);
        loop {
            let frames = self
                .sources
                .next(tenant, conversation, after, MAX_PAGE as usize)
                .await?;
            let Some(last) = frames.last() else { break };
            after = last.seq;
            for frame in frames {
                let event = ConversationEvent::decode(&frame.bytes)
                    .map_err(|e| QueryError::Internal(format!("seq {}: {e}", frame.seq.0)))?;
                let mut entry = TimelineRow::from_event(&event, frame.bytes).entry;
                match &event.payload {
                    ConversationPayload::MessagePosted(p) if p.private_note => {
                        notes.insert(p.message_id.clone());
                    }
                    ConversationPayload::MessageEdited(p) => {
                        entry.private_note = notes.contains(&p.message_id);
                    }
                    ConversationPayload::MessageRedacted(p) => {
                        entry.private_note = notes.contains(&p.message_id);
                    }
                    _ => {}
                }
                if audience.sees(&entry) {
                    visible.push(entry);
                }
            }
        }
        Ok(cut(visible, from, limit as usize))
    }
}

/// The page of `from` out of every visible entry, ascending.
fn cut(entries: Vec<TimelineEntry>, from: HistoryFrom, limit: usize) -> Vec<TimelineEntry> {
    let split = |s: Seq| entries.partition_point(|e| e.seq <= s);
    let range = match from {
        HistoryFrom::Oldest => 0..limit.min(entries.len()),
        HistoryFrom::After(s) => {
            let start = split(s);
            start..(start + limit).min(entries.len())
        }
        HistoryFrom::Newest => entries.len().saturating_sub(limit)..entries.len(),
        HistoryFrom::Before(s) => {
            let end = entries.partition_point(|e| e.seq < s);
            end.saturating_sub(limit)..end
        }
        HistoryFrom::Around(s) => {
            let middle = split(s);
            let start = middle.saturating_sub(limit.div_ceil(2));
            start..(start + limit).min(entries.len())
        }
    };
    entries[range].to_vec()
}
