//! [`Retry`]: exponential backoff with full jitter for retryable errors,
//! honouring a provider's `retry-after`. Only failures before the first
//! stream event are retried: once output has been forwarded, an error is
//! passed through (the caller has already seen part of an answer).

use super::first_event;
use exoclaw_core::provider::{ChatRequest, ChatStream, Provider, ProviderError, ProviderInfo};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// How a backoff delay is randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, delay]` ("full jitter"): spreads out a thundering herd.
    Full,
    /// Exactly the exponential delay (for tests).
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retry).
    pub max_attempts: u32,
    /// The delay cap after the first failure; doubled after each.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `retry-after` longer than this is not waited for: the error is
    /// returned at once so a fallback can take over.
    pub max_retry_after: Duration,
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            jitter: Jitter::Full,
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `failures + 1`, with `unit` in `[0, 1]`
    /// drawn for the jitter.
    fn backoff(&self, failures: u32, unit: f64) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        let cap = self.base_delay.saturating_mul(factor).min(self.max_delay);
        match self.jitter {
            Jitter::Full => cap.mul_f64(unit.clamp(0.0, 1.0)),
            Jitter::None => cap,
        }
    }
}

pub struct Retry {
    inner: Arc<dyn Provider>,
    policy: RetryPolicy,
    rng: AtomicU64,
}

impl Retry {
    pub fn new(inner: Arc<dyn Provider>, policy: RetryPolicy) -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        Self {
            inner,
            policy,
            rng: AtomicU64::new(seed),
        }
    }

    /// SplitMix64: a uniform float in `[0, 1)`; quality is ample for jitter.
    fn unit(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[async_trait::async_trait]
impl Provider for Retry {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        let mut failures = 0u32;
        loop {
            let result = match self.inner.stream(request.clone()).await {
                Ok(stream) => first_event(stream).await,
                Err(e) => Err(e),
            };
            let err = match result {
                Ok(stream) => return Ok(stream),
                Err(e) => e,
            };
            failures += 1;
            if !err.is_retryable() || failures >= self.policy.max_attempts {
                return Err(err);
            }
            let delay = match &err {
                ProviderError::RateLimited {
                    retry_after: Some(wait),
                } => {
                    if *wait > self.policy.max_retry_after {
                        tracing::warn!(
                            provider = %self.inner.info().name,
                            model = %request.model,
                            retry_after_ms = wait.as_millis() as u64,
                            "rate limited for longer than we wait; giving up on this provider"
                        );
                        return Err(err);
                    }
                    *wait
                }
                _ => self.policy.backoff(failures, self.unit()),
            };
            tracing::warn!(
                provider = %self.inner.info().name,
                model = %request.model,
                attempt = failures,
                code = err.code(),
                error = %err,
                delay_ms = delay.as_millis() as u64,
                "provider call failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
            jitter: Jitter::None,
        };
        let delays: Vec<u128> = (1..=6).map(|f| p.backoff(f, 0.5).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX, 0.5), Duration::from_secs(1));
        let full = RetryPolicy {
            jitter: Jitter::Full,
            ..p
        };
        assert_eq!(full.backoff(3, 0.5), Duration::from_millis(200));
        assert_eq!(full.backoff(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn jitter_is_spread_over_the_unit_interval() {
        struct Never;
        #[async_trait::async_trait]
        impl Provider for Never {
            fn info(&self) -> ProviderInfo {
                ProviderInfo {
                    name: "never".into(),
                    wire: "openai",
                }
            }
            async fn stream(&self, _: ChatRequest) -> Result<ChatStream, ProviderError> {
                Err(ProviderError::Cancelled)
            }
        }
        let r = Retry::new(Arc::new(Never), RetryPolicy::default());
        let draws: Vec<f64> = (0..1000).map(|_| r.unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let low = draws.iter().filter(|u| **u < 0.5).count();
        assert!((400..600).contains(&low), "{low}");
    }
}
