//! `/v1/sessions` and `/v1/traces`: conversation history and run traces.
//! Owners and admins see their tenant's; everyone else only their own.

use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::model::{Message, Session, SessionFilter};
use exoclaw_core::provider::Usage;
use exoclaw_core::trace::{Span, SpanKind, Trace, TraceFilter};
use exoclaw_core::{AgentId, MessageId, SessionId, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// A conversation: one per agent, user and channel peer.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    #[schema(value_type = String)]
    pub id: SessionId,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(value_type = String)]
    pub agent_id: AgentId,
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// `api`, `ws`, `cli`, or a channel's name.
    pub channel: String,
    /// The peer inside the channel (the OpenAI `user` field, a chat id, ...).
    pub peer: String,
    pub title: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> Self {
        Self {
            id: s.id,
            tenant_id: s.tenant_id,
            agent_id: s.agent_id,
            user_id: s.user_id,
            channel: s.channel,
            peer: s.peer,
            title: s.title,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
    /// With `limit`, when more follow: pass it back as `cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl SessionList {
    pub fn of(sessions: Vec<Session>) -> Self {
        Self {
            sessions: sessions.into_iter().map(SessionView::from).collect(),
            next_cursor: None,
        }
    }
}

/// One message of a session.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    #[schema(value_type = String)]
    pub id: MessageId,
    /// 1, 2, 3, ... inside the session.
    pub seq: i64,
    /// `system`, `user`, `assistant`, `tool` or `summary`.
    pub role: String,
    /// Text, tool calls or tool results.
    pub content: Value,
    pub meta: Value,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// One message with its tenant and session (the WebSocket's
/// `sessions.history`).
#[derive(Serialize)]
pub struct StoredMessage {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub session_id: SessionId,
    pub seq: i64,
    pub role: String,
    pub content: Value,
    pub meta: Value,
    pub created_at: i64,
}

impl From<Message> for StoredMessage {
    fn from(m: Message) -> Self {
        Self {
            id: m.id,
            tenant_id: m.tenant_id,
            session_id: m.session_id,
            seq: m.seq,
            role: m.role,
            content: m.content,
            meta: m.meta,
            created_at: m.created_at,
        }
    }
}

/// A session and a page of its messages, oldest first.
#[derive(Serialize, ToSchema)]
pub struct SessionMessages {
    pub session: SessionView,
    pub messages: Vec<MessageView>,
    /// Pass as `after` for the next page; `null` when this page holds the
    /// newest message.
    pub next_after: Option<i64>,
}

/// Token counts.
#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

impl From<Usage> for UsageView {
    fn from(u: Usage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_write_tokens: u.cache_write_tokens,
        }
    }
}

/// One run of an agent (or a tool invocation).
#[derive(Serialize, ToSchema)]
pub struct TraceView {
    pub id: String,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<AgentId>,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<String>)]
    pub session_id: Option<SessionId>,
    /// What ran: `chat`, `tool.invoke`, `compaction`, ...
    pub name: String,
    /// `running`, `ok`, `error` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// Totals over the trace's LLM calls.
    pub usage: UsageView,
    /// Micro-dollars.
    pub cost_micros: i64,
}

impl From<Trace> for TraceView {
    fn from(t: Trace) -> Self {
        Self {
            id: t.id,
            tenant_id: t.tenant_id,
            agent_id: t.agent_id,
            user_id: t.user_id,
            session_id: t.session_id,
            name: t.name,
            status: t.status,
            error: t.error,
            started_at: t.started_at,
            ended_at: t.ended_at,
            usage: t.usage.into(),
            cost_micros: t.cost_micros,
        }
    }
}

/// One LLM call or tool call of a trace.
#[derive(Serialize, ToSchema)]
pub struct SpanView {
    pub id: String,
    pub trace_id: String,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(schema_with = super::schema::span_kind)]
    pub kind: SpanKind,
    /// The model (LLM calls) or the tool (tool calls).
    pub name: String,
    /// The provider of an LLM call.
    pub provider: Option<String>,
    /// `ok`, `error`, `denied` or `cancelled`.
    pub status: String,
    pub error: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub latency_ms: i64,
    pub usage: UsageView,
    /// Micro-dollars.
    pub cost_micros: i64,
    /// Detail (tool error code, stop reason, retries); no secrets.
    pub attributes: Value,
}

impl From<Span> for SpanView {
    fn from(s: Span) -> Self {
        Self {
            id: s.id,
            trace_id: s.trace_id,
            tenant_id: s.tenant_id,
            kind: s.kind,
            name: s.name,
            provider: s.provider,
            status: s.status,
            error: s.error,
            started_at: s.started_at,
            latency_ms: s.latency_ms,
            usage: s.usage.into(),
            cost_micros: s.cost_micros,
            attributes: s.attributes,
        }
    }
}

