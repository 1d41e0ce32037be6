//! Gateway rate limits: a token bucket per client IP (every request but the
//! health probes, before authentication, so token guessing is throttled too)
//! and one per authenticated user, both `gateway.rate_limit_rpm` per minute
//! with that many as burst; `0` turns them off. A refusal is `429` with
//! `Retry-After`.
//!
//! The client IP is the TCP peer, unless the peer is one of
//! `gateway.trusted_proxies`: then it is the rightmost `X-Forwarded-For`
//! entry that is not itself a trusted proxy. A header from anyone else is
//! ignored, so clients cannot pick their own bucket.

use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// Checks between two prunings of idle keys.
const PRUNE_EVERY: u64 = 4096;

pub struct RateLimits {
    per_ip: Option<Keyed<IpAddr>>,
    per_user: Option<Keyed<String>>,
    trusted: Vec<IpAddr>,
    checks: AtomicU64,
}

/// The client address as the limiter and the logs see it.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl RateLimits {
    pub fn new(rpm: u32, trusted_proxies: &[String]) -> Self {
        let quota = NonZeroU32::new(rpm).map(Quota::per_minute);
        Self {
            per_ip: quota.map(RateLimiter::keyed),
            per_user: quota.map(RateLimiter::keyed),
            trusted: trusted_proxies
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            checks: AtomicU64::new(0),
        }
    }

    /// Whether `peer` is one of `gateway.trusted_proxies` (whose
    /// `X-Forwarded-*` headers are believed).
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        self.trusted.contains(&peer)
    }

    /// The client's address (see the module docs).
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusted.contains(&peer) {
            return peer;
        }
        forwarded_for
            .into_iter()
            .flat_map(|h| h.rsplit(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .find(|a| !self.trusted.contains(a))
            .unwrap_or(peer)
    }

    /// `Err(wait)` when the address is over its rate.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.tick();
        check(self.per_ip.as_ref(), &ip)
    }

    /// `Err(wait)` when the user (tenant-qualified) is over its rate.
    pub fn check_user(&self, user: &str) -> Result<(), Duration> {
        check(self.per_user.as_ref(), &user.to_owned())
    }

    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            if let Some(l) = &self.per_ip {
                l.retain_recent();
                l.shrink_to_fit();
            }
            if let Some(l) = &self.per_user {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&Keyed<K>>,
    key: &K,
) -> Result<(), Duration> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter
        .check_key(key)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// `Retry-After` in whole seconds, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// New pairing requests per client IP per minute (burst as many), on top of
/// `gateway.rate_limit_rpm`, which these routes are not exempt from.
pub const REQUESTS_PER_MINUTE: u32 = 5;

/// The per-IP limit on new pairing requests (`/v1/pairing/request`).
pub struct RequestLimit(RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>);

impl Default for RequestLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestLimit {
    pub fn new() -> Self {
        let n = NonZeroU32::new(REQUESTS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::keyed(Quota::per_minute(n)))
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.0.retain_recent();
        self.0
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let l = RateLimits::new(10, &["10.0.0.1".to_owned()]);
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            l.client_ip(stranger, Some("1.2.3.4")),
            stranger,
            "untrusted header ignored"
        );
        assert_eq!(
            l.client_ip(proxy, Some("1.2.3.4, 5.6.7.8")),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            l.client_ip(proxy, Some("1.2.3.4, 10.0.0.1")),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(l.client_ip(proxy, Some("garbage")), proxy);
        assert_eq!(l.client_ip(proxy, None), proxy);
    }

    #[test]
    fn buckets_refuse_past_the_burst_and_zero_is_off() {
        let l = RateLimits::new(3, &[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check_ip(ip).is_ok());
        }
        let wait = l.check_ip(ip).unwrap_err();
        assert!(retry_after_secs(wait) >= 1 && retry_after_secs(wait) <= 20);
        assert!(
            l.check_ip("192.0.2.2".parse().unwrap()).is_ok(),
            "other addresses unaffected"
        );
        assert!(l.check_user("t/u").is_ok());
        let off = RateLimits::new(0, &[]);
        for _ in 0..1000 {
            assert!(off.check_ip(ip).is_ok());
        }
    }
}
