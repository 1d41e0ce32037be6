//! `/v1/approvals`: exec approvals waiting for an operator
//! (`tools.exec_approval.security = ask`). Deciding is audited.

use super::error::ApiError;
use super::state::{AppState, RequestId};
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use exoclaw_core::store::ApprovalStatus;
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
pub struct ListQuery {
    /// `pending` (default), `approved`, `denied`, `expired` or `all`.
    status: Option<String>,
}

pub fn parse_status(s: Option<&str>) -> Result<Option<ApprovalStatus>, ApiError> {
    match s.unwrap_or("pending") {
        "all" => Ok(None),
        other => ApprovalStatus::parse(other)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("status: pending, approved, denied, expired or all")),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = parse_status(q.status.as_deref())?;
    let items = exoclaw_gateway::runtime::approval::visible(
        state.store.as_ref(),
        &who,
        deciders(&state),
        status,
    )
    .await?;
    Ok(Json(json!({ "approvals": items })))
}

pub async fn approve(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    decide(state, who, rid, id, ApprovalStatus::Approved).await
}

pub async fn deny(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    decide(state, who, rid, id, ApprovalStatus::Denied).await
}

async fn decide(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    to: ApprovalStatus,
) -> Result<Json<Value>, ApiError> {
    use exoclaw_gateway::runtime::approval::{DecideError, decide_as};
    match decide_as(
        state.store.as_ref(),
        &who,
        deciders(&state),
        &id,
        to,
        Some(rid.0),
    )
    .await
    {
        Ok(a) => Ok(Json(json!({ "approval": a }))),
        Err(DecideError::Store(e)) => Err(e.into()),
        Err(DecideError::Forbidden(m)) => Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "auth.forbidden",
            m,
        )),
    }
}

/// Who decides approvals (`tools.exec_approval.deciders`).
pub fn deciders(state: &AppState) -> crate::config::file::ApprovalDeciders {
    state.runtime.settings.config.tools.exec_approval.deciders
}
