//! What one client can make the gateway hold. Per-agency request rates are a
//! token bucket each (a burst, then the sustained rate); over it, 429 with
//! `Retry-After`. Bodies, connections and pages are bounded where they are
//! read (routes, tls, store).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use concord_domain::AgencyId;

/// One token bucket per agency.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<AgencyId, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` requests per second sustained, `burst` at once.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter { rate, burst: f64::from(burst), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request of `agency` at `now`: `Err(wait)` when its bucket is
    /// empty, with how long until it holds one again.
    pub fn take(&self, agency: &AgencyId, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock is never poisoned");
        let (tokens, last) = buckets.entry(agency.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_then_refusal_with_the_wait() {
        let limiter = RateLimiter::new(10.0, 5);
        let (a, b): (AgencyId, AgencyId) = ("exchange-global".parse().unwrap(), "committee-ph".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.take(&a, t0).is_ok());
        }
        let wait = limiter.take(&a, t0).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(limiter.take(&b, t0).is_ok(), "another agency has its own bucket");
        assert!(limiter.take(&a, t0 + Duration::from_millis(100)).is_ok(), "one token back after 1/rate");
        assert!(limiter.take(&a, t0 + Duration::from_millis(100)).is_err());
        for _ in 0..5 {
            assert!(limiter.take(&a, t0 + Duration::from_secs(60)).is_ok(), "refilled up to the burst");
        }
        assert!(limiter.take(&a, t0 + Duration::from_secs(60)).is_err(), "never above the burst");
    }
}
