//! The hub's idle conversations, least recently used first: what it forgets first when it
//! remembers more than its bound (`hub.rs`, `resume.md` § Bounds).
//!
//! A conversation with subscribers is never in here, so it is never forgotten. Each entry
//! keeps the tick it was last touched at; the index maps ticks back to keys, oldest first, so
//! touching and evicting are O(log n) and never walk the whole hub.

use std::collections::BTreeMap;

#[derive(Debug)]
pub(crate) struct Recency<K> {
    by_tick: BTreeMap<u64, K>,
    next: u64,
}

impl<K> Default for Recency<K> {
    fn default() -> Self {
        Self {
            by_tick: BTreeMap::new(),
            next: 0,
        }
    }
}

impl<K> Recency<K> {
    /// Marks an entry as just used and idle; `tick` is the entry's own record of its place,
    /// and `key` makes its key when it was not in the index yet.
    pub fn touch(&mut self, tick: &mut Option<u64>, key: impl FnOnce() -> K) {
        let key = tick
            .take()
            .and_then(|old| self.by_tick.remove(&old))
            .unwrap_or_else(key);
        let now = self.next;
        self.next += 1;
        self.by_tick.insert(now, key);
        *tick = Some(now);
    }

    /// Takes `key` out: it has subscribers now, or it is gone.
    pub fn remove(&mut self, tick: &mut Option<u64>) {
        if let Some(old) = tick.take() {
            self.by_tick.remove(&old);
        }
    }

    /// The least recently used idle key, taken out.
    pub fn pop_oldest(&mut self) -> Option<K> {
        self.by_tick.pop_first().map(|(_, key)| key)
    }

    pub fn len(&self) -> usize {
        self.by_tick.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_idle_key_goes_first() {
        let mut recency = Recency::default();
        let (mut a, mut b, mut c) = (None, None, None);
        recency.touch(&mut a, || "a");
        recency.touch(&mut b, || "b");
        recency.touch(&mut c, || "c");
        recency.touch(&mut a, || unreachable!("a is in the index"));
        recency.remove(&mut b);
        assert_eq!(recency.len(), 2);
        assert_eq!(recency.pop_oldest(), Some("c"));
        assert_eq!(recency.pop_oldest(), Some("a"));
        assert_eq!(recency.pop_oldest(), None);
        assert_eq!(b, None);
    }
}
