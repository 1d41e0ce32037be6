//! `GET /metrics`: Prometheus metrics (OpenMetrics text), authenticated like
//! every route. Names carry the `exoclaw_` prefix.
//!
//! HTTP metrics come from the request observer; LLM and tool metrics from
//! the spans the agent loop records (a [`TraceStore`] decorator, so every
//! call is counted exactly once, whatever started it); budget usage ratios
//! are computed from the usage ledger when scraped.

use exoclaw_core::provider::Usage;
use exoclaw_core::store::{StoreResult, TraceStore, UsageStore};
use exoclaw_core::trace::{
    NewSpan, NewTrace, Span, SpanKind, SpendScope, Trace, TraceEnd, TraceFilter,
};
use exoclaw_core::{AgentId, TenantId, UserId};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmLabels {
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmCallLabels {
    pub provider: String,
    pub model: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub provider: String,
    pub model: String,
    /// `input`, `output`, `cache_read`, `cache_write`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    pub tool: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DelegationLabels {
    /// `delegate` or `spawn`.
    pub kind: String,
    /// `done`, `failed`, `cancelled`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `ip`, `user`, `tool`.
    pub scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnLimitLabels {
    /// `total`, `per_ip`, `unauthenticated`, `unauthenticated_per_ip`;
    /// refusals only: `ws_per_user`, `ws_per_ip`, `requests_per_tenant`,
    /// `runs_per_tenant`, `write_stall` (a client that stopped reading).
    pub limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    /// The configured channel name.
    pub channel: String,
    /// `inbound`, `duplicate`, `sent`, `failed`, `dead` (for
    /// `channel_messages`); `queued`, `restarts`, `up` (for
    /// `channel_state`).
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnStateLabels {
    /// `authenticated`, `unauthenticated`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// `model`, `agent`, `user`.
    pub scope: String,
    pub name: String,
    /// `daily`, `monthly`.
    pub window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabels {
    /// `main`, `subagent`, `delegate`, `cron`.
    pub lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneRefusalLabels {
    pub lane: String,
    /// `timeout`, `cancelled`.
    pub reason: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<RouteLabels, Histogram>,
    pub ws_connections: Gauge,
    pub connections: Family<ConnStateLabels, Gauge>,
    /// Messages of each channel since start, set at each scrape.
    pub channel_messages: Family<ChannelLabels, Gauge>,
    /// Each channel's queue depth, receiver restarts and whether it runs.
    pub channel_state: Family<ChannelLabels, Gauge>,
    pub connections_refused: Family<ConnLimitLabels, Counter>,
    pub connections_displaced: Family<ConnLimitLabels, Counter>,
    pub runs_active: Gauge,
    /// The history window cache (`agents.window_cache_mib`), set at each
    /// scrape: sessions held and their estimated bytes.
    pub window_cache_sessions: Gauge,
    pub window_cache_bytes: Gauge,
    pub llm_calls: Family<LlmCallLabels, Counter>,
    pub llm_tokens: Family<TokenLabels, Counter>,
    /// The part of `llm_tokens` the gateway estimated (the provider
    /// reported no usage).
    pub llm_tokens_estimated: Family<TokenLabels, Counter>,
    pub llm_cache_hits: Family<LlmLabels, Counter>,
    pub llm_cost: Family<LlmLabels, Counter<f64, AtomicU64>>,
    pub llm_latency: Family<LlmLabels, Histogram>,
    pub tool_calls: Family<ToolLabels, Counter>,
    pub tool_denials: Family<DenialLabels, Counter>,
    pub delegations: Family<DelegationLabels, Counter>,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub budget_usage: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    pub lane_running: Family<LaneLabels, Gauge>,
    pub lane_queued: Family<LaneLabels, Gauge>,
    pub lane_wait: Family<LaneLabels, Histogram>,
    pub lane_refusals: Family<LaneRefusalLabels, Counter>,
    #[cfg(feature = "otel")]
    pub telemetry: crate::telemetry::ExportCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("exoclaw");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        let ws_connections = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open WebSocket connections",
            ws_connections.clone(),
        );
        let connections = Family::<ConnStateLabels, Gauge>::default();
        registry.register(
            "connections",
            "Open client connections by state (authenticated or not yet)",
            connections.clone(),
        );
        let channel_messages = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "channel_messages",
            "Messages of each channel since start: inbound, duplicate, sent, failed, dead",
            channel_messages.clone(),
        );
        let channel_state = Family::<ChannelLabels, Gauge>::default();
        registry.register(
            "channel_state",
            "Each channel's outbox queue depth (queued), receiver restarts and up (1 running)",
            channel_state.clone(),
        );
        let connections_refused = Family::<ConnLimitLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections or requests refused (or closed) because a limit was reached",
            connections_refused.clone(),
        );
        let connections_displaced = Family::<ConnLimitLabels, Counter>::default();
        registry.register(
            "connections_displaced",
            "Unauthenticated connections closed to make room under a limit",
            connections_displaced.clone(),
        );
        let window_cache_sessions = Gauge::default();
        registry.register(
            "window_cache_sessions",
            "Sessions whose history window the cache holds between turns",
            window_cache_sessions.clone(),
        );
        let window_cache_bytes = Gauge::default();
        registry.register(
            "window_cache_bytes",
            "Estimated bytes of the history windows the cache holds (bounded by agents.window_cache_mib, dropped after agents.window_cache_idle_sec idle)",
            window_cache_bytes.clone(),
        );
        let runs_active = Gauge::default();
        registry.register(
            "agent_runs_active",
            "Agent runs in progress (active sessions)",
            runs_active.clone(),
        );
        let llm_calls = Family::<LlmCallLabels, Counter>::default();
        registry.register(
            "llm_calls",
            "LLM calls by provider, model and status",
            llm_calls.clone(),
        );
        let llm_tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "llm_tokens",
            "LLM tokens by provider, model and kind",
            llm_tokens.clone(),
        );
        let llm_tokens_estimated = Family::<TokenLabels, Counter>::default();
        registry.register(
            "llm_tokens_estimated",
            "LLM tokens the gateway estimated because the provider reported no usage (also counted in llm_tokens)",
            llm_tokens_estimated.clone(),
        );
        let llm_cache_hits = Family::<LlmLabels, Counter>::default();
        registry.register(
            "llm_cache_hits",
            "LLM calls that read from the prompt cache",
            llm_cache_hits.clone(),
        );
        let llm_cost = Family::<LlmLabels, Counter<f64, AtomicU64>>::default();
        registry.register("llm_cost_usd", "LLM spend in US dollars", llm_cost.clone());
        let llm_latency = Family::<LlmLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 14))
        });
        registry.register(
            "llm_call_duration_seconds",
            "LLM call latency",
            llm_latency.clone(),
        );
        let tool_calls = Family::<ToolLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by tool and status",
            tool_calls.clone(),
        );
        let tool_denials = Family::<DenialLabels, Counter>::default();
        registry.register(
            "tool_denials",
            "Tool calls refused by policy, by tool and code",
            tool_denials.clone(),
        );
        let delegations = Family::<DelegationLabels, Counter>::default();
        registry.register(
            "delegations",
            "Delegations and subagent spawns that ended, by kind and status",
            delegations.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limit_rejections",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        let budget_usage = Family::<BudgetLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "budget_usage_ratio",
            "Spend over limit per budget (1 = spent)",
            budget_usage.clone(),
        );
        let lane_running = Family::<LaneLabels, Gauge>::default();
        registry.register(
            "lane_running",
            "Agent runs holding a slot of the lane scheduler, by lane",
            lane_running.clone(),
        );
        let lane_queued = Family::<LaneLabels, Gauge>::default();
        registry.register(
            "lane_queued",
            "Agent runs waiting for their session or lane slot, by lane",
            lane_queued.clone(),
        );
        // Up to the longest queue timeout (an hour) in factors of four.
        let lane_wait = Family::<LaneLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 12))
        });
        registry.register(
            "lane_wait_seconds",
            "Time an agent run waited for its slots before it was admitted, by lane",
            lane_wait.clone(),
        );
        let lane_refusals = Family::<LaneRefusalLabels, Counter>::default();
        registry.register(
            "lane_refusals",
            "Agent runs refused a slot, by lane and reason (timeout, cancelled)",
            lane_refusals.clone(),
        );
        #[cfg(feature = "otel")]
        let telemetry = {
            let t = crate::telemetry::ExportCounters::default();
            registry.register(
                "telemetry_spans_exported",
                "Spans accepted by the OpenTelemetry collector",
                t.exported.clone(),
            );
            registry.register(
                "telemetry_spans_dropped",
                "Spans dropped (queue full, collector down or refusing)",
                t.dropped.clone(),
            );
            t
        };
        let info = Family::<Vec<(String, String)>, Gauge>::default();
        registry.register("build_info", "The running exoclaw", info.clone());
        info.get_or_create(&vec![
            ("version".to_owned(), crate::version::VERSION.to_owned()),
            ("commit".to_owned(), crate::version::COMMIT.to_owned()),
        ])
        .set(1);
        Self {
            registry,
            http_requests,
            http_duration,
            ws_connections,
            connections,
            channel_messages,
            channel_state,
            connections_refused,
            connections_displaced,
            runs_active,
            window_cache_sessions,
            window_cache_bytes,
            llm_calls,
            llm_tokens,
            llm_tokens_estimated,
            llm_cache_hits,
            llm_cost,
            llm_latency,
            tool_calls,
            tool_denials,
            delegations,
            rate_limited,
            budget_usage,
            lane_running,
            lane_queued,
            lane_wait,
            lane_refusals,
            #[cfg(feature = "otel")]
            telemetry,
        }
    }

    /// Set one channel's `channel_messages` and `channel_state` (at a
    /// scrape, from the channel's status).
    pub fn set_channel(&self, channel: &str, messages: &[(&str, i64)], state: &[(&str, i64)]) {
        for (family, values) in [
            (&self.channel_messages, messages),
            (&self.channel_state, state),
        ] {
            for (what, v) in values {
                family
                    .get_or_create(&ChannelLabels {
                        channel: channel.to_owned(),
                        what: (*what).to_owned(),
                    })
                    .set(*v);
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }

    fn record_span(&self, span: &NewSpan) {
        match span.kind {
            SpanKind::Llm => {
                let provider = span.provider.clone().unwrap_or_default();
                let model = span.name.clone();
                let l = LlmLabels {
                    provider: provider.clone(),
                    model: model.clone(),
                };
                self.llm_calls
                    .get_or_create(&LlmCallLabels {
                        provider: provider.clone(),
                        model: model.clone(),
                        status: span.status.clone(),
                    })
                    .inc();
                self.record_tokens(&provider, &model, &span.usage);
                if span.usage.cache_read_tokens > 0 {
                    self.llm_cache_hits.get_or_create(&l).inc();
                }
                #[allow(clippy::cast_precision_loss, reason = "dollars for a dashboard")]
                self.llm_cost
                    .get_or_create(&l)
                    .inc_by(span.cost_micros.max(0) as f64 / 1e6);
                #[allow(clippy::cast_precision_loss, reason = "seconds for a histogram")]
                self.llm_latency
                    .get_or_create(&l)
                    .observe(span.latency_ms.max(0) as f64 / 1000.0);
            }
            SpanKind::Tool => {
                self.tool_calls
                    .get_or_create(&ToolLabels {
                        tool: span.name.clone(),
                        status: span.status.clone(),
                    })
                    .inc();
                if span.error.as_deref() == Some("tool.rate_limited") {
                    self.rate_limited
                        .get_or_create(&LimitLabels {
                            scope: "tool".to_owned(),
                        })
                        .inc();
                }
                if span.status == "denied" {
                    let code = span.error.clone().unwrap_or_default();
                    self.tool_denials
                        .get_or_create(&DenialLabels {
                            tool: span.name.clone(),
                            code,
                        })
                        .inc();
                }
            }
            SpanKind::Agent => {
                let kind = span
                    .attributes
                    .get("kind")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("delegate");
                self.delegations
                    .get_or_create(&DelegationLabels {
                        kind: if kind == "spawn" { "spawn" } else { "delegate" }.to_owned(),
                        status: span.status.clone(),
                    })
                    .inc();
            }
        }
    }

    fn record_tokens(&self, provider: &str, model: &str, u: &Usage) {
        for (kind, n) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cache_read", u.cache_read_tokens),
            ("cache_write", u.cache_write_tokens),
        ] {
            if n > 0 {
                let labels = TokenLabels {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    kind: kind.to_owned(),
                };
                if u.estimated {
                    self.llm_tokens_estimated.get_or_create(&labels).inc_by(n);
                }
                self.llm_tokens.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// Refresh the budget gauges from the ledger (on scrape).
    pub async fn refresh_budgets(
        &self,
        budgets: &exoclaw_providers::BudgetConfig,
        usage: &dyn UsageStore,
        now_ms: i64,
    ) {
        let tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
        let day = exoclaw_providers::calendar::day_start(now_ms);
        let month = exoclaw_providers::calendar::month_start(now_ms);
        let sections = [
            ("model", &budgets.models),
            ("agent", &budgets.agents),
            ("user", &budgets.users),
        ];
        for (scope, entries) in sections {
            for (name, limits) in entries.iter().filter(|(n, _)| n.as_str() != "*") {
                let key = match scope {
                    "model" => SpendScope::Model(name.clone()),
                    "agent" => SpendScope::Agent(AgentId::new(name.clone())),
                    _ => SpendScope::User(UserId::new(name.clone())),
                };
                for (window, since, limit) in [
                    ("daily", day, limits.daily_usd),
                    ("monthly", month, limits.monthly_usd),
                ] {
                    let Some(limit) = limit.filter(|l| *l > 0.0) else {
                        continue;
                    };
                    match usage.spend_since(&tenant, &key, since).await {
                        #[allow(clippy::cast_precision_loss, reason = "a ratio for a dashboard")]
                        Ok(spent) => {
                            self.budget_usage
                                .get_or_create(&BudgetLabels {
                                    scope: scope.to_owned(),
                                    name: name.clone(),
                                    window: window.to_owned(),
                                })
                                .set(spent as f64 / 1e6 / limit);
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot read budget usage"),
                    }
                }
            }
        }
    }
}

/// The trace store with metrics: every span recorded is also counted.
pub struct MeteredTraces {
    pub inner: Arc<dyn TraceStore>,
    pub metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl TraceStore for MeteredTraces {
    async fn create_trace(&self, trace: &NewTrace) -> StoreResult<Trace> {
        self.inner.create_trace(trace).await
    }
    async fn finish_trace(&self, tenant: &TenantId, id: &str, end: &TraceEnd) -> StoreResult<()> {
        self.inner.finish_trace(tenant, id, end).await
    }
    async fn add_span(&self, span: &NewSpan) -> StoreResult<Span> {
        self.metrics.record_span(span);
        self.inner.add_span(span).await
    }
    async fn list_traces(
        &self,
        tenant: &TenantId,
        filter: &TraceFilter,
    ) -> StoreResult<Vec<Trace>> {
        self.inner.list_traces(tenant, filter).await
    }
    async fn get_trace(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<(Trace, Vec<Span>)>> {
        self.inner.get_trace(tenant, id).await
    }
}
