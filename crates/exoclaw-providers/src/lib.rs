//! exoclaw's LLM providers: the Anthropic Messages API and OpenAI-compatible
//! chat completions, both streaming over SSE, plus the decorators that make
//! them dependable (retry, fallback, rate limits, timeouts, budgets) and the
//! price table budgets are counted with.
//!
//! Everything implements [`exoclaw_core::provider::Provider`]. Concrete
//! providers take an [`exoclaw_egress::EgressClient`] from the caller (the
//! binary decides which origins it reaches: the configured base URLs, a
//! private one only when configured explicitly) and send every call through
//! it, so a refused target is [`ProviderError::EgressRefused`] before any
//! connection and a redirect is never followed. They never read the
//! environment; keys are [`exoclaw_core::Secret`]s, never logged and never
//! put into errors.
//!
//! [`ProviderError::EgressRefused`]: exoclaw_core::provider::ProviderError::EgressRefused
//!
//! The `testing` feature adds the `fake` module, an HTTP server that speaks both wire
//! formats from a script, with faults.

pub mod anthropic;
pub mod calendar;
pub mod decorate;
pub mod http;
pub mod openai;
pub mod preset;
pub mod pricing;
pub mod sse;

#[cfg(feature = "testing")]
pub mod fake;

pub use anthropic::AnthropicProvider;
pub use decorate::{
    Budget, BudgetConfig, BudgetLimits, BudgetLine, BudgetObserver, BudgetPolicy, BudgetReading,
    Budgets, ChainBuilder, DEFAULT_RESERVED_OUTPUT, Estimate, Fallback, Jitter, ModelRate,
    RateLimit, RateLimiter, Retry, RetryPolicy, Route, SeenKeys, TenantBudgets, TimeoutPolicy,
    Timeouts,
};
pub use openai::{Compat, MaxTokensField, OpenAiCompatProvider, ToolStreaming};
pub use preset::{PRESETS, Preset, Wire, detect_default, preset};
pub use pricing::{ConfigProblem, ModelPrice, PriceConfig, PriceTable, cost_micros};

/// A provider that cannot be built as configured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid provider base URL {0}")]
    BaseUrl(String),
    #[error("provider {provider} needs an API key: set {env}")]
    MissingKey { provider: String, env: &'static str },
    #[error("provider {provider} needs a base URL: set {env} or providers.{provider}.base_url")]
    MissingBaseUrl { provider: String, env: &'static str },
}
