//! The read operations both protocols serve, each authorised for its principal, within the
//! principal's tenant: summaries, history pages and reports. Lists are in `lists.rs`, audit
//! replay and verification in `audit.rs`, pages of archived conversations in `archived.rs`.

use std::sync::Arc;

use axum::body::Bytes;
use serde::Serialize;
use serde_json::Value;
use switchboard_events::id::{AgentId, ConversationId, TenantId};
use switchboard_events::personal::KeyProvider;
use switchboard_events::principal::Principal;
use switchboard_events::token::TokenVerifier;
use switchboard_events::{ConversationEvent, Seq, Timestamp};
use switchboard_store::ReadModels;
use switchboard_store::conversation::ConversationSummary;
use switchboard_store::report::{DailyReport, Day, ReportScope};
use switchboard_store::timeline::{
    Audience, MAX_PAGE, TimelineCursor, TimelineEntry, TimelineQuery,
};

use crate::access;
use crate::cache::{CacheConfig, ConvKey, PageKey, ReadCache};
use crate::error::QueryError;
use crate::render;
use crate::source::Sources;

/// Where a history page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFrom {
    Oldest,
    Newest,
    After(Seq),
    Before(Seq),
    /// A page centred on a seq: half before it (it included), half after.
    Around(Seq),
}

impl HistoryFrom {
    fn key(self) -> String {
        match self {
            Self::Oldest => "oldest".into(),
            Self::Newest => "newest".into(),
            Self::After(s) => format!("after:{}", s.0),
            Self::Before(s) => format!("before:{}", s.0),
            Self::Around(s) => format!("around:{}", s.0),
        }
    }
}

/// One event of a history page, as the reader may see it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub seq: Seq,
    pub occurred_at: Timestamp,
    pub kind: &'static str,
    pub event: Value,
    #[serde(skip)]
    pub frame: Vec<u8>,
}

/// A page of history, ascending seq, with the cursors of its neighbours.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPage {
    pub conversation_id: ConversationId,
    pub events: Vec<HistoryEntry>,
    /// Page backward with `before=<this>`; absent at the start.
    pub before: Option<Seq>,
    /// Page forward with `after=<this>`; absent at the newest event projected.
    pub after: Option<Seq>,
}

/// A cached page: the typed page for gRPC and its JSON for HTTP.
#[derive(Debug)]
pub struct CachedPage {
    pub page: HistoryPage,
    pub json: Bytes,
}

/// The query service: the store, the other sources of history, the token verifier and the
/// caches. Shared by the HTTP and gRPC servers behind an `Arc`.
#[derive(Debug)]
pub struct QueryService {
    pub(crate) store: Arc<dyn ReadModels>,
    pub(crate) sources: Sources,
    verifier: TokenVerifier,
    rates: access::ReadRates,
    pub(crate) cache: Arc<ReadCache>,
    /// The log, for the tenant's settings chain (`Scope::Settings`).
    pub(crate) log: Option<Arc<dyn switchboard_log::EventLog>>,
}

impl QueryService {
    /// A service over the hot store alone.
    pub fn new(store: Arc<dyn ReadModels>, verifier: TokenVerifier, cache: &CacheConfig) -> Self {
        Self {
            sources: Sources::hot(store.clone()),
            store,
            verifier,
            rates: access::ReadRates::default(),
            cache: Arc::new(ReadCache::new(cache)),
            log: None,
        }
    }

    /// Reads the tenant's settings chain from `log` (the audit replay of `Scope::Settings`).
    pub fn with_log(mut self, log: Arc<dyn switchboard_log::EventLog>) -> Self {
        self.log = Some(log);
        self
    }

    /// The read rates per principal (by default [`access::ReadLimits::default`]).
    pub fn with_read_limits(mut self, limits: access::ReadLimits) -> Self {
        self.rates = access::ReadRates::new(limits);
        self
    }

    /// Replay, verification and export read these sources (hot store, archive, log).
    pub fn with_sources(mut self, sources: Sources) -> Self {
        self.sources = sources;
        self
    }

    /// The caches, to hand to whatever reports projection changes (see `cache.rs`).
    pub fn cache(&self) -> Arc<ReadCache> {
        Arc::clone(&self.cache)
    }

