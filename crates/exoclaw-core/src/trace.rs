//! Traces and the usage ledger: every agent run is a trace, every LLM call
//! and tool call a span; every LLM call's tokens and cost also go to the
//! usage ledger that budgets are checked against.
//!
//! Money is integer micro-dollars (1 USD = 1_000_000) so sums are exact.

use crate::provider::Usage;
use crate::{AgentId, SessionId, TenantId, UnixMillis, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub id: String,
    pub tenant_id: TenantId,
    pub agent_id: Option<AgentId>,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// What ran: `chat`, `tool.invoke`, `compaction`, ...
    pub name: String,
    /// `running`, `ok`, `error`, `cancelled`, `interrupted` (the gateway
    /// stopped while it ran).
    pub status: String,
    pub error: Option<String>,
    pub started_at: UnixMillis,
    pub ended_at: Option<UnixMillis>,
    /// Totals over the trace's LLM spans.
    pub usage: Usage,
    pub cost_micros: i64,
    /// The gateway instance that ran it (internal: a restart marks the
    /// instance's runs left `running` as `interrupted`).
    #[serde(skip)]
    pub owner: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewTrace {
    pub tenant_id: TenantId,
    pub agent_id: Option<AgentId>,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub name: String,
    /// The gateway instance running it.
    pub owner: Option<String>,
}

/// The end of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEnd {
    pub status: String,
    pub error: Option<String>,
    pub usage: Usage,
    pub cost_micros: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    Llm,
    Tool,
    /// A run of another agent this run waited for or started (a
    /// delegation or a spawn); its attributes name the child trace.
    Agent,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Llm => "llm",
            SpanKind::Tool => "tool",
            SpanKind::Agent => "agent",
        }
    }
}

/// A finished span, written once when the call ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub id: String,
    pub trace_id: String,
    pub tenant_id: TenantId,
    pub kind: SpanKind,
    /// The model (LLM spans) or the tool name (tool spans).
    pub name: String,
    /// The provider for LLM spans.
    pub provider: Option<String>,
    /// `ok`, `error`, `denied`, `cancelled`.
    pub status: String,
    pub error: Option<String>,
    pub started_at: UnixMillis,
    pub latency_ms: i64,
    pub usage: Usage,
    pub cost_micros: i64,
    /// Extra detail (tool error code, stop reason, retry count); no secrets,
    /// no raw tool arguments.
    pub attributes: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewSpan {
    pub trace_id: String,
    pub tenant_id: TenantId,
    pub kind: SpanKind,
    pub name: String,
    pub provider: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub started_at: UnixMillis,
    pub latency_ms: i64,
    pub usage: Usage,
    pub cost_micros: i64,
    pub attributes: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    pub agent_id: Option<AgentId>,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// Only traces started before this (paging backwards).
    pub before: Option<UnixMillis>,
    /// With `before`: traces started at exactly `before` whose id is below
    /// this count too (the page's last row: no row is skipped when several
    /// started in one millisecond).
    pub before_id: Option<String>,
    /// At most this many, newest first; 0 = the store's default (50).
    pub limit: u32,
}

/// What a usage report groups each day's calls by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsageGroup {
    Model,
    Agent,
    User,
}

/// A usage report's range and grouping: calls at or after `since` and
/// before `until`, summed per UTC day and per key of `by`, optionally only
/// one user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageQuery {
    pub since: UnixMillis,
    pub until: UnixMillis,
    pub by: UsageGroup,
    pub user: Option<UserId>,
}

/// The calls of one UTC day and one key (`None`: calls without an agent or
/// user), summed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageBucket {
    /// The day's start (00:00 UTC), Unix milliseconds.
    pub day: UnixMillis,
    pub key: Option<String>,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micros: i64,
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// One LLM call in the usage ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageEntry {
    pub tenant_id: TenantId,
    pub provider: String,
    pub model: String,
    pub agent_id: Option<AgentId>,
    pub user_id: Option<UserId>,
    pub usage: Usage,
    pub cost_micros: i64,
}

/// One write of the trace and usage ports, fully formed by the caller (ids
/// and times set), for [`crate::store::TraceBatchStore::write_traces`]: a
/// write-behind queue fills these and commits many at once.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceWrite {
    /// Insert a started trace (as [`crate::store::TraceStore::create_trace`]
    /// would have, with this id and `started_at`).
    Start(Trace),
    /// Insert a span; skipped when its trace is not the span's tenant's.
    Span(Span),
    /// End a trace at `ended_at`; skipped when the trace is not the tenant's.
    Finish {
        tenant_id: TenantId,
        id: String,
        end: TraceEnd,
        ended_at: UnixMillis,
    },
    /// A usage ledger entry recorded at `at`.
    Usage { entry: UsageEntry, at: UnixMillis },
}

/// What a budget is kept for (always inside one tenant).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SpendScope {
    Model(String),
    Agent(AgentId),
    User(UserId),
    /// Every call of the tenant.
    Tenant,
}

/// What a budget limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetUnit {
    /// Cost in micro-dollars.
    Micros,
    /// Input plus output tokens (reported or estimated).
    Tokens,
}

/// One limit a reservation must fit in: the scope's ledger entries at or
/// after `since`, plus its live reservations, plus the new one, must not
/// pass `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetWindow {
    pub scope: SpendScope,
    pub since: UnixMillis,
    pub unit: BudgetUnit,
    pub limit: i64,
}

/// The worst-case cost of a call, held against its budgets until the call
/// is settled (or `expires_at` passes: a gateway that died mid-call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReservation {
    pub tenant_id: TenantId,
    pub model: String,
    pub agent_id: Option<AgentId>,
    pub user_id: Option<UserId>,
    pub cost_micros: i64,
    pub tokens: i64,
    pub at: UnixMillis,
    pub expires_at: UnixMillis,
}

/// The answer to a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// Held under this id until settled.
    Held(String),
    /// `windows[window]` has `used` (ledger plus live reservations) and the
    /// reservation does not fit; nothing was written.
    Refused { window: usize, used: i64 },
}
