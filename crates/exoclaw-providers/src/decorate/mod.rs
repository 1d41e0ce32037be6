//! Decorators around `Arc<dyn Provider>`: each is a `Provider` holding the
//! next one. [`ChainBuilder`] stacks them for one model alias:
//!
//! ```text
//! Fallback [ Retry(RateLimit(Timeouts(Budget(Estimate(provider))))) , ... ]
//! ```
//!
//! Estimate is innermost so a call whose provider reports no usage is
//! counted (and priced) like any other; Budget is next so every attempt
//! (retries, fallbacks) is reserved and recorded; Timeouts sits inside RateLimit so that waiting for our own
//! limiter does not eat into the provider's request timeout; Retry is
//! outside both so each attempt is rate limited and timed on its own.

mod budget;
pub mod estimate;
mod fallback;
mod rate_limit;
mod retry;
mod timeouts;

pub use budget::{
    Budget, BudgetConfig, BudgetLimits, BudgetLine, BudgetObserver, BudgetPolicy, BudgetReading,
    Budgets, DEFAULT_RESERVED_OUTPUT, SeenKeys, TenantBudgets,
};
pub use estimate::Estimate;
pub use fallback::{Fallback, Route};
pub use rate_limit::{ModelRate, RateLimit, RateLimiter, estimate_request_tokens};
pub use retry::{Jitter, Retry, RetryPolicy};
pub use timeouts::{TimeoutPolicy, Timeouts};

use exoclaw_core::provider::{ChatStream, Provider, ProviderError, StreamEvent, Usage, next};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Wait for a stream's first item. An error there comes back as `Err`, so
/// that retry and fallback can still act; otherwise the stream is returned
/// with the item put back in front.
pub(crate) async fn first_event(mut stream: ChatStream) -> Result<ChatStream, ProviderError> {
    match next(&mut stream).await {
        Some(Err(e)) => Err(e),
        Some(Ok(event)) => Ok(Box::pin(
            futures_util::stream::once(std::future::ready(Ok(event))).chain(stream),
        )),
        None => Ok(stream),
    }
}

/// Passes a stream through, keeping the merged usage, and calls `on_end`
/// once with it when the stream ends or is dropped.
pub(crate) struct UsageTap {
    inner: ChatStream,
    usage: Option<Usage>,
    on_end: Option<Box<dyn FnOnce(Option<Usage>) + Send>>,
}

impl UsageTap {
    pub(crate) fn new(
        inner: ChatStream,
        on_end: impl FnOnce(Option<Usage>) + Send + 'static,
    ) -> Self {
        Self {
            inner,
            usage: None,
            on_end: Some(Box::new(on_end)),
        }
    }

    fn end(&mut self) {
        if let Some(f) = self.on_end.take() {
            f(self.usage);
        }
    }
}

impl Stream for UsageTap {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(StreamEvent::Usage(u)))) => {
                let mut merged = self.usage.unwrap_or_default();
                exoclaw_core::provider::merge_usage(&mut merged, *u);
                self.usage = Some(merged);
            }
            Poll::Ready(None) => self.end(),
            _ => {}
        }
        polled
    }
}

impl Drop for UsageTap {
    fn drop(&mut self) {
        self.end();
    }
}

/// Stacks the decorators for one model alias.
#[derive(Clone)]
pub struct ChainBuilder {
    retry: RetryPolicy,
    timeouts: TimeoutPolicy,
    rate_limiter: Option<Arc<RateLimiter>>,
    budget: Option<Arc<BudgetPolicy>>,
}

impl Default for ChainBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainBuilder {
    /// Default retry and timeout policies, no rate limits, no budget (and so
    /// no usage ledger).
    pub fn new() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeouts: TimeoutPolicy::default(),
            rate_limiter: None,
            budget: None,
        }
    }

    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    pub fn timeouts(mut self, policy: TimeoutPolicy) -> Self {
        self.timeouts = policy;
        self
    }

    /// Share one limiter across every chain, so a model's buckets are shared
    /// by all aliases that route to it.
    pub fn rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Budgets to check and the ledger to record every call in.
    pub fn budget(mut self, policy: Arc<BudgetPolicy>) -> Self {
        self.budget = Some(policy);
        self
    }

    /// One route's stack: `Retry(RateLimit(Timeouts(Budget(Estimate(provider)))))`,
    /// leaving out the parts not configured.
    pub fn wrap(&self, provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        let mut p: Arc<dyn Provider> = Arc::new(Estimate::new(provider));
        if let Some(policy) = &self.budget {
            p = Arc::new(Budget::new(p, policy.clone()));
        }
        p = Arc::new(Timeouts::new(p, self.timeouts));
        if let Some(limiter) = &self.rate_limiter {
            p = Arc::new(RateLimit::new(p, limiter.clone()));
        }
        Arc::new(Retry::new(p, self.retry.clone()))
    }

    /// The provider for `alias`: a [`Fallback`] over the routes in order,
    /// each wrapped by [`ChainBuilder::wrap`]. Calls through it may use any
    /// model name; each route substitutes its own.
    pub fn build(
        &self,
        alias: &str,
        routes: impl IntoIterator<Item = (Arc<dyn Provider>, String)>,
    ) -> Arc<Fallback> {
        let routes = routes
            .into_iter()
            .map(|(provider, model)| Route {
                provider: self.wrap(provider),
                model,
            })
            .collect();
        Arc::new(Fallback::new(alias, routes))
    }
}
