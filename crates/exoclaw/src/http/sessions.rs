//! `/v1/sessions` and `/v1/traces`: conversation history and run traces.
//! Owners and admins see their tenant's; everyone else only their own.

use super::error::ApiError;
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use exoclaw_core::model::SessionFilter;
use exoclaw_core::trace::TraceFilter;
use exoclaw_core::{AgentId, SessionId};
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct ListQuery {
    agent: Option<String>,
    session: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = SessionFilter {
        agent_id: q.agent.map(AgentId::new),
        user_id: (!who.sees_all_users()).then(|| who.user.clone()),
    };
    let sessions = state.store.list_sessions(&who.tenant, &filter).await?;
    Ok(Json(json!({ "sessions": sessions })))
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// The session if `who` may see it; otherwise "not found" (existence does
/// not leak).
async fn visible_session(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<exoclaw_core::model::Session, ApiError> {
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

pub async fn messages(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Value>, ApiError> {
    let session = visible_session(&state, &who, &id).await?;
    let messages = state
        .store
        .list_messages(
            &who.tenant,
            &session.id,
            q.after.unwrap_or(0),
            q.limit.unwrap_or(0).min(1000),
        )
        .await?;
    let items: Vec<Value> = messages
        .into_iter()
        .map(|m| {
            json!({"id": m.id, "seq": m.seq, "role": m.role, "content": m.content,
                   "meta": m.meta, "created_at": m.created_at})
        })
        .collect();
    Ok(Json(json!({"session": session, "messages": items})))
}

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

pub async fn traces(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = TraceFilter {
        agent_id: q.agent.map(AgentId::new),
        user_id: (!who.sees_all_users()).then(|| who.user.clone()),
        session_id: q.session.map(SessionId::new),
        before: q.before,
        limit: q.limit.unwrap_or(50).min(500),
    };
    let traces = state
        .runtime
        .traces()
        .list_traces(&who.tenant, &filter)
        .await?;
    Ok(Json(json!({ "traces": traces })))
}

pub async fn trace(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "trace": trace, "spans": spans })))
}
