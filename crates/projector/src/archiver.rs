//! The archiver: moves conversations resolved longer than `archive_after` from the hot store to
//! the cold archive, as crates/store/DESIGN.md ("Using the port") describes.
//!
//! For each day old enough, it walks the resolved-by-day index a page at a time, and for each
//! tenant in the page: reads every conversation's whole timeline (the archived part too, when
//! a reopened conversation was archived before), verifies its hash chain to the summary's head
//! (a broken chain is logged and left hot, never archived), writes one archive file for the
//! tenant and day, and only then records each conversation in the manifest, which removes its
//! hot rows. A crash between the file and the manifest leaves the conversations hot and
//! listed; the next run names the same file and reuses it. Running it again changes nothing.

use std::sync::Arc;
use std::time::Duration;

use switchboard_events::chain::{Verdict, Verifier};
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_events::{Seq, Timestamp};
use switchboard_store::archive::{ArchiveEntry, ResolvedRef};
use switchboard_store::cold::{Archive, ConversationEvents};
use switchboard_store::conversation::{ConversationStatus, ConversationSummary};
use switchboard_store::report::Day;
use switchboard_store::timeline::{Audience, MAX_PAGE, TimelineCursor, TimelineQuery};
use switchboard_store::{ReadModels, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[cfg(test)]
mod tests;

const DAY: Duration = Duration::from_secs(86_400);

/// When and how much the archiver archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiverConfig {
    /// How long a conversation stays hot after it was resolved.
    pub archive_after: Duration,
    /// How far back from the newest day old enough each run looks for days to archive.
    pub lookback_days: u32,
    /// Conversations read from the resolved index at a time; at most this many per file.
    pub page: u32,
    /// Time between runs of [`Archiver::spawn`].
    pub interval: Duration,
}

impl Default for ArchiverConfig {
    fn default() -> Self {
        Self {
            archive_after: 30 * DAY,
            lookback_days: 366,
            page: 200,
            interval: Duration::from_secs(3600),
        }
    }
}

/// The times a run decides by: now, and the latest resolution old enough to archive.
#[derive(Debug, Clone, Copy)]
struct Clock {
    now: Timestamp,
    cutoff: Timestamp,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    pub conversations: u64,
    pub files: u64,
    /// Conversations left hot because their chain did not verify.
    pub refused: u64,
}

/// Archives resolved conversations, periodically or once.
#[derive(Debug, Clone)]
pub struct Archiver {
    store: Arc<dyn ReadModels>,
    archive: Archive,
    config: ArchiverConfig,
}

impl Archiver {
    pub fn new(store: Arc<dyn ReadModels>, archive: Archive, config: ArchiverConfig) -> Self {
        Self {
            store,
            archive,
            config,
        }
    }

