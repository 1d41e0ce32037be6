//! [`RateLimit`]: our own per-model requests-per-minute and tokens-per-minute
//! token buckets, so we slow down before the vendor answers 429.
//!
//! A call reserves one request and its estimated tokens (prompt size / 4
//! plus `max_tokens` when set) before it starts, waiting for the buckets up
//! to a bound and refusing with `LocalRateLimit` beyond it. When the call
//! ends, the token bucket is corrected by the usage the provider reported.
//! Buckets are per (provider, model) and shared through one [`RateLimiter`].

use super::UsageTap;
use crate::http::estimate_tokens;
use exoclaw_core::provider::{
    ChatRequest, ChatStream, ContentPart, Provider, ProviderError, ProviderInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Limits for one model; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRate {
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
}

struct Bucket {
    capacity: f64,
    per_sec: f64,
    level: f64,
    updated: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            per_sec: capacity / 60.0,
            level: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_sec).min(self.capacity);
        self.updated = now;
    }

    /// How long until `amount` is available.
    fn wait_for(&self, amount: f64) -> Duration {
        if self.level >= amount {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((amount - self.level) / self.per_sec)
        }
    }
}

#[derive(Default)]
struct Buckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// The shared limiter: limits per model name (`"*"` for every model without
/// its own entry) and the buckets.
pub struct RateLimiter {
    limits: HashMap<String, ModelRate>,
    max_wait: Duration,
    buckets: Mutex<HashMap<(String, String), Buckets>>,
}

/// What a call reserved, for the correction at its end.
struct Reservation {
    key: (String, String),
    tokens: f64,
}

