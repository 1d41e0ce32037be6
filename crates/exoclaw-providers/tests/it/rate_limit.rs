//! Our own per-model RPM limit in front of the fake: refusal beyond the
//! wait bound, waiting within it (paused time).

use crate::support::{openai, request};
use exoclaw_core::provider::{Provider, ProviderError};
use exoclaw_providers::fake::{FakeProvider, Reply};
use exoclaw_providers::{ChainBuilder, ModelRate, RateLimit, RateLimiter};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn limiter(rpm: u32, max_wait: Duration) -> Arc<RateLimiter> {
    Arc::new(RateLimiter::new(
        HashMap::from([(
            "gpt-4o".to_owned(),
            ModelRate {
                rpm: Some(rpm),
                tpm: None,
            },
        )]),
        max_wait,
    ))
}

#[tokio::test]
async fn rpm_limit_refuses_beyond_the_wait_bound() {
    let fake = FakeProvider::start().await.unwrap();
    let chain = ChainBuilder::new().rate_limiter(limiter(2, Duration::ZERO));
    let provider = chain.build("fast", [(openai(&fake), "gpt-4o".to_owned())]);
    provider.complete(request("1")).await.unwrap();
    provider.complete(request("2")).await.unwrap();
    let err = provider.complete(request("3")).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::LocalRateLimit(m) if m.contains("gpt-4o") && m.contains("2 requests/min")),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(fake.requests().len(), 2, "the third never left");
    // a model without limits is not affected
    let other = chain.build("other", [(openai(&fake), "gpt-4o-mini".to_owned())]);
    other.complete(request("4")).await.unwrap();
}

// Paused time with the decorator alone: a chain's Timeouts would fire while
// the paused clock jumps ahead during socket waits.
#[tokio::test(start_paused = true)]
async fn rpm_limit_waits_within_the_bound() {
    let (fake, _) = FakeProvider::start_in_thread().unwrap();
    fake.push_all([Reply::text("a"), Reply::text("b"), Reply::text("c")]);
    let provider = RateLimit::new(openai(&fake), limiter(2, Duration::from_secs(60)));
    let mut req = request("x");
    req.model = "gpt-4o".into();
    let start = Instant::now();
    provider.complete(req.clone()).await.unwrap();
    provider.complete(req.clone()).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(provider.complete(req).await.unwrap().text, "c");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "one request frees up every 30s: {waited:?}"
    );
}