    /// Runs now and then every `interval` until `shutdown` turns true (or its sender is
    /// dropped). A failed run is logged and retried at the next tick: every step of a run is
    /// idempotent. A run under way finishes before the task ends.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.config.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !*shutdown.borrow() {
                tokio::select! {
                    changed = shutdown.changed() => if changed.is_err() {
                        // Nobody can ask for a shutdown any more: the process is going away.
                        break;
                    },
                    _ = ticks.tick() => {
                        let started = std::time::Instant::now();
                        let run = self.run_once(Timestamp::now()).await;
                        crate::metrics::archive_run(run.is_ok(), started.elapsed());
                        match run {
                            Ok(report) => tracing::info!(?report, "archive run finished"),
                            Err(e) => tracing::warn!(error = %e, "archive run failed; retrying at the next tick"),
                        }
                    },
                }
            }
        })
    }

    /// Archives every conversation resolved at least `archive_after` before `now`.
    pub async fn run_once(&self, now: Timestamp) -> Result<ArchiveReport, StoreError> {
        let after = i64::try_from(self.config.archive_after.as_micros()).unwrap_or(i64::MAX);
        let cutoff = Timestamp(now.as_micros().saturating_sub(after));
        let clock = Clock { now, cutoff };
        let newest = Day::of(cutoff);
        let mut report = ArchiveReport::default();
        for back in (0..=self.config.lookback_days).rev() {
            let day = Day(newest.0 - back as i32);
            self.archive_day(day, clock, &mut report).await?;
        }
        Ok(report)
    }

    async fn archive_day(
        &self,
        day: Day,
        clock: Clock,
        report: &mut ArchiveReport,
    ) -> Result<(), StoreError> {
        let mut after: Option<ResolvedRef> = None;
        loop {
            let page = self.config.page.clamp(1, MAX_PAGE);
            let refs = self.store.resolved_on(day, after.as_ref(), page).await?;
            let Some(last) = refs.last().cloned() else {
                return Ok(());
            };
            for tenant_refs in refs.chunk_by(|a, b| a.tenant == b.tenant) {
                let tenant = &tenant_refs[0].tenant;
                let ids: Vec<_> = tenant_refs.iter().map(|r| &r.conversation).collect();
                self.archive_tenant(tenant, day, &ids, clock, report)
                    .await?;
            }
            if refs.len() < page as usize {
                return Ok(());
            }
            after = Some(last);
        }
    }

    async fn archive_tenant(
        &self,
        tenant: &TenantId,
        day: Day,
        conversations: &[&ConversationId],
        clock: Clock,
        report: &mut ArchiveReport,
    ) -> Result<(), StoreError> {
        let mut ready = Vec::new();
        for &conversation in conversations {
            let Some(summary) = self.store.conversation(tenant, conversation).await? else {
                continue;
            };
            let old_enough = summary.resolved_at.is_some_and(|at| at <= clock.cutoff);
            if summary.status != ConversationStatus::Resolved || !old_enough {
                continue;
            }
            match self.whole_timeline(&summary).await? {
                Some(events) => ready.push((summary, events)),
                None => {
                    report.refused += 1;
                    crate::metrics::archive_skipped("chain_unverified");
                }
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        let files: Vec<ConversationEvents> = ready.iter().map(|(_, e)| e.clone()).collect();
        let object = match self.archive.write(tenant, day, &files).await {
            Ok(object) => object,
            Err(e) => {
                for _ in &ready {
                    crate::metrics::archive_skipped("write_failed");
                }
                return Err(e);
            }
        };
        report.files += 1;
        for (summary, _) in ready {
            let entry = ArchiveEntry {
                tenant: tenant.clone(),
                conversation: summary.conversation.clone(),
                day,
                object: object.clone(),
                first_seq: Seq(1),
                last_seq: summary.last_seq,
                last_hash: summary.last_hash,
                archived_at: clock.now,
                summary,
            };
            self.store.archive(&entry).await?;
            crate::metrics::archived();
            report.conversations += 1;
        }
        Ok(())
    }

    /// The conversation's every event from seq 1 (archived earlier, then hot), verified to the
    /// summary's chain head; `None`, logged, when the chain is broken.
    async fn whole_timeline(
        &self,
        summary: &ConversationSummary,
    ) -> Result<Option<ConversationEvents>, StoreError> {
        let (tenant, conversation) = (&summary.tenant, &summary.conversation);
        let mut entries = match self.store.archived(tenant, conversation).await? {
            Some(earlier) => self.archive.entries(&earlier).await?,
            None => Vec::new(),
        };
        let archived_through = entries.last().map_or(Seq(0), |e| e.seq);
        let mut cursor = Some(TimelineCursor::After(archived_through));
        while let Some(at) = cursor {
            let query = TimelineQuery::new(at, MAX_PAGE, Audience::Staff);
            let page = self.store.timeline(tenant, conversation, query).await?;
            entries.extend(page.entries);
            cursor = page.next;
        }
        let mut verifier = Verifier::new().expect_head(summary.last_seq, summary.last_hash);
        for entry in &entries {
            verifier.push(&entry.frame);
        }
        match verifier.finish() {
            Verdict::Intact { .. } => Ok(Some(ConversationEvents {
                conversation: conversation.clone(),
                entries,
            })),
            Verdict::Broken { seq, problem } => {
                tracing::error!(
                    tenant = %tenant, conversation = %conversation, seq = seq.0, ?problem,
                    "conversation's hash chain is broken; it stays hot and is not archived"
                );
                Ok(None)
            }
        }
    }
}
