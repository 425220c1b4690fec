//! Token buckets for the per-connection and per-tenant rate limits.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::time::Instant;

use crate::config::Rate;

/// One token bucket. Time comes from tokio, so tests drive it with `tokio::time::pause()`.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn take(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate.per_second.max(f64::MIN_POSITIVE);
            Err((wait * 1000.0).ceil() as u64)
        }
    }
}

/// The buckets of every tenant on this instance.
#[derive(Debug)]
pub struct TenantLimits {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TenantLimits {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn take(&self, tenant: &str) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        match buckets.get_mut(tenant) {
            Some(bucket) => bucket.take(),
            None => {
                let mut bucket = Bucket::new(self.rate);
                let taken = bucket.take();
                buckets.insert(tenant.to_owned(), bucket);
                taken
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: Rate = Rate {
        per_second: 10.0,
        burst: 3.0,
    };

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let mut bucket = Bucket::new(RATE);
        for _ in 0..3 {
            assert_eq!(bucket.take(), Ok(()));
        }
        assert_eq!(bucket.take(), Err(100));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(bucket.take(), Ok(()));
        assert!(bucket.take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn tenants_have_separate_buckets() {
        let limits = TenantLimits::new(RATE);
        for _ in 0..3 {
            limits.take("acme").unwrap();
        }
        assert!(limits.take("acme").is_err());
        assert!(limits.take("globex").is_ok());
    }
}
