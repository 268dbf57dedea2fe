//! Per-client rate limit: a token bucket per client address, refilled continuously.
//!
//! Concurrency contract: one mutex around the buckets, held for a lookup and a little
//! arithmetic, never across an `.await`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::config::RateLimitConfig;

/// Buckets kept before full (idle) ones are dropped.
const PRUNE_AT: usize = 100_000;

/// Token buckets by client address.
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter from its configuration (`per_second == 0`: no limit).
    pub fn new(c: &RateLimitConfig) -> RateLimiter {
        RateLimiter {
            per_second: c.per_second,
            burst: f64::from(c.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`, or says in how many whole seconds one will be there.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if b.len() >= PRUNE_AT {
            let (rate, burst) = (self.per_second, self.burst);
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(client).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_past_the_burst_and_refills() {
        let l = RateLimiter::new(&RateLimitConfig {
            per_second: 2.0,
            burst: 3,
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.check(ip, t).is_ok());
        }
        assert_eq!(l.check(ip, t), Err(1));
        assert!(l.check(other, t).is_ok(), "clients are apart");
        assert!(l.check(ip, t + Duration::from_millis(600)).is_ok());
        let off = RateLimiter::new(&RateLimitConfig {
            per_second: 0.0,
            burst: 1,
        });
        for _ in 0..100 {
            assert!(off.check(ip, t).is_ok());
        }
    }
}