impl RateLimiter {
    /// `max_wait` bounds how long a call waits for capacity; zero refuses at
    /// once when a bucket is empty.
    pub fn new(limits: HashMap<String, ModelRate>, max_wait: Duration) -> Self {
        Self {
            limits,
            max_wait,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, model: &str) -> Option<ModelRate> {
        self.limits
            .get(model)
            .or_else(|| self.limits.get("*"))
            .copied()
            .filter(|l| l.rpm.is_some() || l.tpm.is_some())
    }

    /// Reserve a request and `estimate` tokens, waiting up to `max_wait`.
    async fn acquire(
        &self,
        provider: &str,
        model: &str,
        estimate: u64,
    ) -> Result<Option<Reservation>, ProviderError> {
        let Some(limit) = self.limit(model) else {
            return Ok(None);
        };
        let key = (provider.to_owned(), model.to_owned());
        let now = Instant::now();
        let (wait, tokens) = {
            let mut all = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            let b = all.entry(key.clone()).or_default();
            let requests = limit
                .rpm
                .map(|rpm| b.requests.get_or_insert_with(|| Bucket::new(rpm, now)));
            let mut wait = Duration::ZERO;
            if let Some(r) = requests {
                r.refill(now);
                wait = wait.max(r.wait_for(1.0));
            }
            let mut tokens = 0.0;
            if let Some(tpm) = limit.tpm {
                let t = b.tokens.get_or_insert_with(|| Bucket::new(tpm, now));
                t.refill(now);
                // A call larger than the whole bucket waits for a full one.
                tokens = (estimate as f64).min(t.capacity);
                wait = wait.max(t.wait_for(tokens));
            }
            if wait > self.max_wait {
                return Err(ProviderError::LocalRateLimit(format!(
                    "model {model} on {provider} ({}); capacity frees up in {:.1}s",
                    describe(limit),
                    wait.as_secs_f64()
                )));
            }
            if let Some(r) = &mut b.requests {
                r.level -= 1.0;
            }
            if let Some(t) = &mut b.tokens {
                t.level -= tokens;
            }
            (wait, tokens)
        };
        if !wait.is_zero() {
            tracing::debug!(
                provider,
                model,
                wait_ms = wait.as_millis() as u64,
                "waiting for the local rate limit"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(Some(Reservation { key, tokens }))
    }

    /// Replace a reservation's estimate by what was used.
    fn correct(&self, reservation: &Reservation, actual: f64) {
        let mut all = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = all
            .get_mut(&reservation.key)
            .and_then(|b| b.tokens.as_mut())
        {
            t.refill(Instant::now());
            t.level = (t.level + reservation.tokens - actual).min(t.capacity);
        }
    }
}

fn describe(limit: ModelRate) -> String {
    let mut parts = Vec::new();
    if let Some(rpm) = limit.rpm {
        parts.push(format!("{rpm} requests/min"));
    }
    if let Some(tpm) = limit.tpm {
        parts.push(format!("{tpm} tokens/min"));
    }
    parts.join(", ")
}

/// The tokens a request is expected to use: its text at ~4 characters per
/// token, plus `max_tokens` when set.
pub fn estimate_request_tokens(request: &ChatRequest) -> u64 {
    let mut chars = request.system.as_ref().map_or(0, String::len);
    for message in request.messages.iter() {
        for part in &message.content {
            chars += match part {
                ContentPart::Text { text } => text.len(),
                ContentPart::ToolCall(c) => c.name.len() + c.arguments.to_string().len(),
                ContentPart::ToolResult { content, .. } => content.len(),
            };
        }
    }
    chars += exoclaw_core::provider::tools_chars(&request.tools);
    estimate_tokens(chars) + u64::from(request.max_tokens.unwrap_or(0))
}

pub struct RateLimit {
    inner: Arc<dyn Provider>,
    limiter: Arc<RateLimiter>,
}

impl RateLimit {
    pub fn new(inner: Arc<dyn Provider>, limiter: Arc<RateLimiter>) -> Self {
        Self { inner, limiter }
    }
}

#[async_trait::async_trait]
impl Provider for RateLimit {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        let provider = self.inner.info().name;
        let estimate = estimate_request_tokens(&request);
        let Some(reservation) = self
            .limiter
            .acquire(&provider, &request.model, estimate)
            .await?
        else {
            return self.inner.stream(request).await;
        };
        match self.inner.stream(request).await {
            Ok(stream) => {
                let limiter = self.limiter.clone();
                Ok(Box::pin(UsageTap::new(stream, move |usage| {
                    if let Some(u) = usage {
                        let used = u.input_tokens
                            + u.output_tokens
                            + u.cache_read_tokens
                            + u.cache_write_tokens;
                        limiter.correct(&reservation, used as f64);
                    }
                })))
            }
            Err(e) => {
                // Nothing was generated: give the tokens back (the request
                // itself still counts).
                self.limiter.correct(&reservation, 0.0);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buckets_refill_over_time() {
        let limits = HashMap::from([(
            "m".to_owned(),
            ModelRate {
                rpm: Some(2),
                tpm: Some(1000),
            },
        )]);
        let limiter = RateLimiter::new(limits, Duration::ZERO);
        assert!(limiter.acquire("p", "m", 10).await.unwrap().is_some());
        assert!(limiter.acquire("p", "m", 10).await.unwrap().is_some());
        let err = limiter.acquire("p", "m", 10).await.err().unwrap();
        assert!(
            matches!(&err, ProviderError::LocalRateLimit(m) if m.contains("2 requests/min")),
            "{err}"
        );
        // other models and other providers are not limited by these buckets
        assert!(limiter.acquire("p", "other", 10).await.unwrap().is_none());
        assert!(limiter.acquire("q", "m", 10).await.unwrap().is_some());
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(limiter.acquire("p", "m", 10).await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_corrected_by_usage() {
        let limits = HashMap::from([(
            "*".to_owned(),
            ModelRate {
                rpm: None,
                tpm: Some(1000),
            },
        )]);
        let limiter = RateLimiter::new(limits, Duration::ZERO);
        let r = limiter.acquire("p", "m", 900).await.unwrap().unwrap();
        assert!(
            limiter.acquire("p", "m", 200).await.is_err(),
            "900 of 1000 reserved"
        );
        limiter.correct(&r, 100.0); // it used only 100
        assert!(limiter.acquire("p", "m", 800).await.unwrap().is_some());
        // a request bigger than the bucket waits for a full bucket, not forever
        let waiting = RateLimiter::new(
            HashMap::from([(
                "m".to_owned(),
                ModelRate {
                    rpm: None,
                    tpm: Some(60),
                },
            )]),
            Duration::from_secs(120),
        );
        let start = Instant::now();
        assert!(waiting.acquire("p", "m", 10_000).await.unwrap().is_some());
        assert!(waiting.acquire("p", "m", 30).await.unwrap().is_some());
        assert_eq!(start.elapsed().as_secs(), 30, "waited for 30 tokens at 1/s");
    }

    #[test]
    fn estimates() {
        let mut req = ChatRequest::new(
            "m",
            vec![exoclaw_core::provider::ChatMessage::user("x".repeat(400))],
        );
        assert_eq!(estimate_request_tokens(&req), 100);
        req.max_tokens = Some(50);
        req.system = Some("y".repeat(40));
        assert_eq!(estimate_request_tokens(&req), 160);
    }
}
