//! The history half of a subscribe: the events after the client's `since_seq` up to (at least)
//! the seam where live delivery starts. See `resume.md`.

use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use switchboard_events::ConversationEvent;
use switchboard_events::Seq;
use switchboard_events::Topic;
use switchboard_events::personal::KeyProvider;
use switchboard_store::ReadModels;
use switchboard_store::checkpoint::{CheckpointKey, LogPartition};
use switchboard_store::timeline::{Audience, TimelineCursor, TimelineQuery};
use tokio::time::Instant;

use crate::hub::{Key, Registered};
use crate::render;

const PAGE: u32 = 256;

/// What a subscribe replays.
#[derive(Debug)]
pub enum Gap {
    /// The events to send, in seq order, and the last seq covered (visible or not).
    Events {
        frames: Vec<(u64, Utf8Bytes)>,
        last: u64,
    },
    /// Too much to replay here: the client reloads history over HTTP.
    TooLarge { latest: u64 },
    /// The read models did not reach the seam in time; the client retries.
    Behind,
}

/// Where history must reach before live delivery takes over, and how long to wait for it.
#[derive(Debug, Clone, Copy)]
pub struct Seam<'a> {
    pub registered: &'a Registered,
    /// The projector whose checkpoint says how far the store holds the log.
    pub consumer: &'a str,
    pub max_gap: u64,
    pub wait: Duration,
}

/// Reads `(since, …]` from the store once it holds every record the hub delivered before the
/// subscriber registered (the projector's checkpoint has passed the hub's position), and at
/// least up to `live_after`: records from that position on reach the connection live, those
/// before it only from here. Waits, bounded, for the projector to get there.
pub async fn read_gap(
    store: &dyn ReadModels,
    key: &Key,
    audience: Audience,
    since: u64,
    seam: Seam<'_>,
) -> Result<Gap, switchboard_store::StoreError> {
    let Seam {
        registered,
        consumer,
        max_gap,
        wait,
    } = seam;
    let live_after = registered.live_after;
    if live_after.saturating_sub(since) > max_gap {
        return Ok(Gap::TooLarge { latest: live_after });
    }
    let deadline = Instant::now() + wait;
    let mut backoff = Duration::from_millis(2);
    if let Some((partition, offset)) = registered.live_from {
        let checkpoint = CheckpointKey {
            consumer: consumer.to_owned(),
            source: LogPartition::new(Topic::Conversations, partition),
        };
        while store.checkpoint(&checkpoint).await?.unwrap_or(0) < offset {
            if Instant::now() >= deadline {
                return Ok(Gap::Behind);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
    }
    let mut frames = Vec::new();
    let mut last = since;
    loop {
        // Staff audience: private notes are filtered here, so that `last` also advances
        // over events the customer does not see.
        let query = TimelineQuery::new(TimelineCursor::After(Seq(last)), PAGE, Audience::Staff);
        let page = store.timeline(&key.0, &key.1, query).await?;
        let more = page.next.is_some();
        for entry in page.entries {
            if entry.seq.0 <= last {
                continue;
            }
            last = entry.seq.0;
            if last - since > max_gap {
                return Ok(Gap::TooLarge {
                    latest: last.max(live_after),
                });
            }
            if !audience.sees(&entry) {
                continue;
            }
            if let Ok(event) = ConversationEvent::decode(&entry.frame) {
                let keys: &dyn KeyProvider = store;
                let json = render::event_frame(&event, keys).to_json();
                frames.push((entry.seq.0, json.into()));
            }
        }
        if more {
            continue;
        }
        if last >= live_after {
            return Ok(Gap::Events { frames, last });
        }
        // The projector has not written what the tail has delivered yet.
        if Instant::now() >= deadline {
            return Ok(Gap::Behind);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(50));
    }
}
