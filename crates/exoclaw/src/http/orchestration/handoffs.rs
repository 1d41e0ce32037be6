//! `GET /v1/handoffs`: the conversations handed over from one agent to
//! another (the `handoff` tool), most recently active first. Owners and
//! admins see their tenant's; everyone else those of their own
//! conversations. A handoff is ended by either agent (the tool's
//! `clear`), by the user (`/handoff clear`) or by its idle time.

use super::super::error::ApiError;
use super::super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use exoclaw_core::store::teams::Handoff;
use exoclaw_core::{AgentId, UserId};
use exoclaw_gateway::access::Principal;
use serde::Serialize;
use utoipa::ToSchema;

/// A conversation handed over.
#[derive(Serialize, ToSchema)]
pub struct HandoffView {
    /// The conversation: its channel (`api`, `ws`, a channel's name), peer
    /// and user.
    pub channel: String,
    pub peer: String,
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// The agent the conversation belongs to (it gets it back on `clear`).
    #[schema(value_type = String)]
    pub from_agent: AgentId,
    /// The agent answering it now.
    #[schema(value_type = String)]
    pub to_agent: AgentId,
    pub reason: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; the handoff lapses `agents.defaults.handoff.idle_sec` after it.
    pub last_active_at: i64,
}

impl From<Handoff> for HandoffView {
    fn from(h: Handoff) -> Self {
        Self {
            channel: h.channel,
            peer: h.peer,
            user_id: h.user_id,
            from_agent: h.from_agent,
            to_agent: h.to_agent,
            reason: h.reason,
            created_at: h.created_at,
            last_active_at: h.last_active_at,
        }
    }
}

/// The handoffs a caller may see.
#[derive(Serialize, ToSchema)]
pub struct HandoffList {
    pub handoffs: Vec<HandoffView>,
}

/// List the handoffs (at most 1,000, most recently active first).
#[utoipa::path(get, path = "/v1/handoffs", tag = "delegations",
    responses((status = 200, description = "The conversations handed over", body = HandoffList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<HandoffList>, ApiError> {
    let all = state.store.list_handoffs(&who.tenant).await?;
    let handoffs = all
        .into_iter()
        .filter(|h| who.sees_all_users() || h.user_id == who.user)
        .map(HandoffView::from)
        .collect();
    Ok(Json(HandoffList { handoffs }))
}
