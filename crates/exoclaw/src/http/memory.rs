//! Long-term memory over HTTP: `GET /v1/memory` (list, or search with `q`),
//! `POST /v1/memory` (save), `DELETE /v1/memory/{id}` (forget) and `GET
//! /v1/memory/status` (counts, the embedder and the re-embedding job). The
//! shapes here are also the CLI's `--json`.
//!
//! A caller sees their own memories of an agent and the agent's shared
//! ones; administrators (`users.manage`) list every user's and may forget
//! any. Saving a shared memory, or forgetting one, needs `agents.write`.
//! Reading needs `sessions.read`, saving `chat`, forgetting
//! `sessions.write`.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Body, Path, Query};
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::AgentId;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::store::memory::{Memory, MemoryFilter};
use exoclaw_gateway::access::{Permission, Principal};
use exoclaw_gateway::memory::{MemoryError, Reader};
use exoclaw_gateway::runtime::Runtime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One memory.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MemoryView {
    pub id: String,
    pub agent: String,
    /// Whose memory it is; absent for the agent's shared memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every user of the agent sees it.
    pub shared: bool,
    pub content: String,
    /// It came from untrusted content (recalled inside untrusted markers).
    pub untrusted: bool,
    /// 0 to 10.
    pub importance: i64,
    /// The embedder of its vector; absent when it has none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The fused search score (searches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

impl From<Memory> for MemoryView {
    fn from(m: Memory) -> Self {
        Self {
            id: m.id.clone(),
            agent: m.agent_id.to_string(),
            shared: m.is_shared(),
            user: m.user_id.map(|u| u.to_string()),
            content: m.content,
            untrusted: m.untrusted,
            importance: m.importance,
            embedder: m.embedder,
            created_at: m.created_at,
            updated_at: m.updated_at,
            score: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MemoryList {
    pub memories: Vec<MemoryView>,
    /// Searches only: ranked by full text alone (no embedder configured,
    /// or it did not answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_text_only: Option<bool>,
}

/// A memory to save.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveMemory {
    pub agent: String,
    /// At most 4096 bytes; secrets are scrubbed before it is stored.
    pub content: String,
    /// The agent's shared memory (needs `agents.write`).
    #[serde(default)]
    pub shared: bool,
    /// 0 to 10, default 5.
    #[serde(default)]
    pub importance: Option<i64>,
}

/// What a save did.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SavedMemoryView {
    pub memory: MemoryView,
    /// It merged into an exact or near duplicate.
    pub merged: bool,
    /// Memories of the namespace removed by retention.
    pub pruned: u64,
}

/// `memory status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MemoryStatusView {
    /// The embedder's identity; absent: full-text search alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    pub total: u64,
    /// With a vector of the current embedder.
    pub embedded: u64,
    /// The re-embedding job (with an embedder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reembed: Option<ReembedView>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReembedView {
    /// Embedded by this gateway since it started.
    pub embedded: u64,
    /// Still without a vector of the current embedder.
    pub remaining: u64,
    pub running: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<&ReembedView> for exoclaw_gateway::memory::reembed::Progress {
    fn from(v: &ReembedView) -> Self {
        Self {
            embedded: v.embedded,
            remaining: v.remaining,
            running: v.running,
            last_error: v.last_error.clone(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MemoryQueryParams {
    /// Only this agent's (required with `q`).
    agent: Option<String>,
    /// Search for this text (hybrid: full text and vectors).
    q: Option<String>,
    /// The most memories (default 20, at most 100).
    #[param(value_type = Option<u64>, maximum = 4294967295_u64)]
    limit: Option<u32>,
}

/// A refusal of the memory bank as an API error.
pub fn api_error(e: MemoryError) -> ApiError {
    match e {
        MemoryError::Invalid(m) => ApiError::new(ErrorCode::MemoryInvalid, m),
        e @ MemoryError::NotFound(_) => ApiError::new(ErrorCode::MemoryNotFound, e.to_string()),
        MemoryError::Store(s) => s.into(),
    }
}

fn agent_id(id: &str) -> Result<AgentId, ApiError> {
    if !is_valid_slug(id) {
        return Err(ApiError::new(
            ErrorCode::MemoryInvalid,
            "agent: an agent id (lowercase letters, digits, '-' or '_')",
        ));
    }
    Ok(AgentId::new(id))
}

/// The operations the handlers and the CLI share.
pub mod ops {
    use super::*;

    async fn known_agent(rt: &Runtime, who: &Principal, id: &str) -> Result<AgentId, ApiError> {
        let agent = agent_id(id)?;
        match rt.store.get_agent(&who.tenant, &agent).await? {
            Some(_) => Ok(agent),
            None => Err(ApiError::new(
                ErrorCode::AgentUnknown,
                format!("no agent {id:?}"),
            )),
        }
    }

    fn sees_all(who: &Principal) -> bool {
        who.can(Permission::UsersManage)
    }

    pub async fn list(
        rt: &Runtime,
        who: &Principal,
        agent: Option<&str>,
        q: Option<&str>,
        limit: u32,
    ) -> Result<MemoryList, ApiError> {
        let limit = if limit == 0 { 20 } else { limit.min(100) };
        if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
            let Some(agent) = agent else {
                return Err(ApiError::new(
                    ErrorCode::MemoryInvalid,
                    "agent: a search is inside one agent's memories; name it",
                ));
            };
            let agent = agent_id(agent)?;
            let reader = Reader {
                tenant: &who.tenant,
                agent: &agent,
                user: Some(&who.user),
            };
            let found = rt
                .memory
                .search(&reader, q, limit)
                .await
                .map_err(api_error)?;
            return Ok(MemoryList {
                memories: found
                    .hits
                    .into_iter()
                    .map(|h| MemoryView {
                        score: Some(h.score),
                        ..MemoryView::from(h.memory)
                    })
                    .collect(),
                full_text_only: Some(found.full_text_only),
            });
        }
        let filter = MemoryFilter {
            agent: agent.map(agent_id).transpose()?,
            user: (!sees_all(who)).then(|| who.user.clone()),
            limit,
        };
        let memories = rt
            .memory
            .list(&who.tenant, &filter)
            .await
            .map_err(api_error)?;
        Ok(MemoryList {
            memories: memories.into_iter().map(MemoryView::from).collect(),
            full_text_only: None,
        })
    }

    pub async fn save(
        rt: &Runtime,
        who: &Principal,
        b: SaveMemory,
    ) -> Result<SavedMemoryView, ApiError> {
        if b.shared && !who.can(Permission::AgentsWrite) {
            return Err(ApiError::new(
                ErrorCode::AuthForbidden,
                "saving an agent's shared memory needs the agents.write permission",
            ));
        }
        let agent = known_agent(rt, who, &b.agent).await?;
        let reader = Reader {
            tenant: &who.tenant,
            agent: &agent,
            user: (!b.shared).then_some(&who.user),
        };
        let saved = rt
            .memory
            .save(&reader, &b.content, false, b.importance.unwrap_or(5))
            .await
            .map_err(api_error)?;
        Ok(SavedMemoryView {
            memory: saved.memory.into(),
            merged: saved.merged,
            pruned: saved.pruned,
        })
    }

    pub async fn forget(rt: &Runtime, who: &Principal, id: &str) -> Result<(), ApiError> {
        let user = (!sees_all(who)).then_some(&who.user);
        let m = rt
            .memory
            .get(&who.tenant, user, id)
            .await
            .map_err(api_error)?;
        if m.is_shared() && !who.can(Permission::AgentsWrite) {
            return Err(ApiError::new(
                ErrorCode::AuthForbidden,
                "forgetting an agent's shared memory needs the agents.write permission",
            ));
        }
        rt.memory
            .forget(&who.tenant, user, id)
            .await
            .map(|_| ())
            .map_err(api_error)
    }

    pub async fn status(rt: &Runtime, who: &Principal) -> Result<MemoryStatusView, ApiError> {
        let s = rt
            .memory
            .status(Some(&who.tenant))
            .await
            .map_err(api_error)?;
        Ok(MemoryStatusView {
            embedder: s.embedder,
            total: s.total,
            embedded: s.embedded,
            reembed: s.reembed.map(|p| ReembedView {
                embedded: p.embedded,
                remaining: p.remaining,
                running: p.running,
                last_error: p.last_error,
            }),
        })
    }
}

/// List the memories the caller sees (newest first), or search them.
#[utoipa::path(get, path = "/v1/memory", tag = "memory", params(MemoryQueryParams),
    responses(
        (status = 200, description = "The memories (best first for a search)", body = MemoryList),
        (status = 400, description = "A search without an agent, or a bad agent id (`memory.invalid`)", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<MemoryQueryParams>,
) -> Result<Json<MemoryList>, ApiError> {
    Ok(Json(
        ops::list(
            &state.runtime,
            &who,
            q.agent.as_deref(),
            q.q.as_deref(),
            q.limit.unwrap_or(0),
        )
        .await?,
    ))
}

/// Save a memory for the caller (or the agent's shared memory).
#[utoipa::path(post, path = "/v1/memory", tag = "memory", request_body = SaveMemory,
    responses(
        (status = 201, description = "Saved, or merged into a duplicate", body = SavedMemoryView),
        (status = 400, description = "Empty, oversized (the limit named) or out of range (`memory.invalid`)", body = ErrorBody),
        (status = 403, description = "A shared memory without `agents.write` (`auth.forbidden`)", body = ErrorBody),
        (status = 422, description = "No such agent (`agent.unknown`)", body = ErrorBody),
    ))]
pub async fn save(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Body(b): Body<SaveMemory>,
) -> Result<(StatusCode, Json<SavedMemoryView>), ApiError> {
    let saved = ops::save(&state.runtime, &who, b).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

/// Forget a memory.
#[utoipa::path(delete, path = "/v1/memory/{id}", tag = "memory",
    params(("id" = String, Path, description = "The memory's id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 403, description = "A shared memory without `agents.write` (`auth.forbidden`)", body = ErrorBody),
        (status = 404, description = "No such memory the caller sees (`memory.not_found`)", body = ErrorBody),
    ))]
pub async fn forget(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ops::forget(&state.runtime, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's memory counts, the embedder and the re-embedding job.
#[utoipa::path(get, path = "/v1/memory/status", tag = "memory",
    responses((status = 200, description = "The status", body = MemoryStatusView)))]
pub async fn status(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<MemoryStatusView>, ApiError> {
    Ok(Json(ops::status(&state.runtime, &who).await?))
}
