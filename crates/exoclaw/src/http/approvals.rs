//! `/v1/approvals`: exec approvals waiting for an operator
//! (`tools.exec_approval.security = ask`). Deciding is audited.

use super::error::{ApiError, ErrorBody};
use super::extract::{Path, Query};
use super::state::{AppState, RequestId};
use axum::extract::State;
use axum::{Extension, Json};
use exoclaw_core::store::{Approval, ApprovalStatus};
use exoclaw_core::{AgentId, SessionId, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending` (default), `approved`, `denied`, `expired` or `all`.
    #[param(schema_with = status_words)]
    status: Option<String>,
}

fn status_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["pending", "approved", "denied", "expired", "all"])
}

/// A flagged command waiting for (or decided by) an operator.
#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(value_type = String)]
    pub agent_id: AgentId,
    #[schema(value_type = String)]
    pub user_id: UserId,
    #[schema(value_type = Option<String>)]
    pub session_id: Option<SessionId>,
    /// The command as requested.
    pub command: String,
    pub cwd: String,
    /// What the approval is bound to: the resolved argv, cwd and environment.
    pub command_hash: String,
    /// The rule that flagged it.
    pub rule: String,
    #[schema(schema_with = super::schema::approval_status)]
    pub status: ApprovalStatus,
    /// Unix milliseconds.
    pub requested_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

impl From<Approval> for ApprovalView {
    fn from(a: Approval) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            agent_id: a.agent_id,
            user_id: a.user_id,
            session_id: a.session_id,
            command: a.command,
            cwd: a.cwd,
            command_hash: a.command_hash,
            rule: a.rule,
            status: a.status,
            requested_at: a.requested_at,
            decided_at: a.decided_at,
            decided_by: a.decided_by,
        }
    }
}

/// The approvals the caller may decide.
#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<ApprovalView>,
}

impl ApprovalList {
    pub fn of(items: Vec<Approval>) -> Self {
        Self {
            approvals: items.into_iter().map(ApprovalView::from).collect(),
        }
    }
}

/// One decided approval.
#[derive(Serialize, ToSchema)]
pub struct Decided {
    pub approval: ApprovalView,
}

pub fn parse_status(s: Option<&str>) -> Result<Option<ApprovalStatus>, ApiError> {
    match s.unwrap_or("pending") {
        "all" => Ok(None),
        other => ApprovalStatus::parse(other)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("status: pending, approved, denied, expired or all")),
    }
}

/// List exec approvals (by default the pending ones).
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ListQuery),
    responses((status = 200, description = "The approvals", body = ApprovalList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<ApprovalList>, ApiError> {
    let status = parse_status(q.status.as_deref())?;
    let items = exoclaw_gateway::runtime::approval::visible(
        state.store.as_ref(),
        &who,
        deciders(&state),
        status,
    )
    .await?;
    Ok(Json(ApprovalList::of(items)))
}

/// Approve a pending command (audited).
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "The approval's id")),
    responses(
        (status = 200, description = "The approval, approved", body = Decided),
        (status = 404, description = "No such approval (or not one the caller decides)", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
    ))]
pub async fn approve(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    id: Path<String>,
) -> Result<Json<Decided>, ApiError> {
    decide(state, who, rid, id, ApprovalStatus::Approved).await
}

/// Deny a pending command (audited).
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals",
    params(("id" = String, Path, description = "The approval's id")),
    responses(
        (status = 200, description = "The approval, denied", body = Decided),
        (status = 404, description = "No such approval (or not one the caller decides)", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
    ))]
pub async fn deny(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    id: Path<String>,
) -> Result<Json<Decided>, ApiError> {
    decide(state, who, rid, id, ApprovalStatus::Denied).await
}

async fn decide(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    to: ApprovalStatus,
) -> Result<Json<Decided>, ApiError> {
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
        Ok(a) => Ok(Json(Decided { approval: a.into() })),
        Err(DecideError::Store(e)) => Err(e.into()),
        Err(DecideError::Forbidden(m)) => Err(ApiError::forbidden(m)),
    }
}

/// Who decides approvals (`tools.exec_approval.deciders`).
pub fn deciders(state: &AppState) -> crate::config::file::ApprovalDeciders {
    state.runtime.settings.config.tools.exec_approval.deciders
}
