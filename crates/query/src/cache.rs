//! Hot history pages and summaries, cached with moka, invalidated when projection changes a
//! conversation; unknown conversation ids cached briefly so that a flood of bogus ids reads
//! the store once per id and window.
//!
//! Invalidation is by generation. Every conversation has a generation number, drawn from one
//! counter that only grows; cached pages and summaries are keyed by it. [`ReadCache::changed`]
//! (called by the projector in-process through [`Invalidate`], or by the log follower in
//! `follow.rs`) gives the conversation a fresh generation, so every entry built before is
//! unreachable at once and ages out. A generation evicted from its own cache is drawn afresh
//! too, so eviction can only cause misses, never stale hits.
//!
//! Pages hold opened personal data, so an erasure ([`ReadCache::erased`]) retires every page
//! at once by moving an epoch that page keys carry, the same way.
//!
//! Two races with projection lag, and why neither caches a stale answer:
//! - a reader takes the generation, the projector applies an event and bumps it, the reader
//!   caches what it read: the entry is filed under the old generation, never read again. The
//!   reader takes the generation *before* it reads the store.
//! - the log follower sees an event before the projector has applied it. `changed` records the
//!   event's seq as the conversation's floor; a page or summary read from a store whose summary
//!   is still below the floor is served but not cached.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::metrics;
use switchboard_events::Seq;
use switchboard_events::id::{ConversationId, TenantId};
use switchboard_store::conversation::ConversationSummary;
use switchboard_store::timeline::Audience;

use crate::service::CachedPage;

/// A conversation, within its tenant.
pub type ConvKey = (TenantId, ConversationId);

/// A history page request, within a conversation's generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub conversation: ConvKey,
    pub generation: u64,
    /// The erasure epoch: pages open sealed data, so an erasure anywhere retires them all.
    pub epoch: u64,
    pub audience: bool,
    pub cursor: String,
    pub limit: u32,
}

impl PageKey {
    pub fn new(
        conversation: ConvKey,
        (generation, epoch): (u64, u64),
        audience: Audience,
        cursor: String,
        limit: u32,
    ) -> Self {
        Self {
            conversation,
            generation,
            epoch,
            audience: audience == Audience::Staff,
            cursor,
            limit,
        }
    }
}

/// How big and how fresh the caches are (`[query.cache]` in the binary's configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Bytes of serialized history pages. Default: 32 MiB.
    pub page_bytes: u64,
    /// Conversation summaries. Default: 20,000. The conversations whose generation is
    /// remembered are bounded by twice this, and the floors and the unknown ids by this.
    pub summaries: u64,
    /// How long a miss on an unknown conversation id is remembered. Default: 2 s.
    pub negative_ttl_ms: u64,
    /// An upper bound on any entry's life, in case an invalidation is lost; a conversation's
    /// generation is forgotten once unused for this long. Default: 300 s.
    pub ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            page_bytes: 32 * 1024 * 1024,
            summaries: 20_000,
            negative_ttl_ms: 2_000,
            ttl_ms: 300_000,
        }
    }
}

/// The query service's caches.
#[derive(Debug)]
pub struct ReadCache {
    counter: AtomicU64,
    epoch: AtomicU64,
    generations: Cache<ConvKey, u64>,
    floors: Cache<ConvKey, Seq>,
    pages: Cache<PageKey, Arc<CachedPage>>,
    summaries: Cache<(ConvKey, u64), Arc<ConversationSummary>>,
    missing: Cache<ConvKey, ()>,
}

