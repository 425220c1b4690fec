//! Token buckets: the one rate limiter of switchboard, shared by the write side (commands per
//! principal), the query service (reads per principal) and the edge (frames per connection
//! and per tenant).
//!
//! Pure: the time is always passed in, so each service picks its clock (tokio's, so that tests
//! drive it with `tokio::time::pause()`) and this crate reads none.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A sustained rate and the burst allowed above it.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// The most tokens a bucket holds: how many may come at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }
}

/// One token bucket: starts full, refills at its rate, never holds more than its burst.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        let added = elapsed * self.rate.per_second.max(0.0);
        self.tokens = (self.tokens + added).min(self.rate.burst);
    }

    /// Takes one token, or says how long until one is there (`Duration::MAX`: never, the
    /// rate adds none or the burst holds less than one).
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if self.rate.burst < 1.0 {
            return Err(Duration::MAX);
        }
        let wait = (1.0 - self.tokens) / self.rate.per_second;
        Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
    }

    /// Whether the bucket would be full at `now`: then it is no different from a new one.
    pub fn is_full(&self, now: Instant) -> bool {
        let mut bucket = self.clone();
        bucket.refill(now);
        bucket.tokens >= self.rate.burst
    }
}

/// A bucket per key (a principal, a tenant), made full on first use. Buckets that have
/// refilled are forgotten once the map has doubled since the last sweep, so memory follows
/// the keys active lately, not every key ever seen.
#[derive(Debug)]
pub struct RateLimiter<K> {
    buckets: HashMap<K, TokenBucket>,
    sweep_at: usize,
}

/// Below this many buckets no sweep runs.
const FIRST_SWEEP: usize = 1024;

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        Self {
            buckets: HashMap::new(),
            sweep_at: FIRST_SWEEP,
        }
    }
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Takes a token from `key`'s bucket (made at `rate` if it has none), or says how long
    /// until one is there.
    pub fn take(&mut self, key: &K, rate: Rate, now: Instant) -> Result<(), Duration> {
        if let Some(bucket) = self.buckets.get_mut(key) {
            return bucket.take(now);
        }
        if self.buckets.len() >= self.sweep_at {
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            self.sweep_at = FIRST_SWEEP.max(2 * self.buckets.len());
        }
        let mut bucket = TokenBucket::full(rate, now);
        let taken = bucket.take(now);
        self.buckets.insert(key.clone(), bucket);
        taken
    }

    /// How many buckets are kept.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate::new(10.0, 3.0);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(RATE, t0);
        for _ in 0..3 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        assert_eq!(bucket.take(t0), Err(ms(100)));
        assert_eq!(bucket.take(t0 + ms(40)), Err(ms(60)));
        assert_eq!(bucket.take(t0 + ms(100)), Ok(()));
        assert!(bucket.take(t0 + ms(100)).is_err());
        assert!(!bucket.is_full(t0 + ms(100)));
        assert!(
            bucket.is_full(t0 + ms(400)),
            "refilled, never above the burst"
        );
        for _ in 0..3 {
            assert_eq!(bucket.take(t0 + Duration::from_secs(60)), Ok(()));
        }
        assert!(bucket.take(t0 + Duration::from_secs(60)).is_err());
    }

    #[test]
    fn time_going_back_adds_nothing_and_empty_rates_never_refill() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut bucket = TokenBucket::full(Rate::new(1.0, 1.0), t0);
        assert_eq!(bucket.take(t0), Ok(()));
        assert!(bucket.take(t0 - ms(500)).is_err());
        let mut never = TokenBucket::full(Rate::new(0.0, 1.0), t0);
        assert_eq!(never.take(t0), Ok(()));
        assert_eq!(never.take(t0 + ms(1000)), Err(Duration::MAX));
        let mut closed = TokenBucket::full(Rate::new(5.0, 0.0), t0);
        assert_eq!(closed.take(t0 + ms(1000)), Err(Duration::MAX));
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::default();
        for _ in 0..3 {
            limiter.take(&"acme/cust-1", RATE, t0).unwrap();
        }
        assert!(limiter.take(&"acme/cust-1", RATE, t0).is_err());
        assert!(limiter.take(&"acme/cust-2", RATE, t0).is_ok());
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn refilled_buckets_are_forgotten_as_new_keys_arrive() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::default();
        let n = FIRST_SWEEP as u32;
        for key in 0..n {
            limiter.take(&key, RATE, t0).unwrap();
        }
        limiter.take(&0, RATE, t0).unwrap();
        limiter.take(&0, RATE, t0).unwrap();
        assert!(limiter.take(&0, RATE, t0).is_err(), "key 0 is empty");
        // 200 ms later every bucket but key 0's has refilled; a new key sweeps them out.
        let later = t0 + ms(200);
        limiter.take(&n, RATE, later).unwrap();
        assert_eq!(
            limiter.len(),
            2,
            "key 0, still short of its burst, and the new key"
        );
        assert!(limiter.take(&0, RATE, later).is_ok());
        assert!(limiter.take(&0, RATE, later).is_ok());
        assert!(
            limiter.take(&0, RATE, later).is_err(),
            "key 0 kept its count"
        );
    }
}