/// A page of traces, newest first.
#[derive(Serialize, ToSchema)]
pub struct TraceList {
    pub traces: Vec<TraceView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A trace and its spans.
#[derive(Serialize, ToSchema)]
pub struct TraceDetail {
    pub trace: TraceView,
    pub spans: Vec<SpanView>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Only this agent's.
    agent: Option<String>,
    /// Only sessions whose title or peer contains this (any case).
    q: Option<String>,
    /// At most this many, newest first (default: all; at most 1000 when
    /// given).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TracesQuery {
    /// Only this agent's.
    agent: Option<String>,
    /// Only this session's.
    session: Option<String>,
    /// Only traces started before this (Unix milliseconds).
    before: Option<i64>,
    /// The `next_cursor` of the previous page (paging to older traces; wins
    /// over `before`).
    cursor: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// Sessions: the caller's own, or the tenant's for owners and admins.
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(SessionsQuery),
    responses((status = 200, description = "The sessions", body = SessionList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<SessionsQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let after = match q.cursor.as_deref() {
        Some(c) => Some(
            c.split_once(':')
                .and_then(|(at, id)| Some((at.parse().ok()?, SessionId::new(id))))
                .ok_or_else(|| ApiError::invalid("cursor: pass back a next_cursor"))?,
        ),
        None => None,
    };
    let limit = q.limit.map(|n| n.clamp(1, 1000));
    let filter = SessionFilter {
        agent_id: q.agent.map(AgentId::new),
        user_id: (!who.sees_all_users()).then(|| who.user.clone()),
        text: q.q.filter(|t| !t.trim().is_empty()),
        after,
        // One more than the page: whether another page follows.
        limit: limit.map(|n| n + 1),
    };
    let mut sessions = state.store.list_sessions(&who.tenant, &filter).await?;
    let next_cursor = match limit {
        Some(n) if sessions.len() > n as usize => {
            sessions.truncate(n as usize);
            sessions
                .last()
                .map(|s| format!("{}:{}", s.updated_at, s.id))
        }
        _ => None,
    };
    let mut list = SessionList::of(sessions);
    list.next_cursor = next_cursor;
    Ok(Json(list))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages after this `seq` (the previous page's `next_after`).
    after: Option<i64>,
    /// At most this many (default 500, at most 1000).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// The session if `who` may see it; otherwise "not found" (existence does
/// not leak).
async fn visible_session(state: &AppState, who: &Principal, id: &str) -> Result<Session, ApiError> {
    let session = state
        .store
        .get_session(&who.tenant, &SessionId::new(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !who.sees_all_users() && session.user_id != who.user {
        return Err(ApiError::not_found());
    }
    Ok(session)
}

/// Messages a page holds unless `limit` says otherwise, and at most.
const MESSAGE_PAGE: u32 = 500;
const MAX_MESSAGE_PAGE: u32 = 1000;

/// A session's messages.
#[utoipa::path(get, path = "/v1/sessions/{id}/messages", tag = "sessions",
    params(("id" = String, Path, description = "The session's id"), MessagesQuery),
    responses(
        (status = 200, description = "The session and its messages", body = SessionMessages),
        (status = 404, description = "No such session (or not the caller's)", body = ErrorBody),
    ))]
pub async fn messages(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<SessionMessages>, ApiError> {
    let session = visible_session(&state, &who, &id).await?;
    let limit = match q.limit {
        None | Some(0) => MESSAGE_PAGE,
        Some(n) => n.min(MAX_MESSAGE_PAGE),
    };
    // One more than the page: whether a next page exists.
    let mut messages = state
        .store
        .list_messages(&who.tenant, &session.id, q.after.unwrap_or(0), limit + 1)
        .await?;
    let more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    let next_after = more.then(|| messages.last().map(|m| m.seq)).flatten();
    let messages = messages
        .into_iter()
        .map(|m| MessageView {
            id: m.id,
            seq: m.seq,
            role: m.role,
            content: m.content,
            meta: m.meta,
            created_at: m.created_at,
        })
        .collect();
    Ok(Json(SessionMessages {
        session: session.into(),
        messages,
        next_after,
    }))
}

/// Delete a session (stopping its run, if any).
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such session (or not the caller's)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = visible_session(&state, &who, &id).await?;
    state.runtime.runs.stop(&session.id);
    state.store.delete_session(&who.tenant, &session.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Traces, newest first: the caller's own, or the tenant's for owners and
/// admins.
#[utoipa::path(get, path = "/v1/traces", tag = "sessions", params(TracesQuery),
    responses((status = 200, description = "The traces", body = TraceList)))]
pub async fn traces(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<TracesQuery>,
) -> Result<Json<TraceList>, ApiError> {
    let (before, before_id) = match q.cursor.as_deref() {
        Some(c) => {
            let (at, id) = c
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .ok_or_else(|| ApiError::invalid("cursor: pass a next_cursor as it was given"))?;
            (Some(at), Some(id.to_owned()))
        }
        None => (q.before, None),
    };
    let limit = match q.limit {
        None | Some(0) => 50,
        Some(n) => n.min(500),
    };
    let filter = TraceFilter {
        agent_id: q.agent.map(AgentId::new),
        user_id: (!who.sees_all_users()).then(|| who.user.clone()),
        session_id: q.session.map(SessionId::new),
        before,
        before_id,
        limit: limit + 1,
    };
    let mut traces = state
        .runtime
        .traces()
        .list_traces(&who.tenant, &filter)
        .await?;
    let more = traces.len() > limit as usize;
    traces.truncate(limit as usize);
    let next_cursor = more
        .then(|| traces.last().map(|t| format!("{}.{}", t.started_at, t.id)))
        .flatten();
    Ok(Json(TraceList {
        traces: traces.into_iter().map(TraceView::from).collect(),
        next_cursor,
    }))
}

/// A trace and its spans.
#[utoipa::path(get, path = "/v1/traces/{id}", tag = "sessions",
    params(("id" = String, Path, description = "The trace's id")),
    responses(
        (status = 200, description = "The trace and its spans", body = TraceDetail),
        (status = 404, description = "No such trace (or not the caller's)", body = ErrorBody),
    ))]
pub async fn trace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TraceDetail>, ApiError> {
    // Through the runtime: it waits for the rows still queued.
    let (trace, spans) = state
        .runtime
        .traces()
        .get_trace(&who.tenant, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !who.sees_all_users() && trace.user_id.as_ref() != Some(&who.user) {
        return Err(ApiError::not_found());
    }
    Ok(Json(TraceDetail {
        trace: trace.into(),
        spans: spans.into_iter().map(SpanView::from).collect(),
    }))
}