    /// The principal behind the `authorization` header, with a read taken from its rate:
    /// every operation of both protocols starts here.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, QueryError> {
        let who = access::authenticate(&self.verifier, authorization)?;
        self.rates
            .take(&who, tokio::time::Instant::now().into_std())?;
        Ok(who)
    }

    fn conversation_id(id: &str) -> Result<ConversationId, QueryError> {
        ConversationId::new(id).map_err(|e| QueryError::invalid(format!("conversation id: {e}")))
    }

    /// The summary within the tenant, from the cache, the hot store or the archive manifest,
    /// with the generation it was read under.
    pub(crate) async fn summary_of(
        &self,
        key: &ConvKey,
    ) -> Result<(Arc<ConversationSummary>, u64), QueryError> {
        if self.cache.known_missing(key) {
            return Err(QueryError::conversation_not_found());
        }
        let generation = self.cache.generation(key);
        if let Some(summary) = self.cache.summary(key, generation) {
            return Ok((summary, generation));
        }
        let (tenant, conversation) = key;
        let found = match self.store.conversation(tenant, conversation).await? {
            Some(summary) => Some(summary),
            None => self
                .store
                .archived(tenant, conversation)
                .await?
                .map(|entry| entry.summary),
        };
        let Some(summary) = found else {
            self.cache.put_missing(key.clone());
            return Err(QueryError::conversation_not_found());
        };
        let summary = Arc::new(summary);
        if self.cache.caught_up(key, summary.last_seq) {
            self.cache
                .put_summary(key.clone(), generation, Arc::clone(&summary));
        }
        Ok((summary, generation))
    }

    /// A conversation the principal may read.
    pub async fn summary(
        &self,
        who: &Principal,
        conversation: &str,
    ) -> Result<Arc<ConversationSummary>, QueryError> {
        let key = (who.tenant.clone(), Self::conversation_id(conversation)?);
        let (summary, _) = self.summary_of(&key).await?;
        access::read_conversation(who, &summary)?;
        Ok(summary)
    }

    /// A page of a conversation's history, cached.
    pub async fn history(
        &self,
        who: &Principal,
        conversation: &str,
        from: HistoryFrom,
        limit: u32,
    ) -> Result<Arc<CachedPage>, QueryError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(QueryError::invalid(format!(
                "limit must be within 1..={MAX_PAGE}"
            )));
        }
        let key = (who.tenant.clone(), Self::conversation_id(conversation)?);
        let epoch = self.cache.epoch();
        let (summary, generation) = self.summary_of(&key).await?;
        access::read_conversation(who, &summary)?;
        let audience = access::audience(who);
        let page_key = PageKey::new(
            key.clone(),
            (generation, epoch),
            audience,
            from.key(),
            limit,
        );
        if let Some(page) = self.cache.page(&page_key) {
            return Ok(page);
        }
        let page = self
            .read_page(&key, &summary, from, limit, audience)
            .await?;
        let json = serde_json::to_vec(&page).map_err(|e| QueryError::Internal(e.to_string()))?;
        let cached = Arc::new(CachedPage {
            page,
            json: Bytes::from(json),
        });
        if self.cache.caught_up(&key, summary.last_seq) {
            self.cache.put_page(page_key, Arc::clone(&cached));
        }
        Ok(cached)
    }

    /// A page's entries from the hot timeline, ascending.
    async fn hot_entries(
        &self,
        (tenant, conversation): (&TenantId, &ConversationId),
        from: HistoryFrom,
        limit: u32,
        audience: Audience,
    ) -> Result<Vec<TimelineEntry>, QueryError> {
        let read = |cursor, limit| async move {
            let query = TimelineQuery::new(cursor, limit, audience);
            self.store.timeline(tenant, conversation, query).await
        };
        let mut entries = match from {
            HistoryFrom::Oldest => read(TimelineCursor::Oldest, limit).await?.entries,
            HistoryFrom::After(s) => read(TimelineCursor::After(s), limit).await?.entries,
            HistoryFrom::Newest => read(TimelineCursor::Newest, limit).await?.entries,
            HistoryFrom::Before(s) => read(TimelineCursor::Before(s), limit).await?.entries,
            HistoryFrom::Around(s) => {
                let before = limit.div_ceil(2);
                let mut entries = read(TimelineCursor::Before(s.next()), before)
                    .await?
                    .entries;
                entries.reverse();
                if limit > before {
                    let after = read(TimelineCursor::After(s), limit - before).await?;
                    entries.extend(after.entries);
                }
                entries
            }
        };
        if matches!(from, HistoryFrom::Newest | HistoryFrom::Before(_)) {
            entries.reverse();
        }
        Ok(entries)
    }

    async fn read_page(
        &self,
        (tenant, conversation): &ConvKey,
        summary: &ConversationSummary,
        from: HistoryFrom,
        limit: u32,
        audience: Audience,
    ) -> Result<HistoryPage, QueryError> {
        let entries = if self.store.archived(tenant, conversation).await?.is_some() {
            self.archived_entries(tenant, conversation, from, limit, audience)
                .await?
        } else {
            self.hot_entries((tenant, conversation), from, limit, audience)
                .await?
        };
        let keys: &dyn KeyProvider = &*self.store;
        let mut events = Vec::with_capacity(entries.len());
        for entry in entries {
            let event = ConversationEvent::decode(&entry.frame)
                .map_err(|e| QueryError::Internal(format!("seq {}: {e}", entry.seq.0)))?;
            events.push(HistoryEntry {
                seq: entry.seq,
                occurred_at: entry.occurred_at,
                kind: entry.kind.record_name().unwrap_or("unknown"),
                event: render::event_json(tenant, &event, keys)?,
                frame: entry.frame,
            });
        }
        let before = events.first().map(|e| e.seq).filter(|s| s.0 > 1);
        let after = events
            .last()
            .map(|e| e.seq)
            .filter(|s| *s < summary.last_seq);
        Ok(HistoryPage {
            conversation_id: conversation.clone(),
            events,
            before,
            after,
        })
    }

    /// Daily figures of the tenant or one agent, `from` to `to` inclusive.
    pub async fn report(
        &self,
        who: &Principal,
        agent: Option<AgentId>,
        from: Day,
        to: Day,
    ) -> Result<Vec<DailyReport>, QueryError> {
        access::report(who, agent.as_ref())?;
        if to < from || to.0 - from.0 > 366 {
            return Err(QueryError::invalid(
                "a report spans from `from` to `to`, at most 366 days",
            ));
        }
        let scope = agent.map_or(ReportScope::Tenant, ReportScope::Agent);
        Ok(self.store.report(&who.tenant, &scope, from, to).await?)
    }
}