impl ReadCache {
    pub fn new(config: &CacheConfig) -> Self {
        let ttl = Duration::from_millis(config.ttl_ms);
        Self {
            counter: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
            // Forgetting a generation is safe: the next read takes a fresh one, under which
            // nothing is cached.
            generations: Cache::builder()
                .max_capacity(config.summaries.saturating_mul(2))
                .time_to_idle(ttl)
                .build(),
            floors: Cache::builder()
                .max_capacity(config.summaries)
                .time_to_live(ttl)
                .build(),
            pages: Cache::builder()
                .max_capacity(config.page_bytes)
                .weigher(|_: &PageKey, page: &Arc<CachedPage>| {
                    // The JSON and the typed page hold about the same bytes.
                    (page.json.len() * 2).try_into().unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
            summaries: Cache::builder()
                .max_capacity(config.summaries)
                .time_to_live(ttl)
                .build(),
            missing: Cache::builder()
                .max_capacity(config.summaries)
                .time_to_live(Duration::from_millis(config.negative_ttl_ms))
                .build(),
        }
    }

    fn fresh(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// The conversation's generation: take it before reading the store.
    pub fn generation(&self, key: &ConvKey) -> u64 {
        self.generations.get_with_by_ref(key, || self.fresh())
    }

    /// The erasure epoch: take it with the generation, before reading the store.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A customer's data was erased: every cached page may hold their opened data (in any of
    /// their conversations), so all pages go. Erasures are rare; pages refill on demand.
    pub fn erased(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.pages.invalidate_all();
    }

    /// Projection changed the conversation up to `seq` (or it will: see the module notes).
    pub fn changed(&self, tenant: &TenantId, conversation: &ConversationId, seq: Seq) {
        let key = (tenant.clone(), conversation.clone());
        if self.floors.get(&key).is_none_or(|floor| floor < seq) {
            self.floors.insert(key.clone(), seq);
        }
        self.generations.insert(key.clone(), self.fresh());
        self.missing.invalidate(&key);
        metrics::entries("generation", self.generations.entry_count());
        metrics::entries("floor", self.floors.entry_count());
    }

    /// Whether a read whose summary reached `last_seq` is fresh enough to cache.
    pub fn caught_up(&self, key: &ConvKey, last_seq: Seq) -> bool {
        self.floors.get(key).is_none_or(|floor| last_seq >= floor)
    }

    pub fn page(&self, key: &PageKey) -> Option<Arc<CachedPage>> {
        let page = self.pages.get(key);
        metrics::lookup("page", page.is_some(), self.pages.entry_count());
        page
    }

    pub fn put_page(&self, key: PageKey, page: Arc<CachedPage>) {
        self.pages.insert(key, page);
    }

    pub fn summary(&self, key: &ConvKey, generation: u64) -> Option<Arc<ConversationSummary>> {
        let summary = self.summaries.get(&(key.clone(), generation));
        let entries = self.summaries.entry_count();
        metrics::lookup("summary", summary.is_some(), entries);
        summary
    }

    pub fn put_summary(&self, key: ConvKey, generation: u64, summary: Arc<ConversationSummary>) {
        self.summaries.insert((key, generation), summary);
    }

    /// Whether the id was recently looked up and not found.
    pub fn known_missing(&self, key: &ConvKey) -> bool {
        let missing = self.missing.contains_key(key);
        metrics::lookup("missing", missing, self.missing.entry_count());
        missing
    }

    pub fn put_missing(&self, key: ConvKey) {
        self.missing.insert(key, ());
    }
}

/// What the projector calls, in-process, after it applied a batch: every conversation the
/// batch changed, with the last seq it reached. The root binary hands the query service's
/// cache to the projector as this trait, so neither crate depends on the other.
pub trait Invalidate: Send + Sync {
    fn changed(&self, tenant: &TenantId, conversation: &ConversationId, seq: Seq);
    /// A customer's data was erased (a `CustomerDataErased` event was projected).
    fn erased(&self);
}

impl Invalidate for ReadCache {
    fn changed(&self, tenant: &TenantId, conversation: &ConversationId, seq: Seq) {
        ReadCache::changed(self, tenant, conversation, seq);
    }

    fn erased(&self) {
        ReadCache::erased(self);
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;
    use crate::service::HistoryPage;

    fn key(n: u32) -> ConvKey {
        (
            TenantId::new("acme").unwrap(),
            ConversationId::new(format!("conv-{n}")).unwrap(),
        )
    }

    #[test]
    fn a_change_makes_every_older_entry_unreachable() {
        let cache = ReadCache::new(&CacheConfig::default());
        let before = cache.generation(&key(1));
        assert_eq!(cache.generation(&key(1)), before, "stable until a change");
        let page = PageKey::new(key(1), (before, 0), Audience::Staff, "newest".into(), 50);
        let cached = CachedPage {
            page: HistoryPage {
                conversation_id: key(1).1,
                events: Vec::new(),
                before: None,
                after: None,
            },
            json: Bytes::from_static(b"{}"),
        };
        cache.put_page(page.clone(), Arc::new(cached));
        assert!(cache.page(&page).is_some());
        cache.changed(&key(1).0, &key(1).1, Seq(7));
        let after = cache.generation(&key(1));
        assert_ne!(after, before);
        let page = PageKey::new(key(1), (after, 0), Audience::Staff, "newest".into(), 50);
        assert!(cache.page(&page).is_none());
        let epoch = cache.epoch();
        cache.erased();
        assert_ne!(cache.epoch(), epoch, "an erasure moves every page key on");
        assert_eq!(
            cache.generation(&key(2)),
            cache.generation(&key(2)),
            "other conversations keep theirs"
        );
    }

    #[test]
    fn a_read_behind_the_floor_is_not_cached() {
        let cache = ReadCache::new(&CacheConfig::default());
        assert!(cache.caught_up(&key(1), Seq(0)));
        cache.changed(&key(1).0, &key(1).1, Seq(9));
        cache.changed(&key(1).0, &key(1).1, Seq(8));
        assert!(!cache.caught_up(&key(1), Seq(8)), "the floor never drops");
        assert!(cache.caught_up(&key(1), Seq(9)));
    }

    #[test]
    fn generations_and_floors_are_bounded() {
        let config = CacheConfig {
            summaries: 10,
            ..CacheConfig::default()
        };
        let cache = ReadCache::new(&config);
        for n in 0..1_000 {
            cache.changed(&key(n).0, &key(n).1, Seq(1));
        }
        cache.generations.run_pending_tasks();
        cache.floors.run_pending_tasks();
        assert!(
            cache.generations.entry_count() <= 20,
            "{} generations held",
            cache.generations.entry_count()
        );
        assert!(cache.floors.entry_count() <= 10);
    }

    #[test]
    fn misses_are_remembered_until_the_id_appears() {
        let cache = ReadCache::new(&CacheConfig::default());
        cache.put_missing(key(3));
        assert!(cache.known_missing(&key(3)));
        cache.changed(&key(3).0, &key(3).1, Seq(1));
        assert!(!cache.known_missing(&key(3)));
    }
}
