//! History that falls through to the archive: the pages the hot timeline would serve, whether
//! the events are hot, archived, or both (a conversation reopened after it was archived keeps
//! its new events hot, after the archived ones).

use switchboard_events::Seq;
use switchboard_events::id::{ConversationId, TenantId};

use crate::ReadModels;
use crate::error::StoreError;
use crate::timeline::{MAX_PAGE, TimelineCursor, TimelineEntry, TimelinePage, TimelineQuery};

use super::Archive;

/// A page of a conversation's timeline, from the hot store, the archive, or both.
///
/// When the manifest has no entry for the conversation, this is the hot store's page. When it
/// has one, seqs up to `entry.last_seq` come from the archive file and later ones from the hot
/// store, and the page is cut, filtered by audience and given its next cursor exactly as the
/// hot store cuts, filters and continues its pages.
pub async fn timeline_or_archive(
    store: &dyn ReadModels,
    archive: &Archive,
    tenant: &TenantId,
    conversation: &ConversationId,
    query: TimelineQuery,
) -> Result<TimelinePage, StoreError> {
    let limit = query.validate()?;
    let Some(entry) = store.archived(tenant, conversation).await? else {
        return store.timeline(tenant, conversation, query).await;
    };
    let Some((from, to)) = query.cursor.bounds() else {
        return Ok(TimelinePage::default());
    };
    let archived_visible = |archived: Vec<TimelineEntry>| {
        archived
            .into_iter()
            .filter(move |e| (from..=to).contains(&e.seq.0) && query.audience.sees(e))
    };
    // At most `limit + 1` visible entries in the cursor's direction: the extra one only tells
    // that there is a next page.
    let wanted = limit + 1;
    let mut entries = Vec::with_capacity(wanted);
    let forward = query.cursor.is_forward();
    if forward {
        if from <= entry.last_seq.0 {
            let archived = archive.entries(&entry).await?;
            entries.extend(archived_visible(archived).take(wanted));
        }
        if entries.len() < wanted {
            let after = Seq(entry.last_seq.0.max(from - 1));
            let hot = hot_scan(
                store,
                tenant,
                conversation,
                query,
                after,
                wanted - entries.len(),
            );
            entries.extend(hot.await?);
        }
    } else {
        if to > entry.last_seq.0 {
            let hot = hot_scan(store, tenant, conversation, query, entry.last_seq, wanted);
            entries.extend(hot.await?);
        }
        if entries.len() < wanted {
            let archived = archive.entries(&entry).await?;
            let needed = wanted - entries.len();
            entries.extend(archived_visible(archived).rev().take(needed));
        }
    }
    Ok(TimelinePage::from_scan(entries, limit, forward))
}

/// Up to `wanted` visible hot entries after the archived seqs: forward from after `floor`,
/// or backward from the query's cursor down to (not including) `floor`.
async fn hot_scan(
    store: &dyn ReadModels,
    tenant: &TenantId,
    conversation: &ConversationId,
    query: TimelineQuery,
    floor: Seq,
    wanted: usize,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = Some(if query.cursor.is_forward() {
        TimelineCursor::After(floor)
    } else {
        query.cursor
    });
    while let Some(at) = cursor {
        let missing = wanted - out.len();
        let limit = u32::try_from(missing).unwrap_or(MAX_PAGE).min(MAX_PAGE);
        let page = store
            .timeline(
                tenant,
                conversation,
                TimelineQuery::new(at, limit, query.audience),
            )
            .await?;
        cursor = page.next;
        for e in page.entries {
            // Rows at or below the archived head are the archive's to serve.
            if e.seq <= floor {
                return Ok(out);
            }
            out.push(e);
        }
        if out.len() >= wanted {
            break;
        }
    }
    Ok(out)
}
