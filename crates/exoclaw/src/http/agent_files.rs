//! `/v1/agents/{id}/files`: an agent's context files (SOUL.md, IDENTITY.md,
//! AGENTS.md, USER.md, TOOLS.md), which the runtime puts into its system
//! prompt: listed, read, replaced and removed. Only those five names, at
//! most 64 KiB each, in the agent's own directory of its tenant
//! (`exoclaw_gateway::runtime::context`). Changes are audited
//! (`agent.file.write` with the size and SHA-256 of the new text,
//! `agent.file.delete`) and apply from the agent's next turn.

use super::agents::audit;
use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Path};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::AgentId;
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::context::{self, FileError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest as _;
use utoipa::ToSchema;

/// One context file.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileView {
    pub name: String,
    pub exists: bool,
    /// Size in bytes (0 when missing).
    pub bytes: u64,
    /// Last change, Unix milliseconds.
    pub modified: Option<i64>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileList {
    /// The five context files in prompt order, existing or not.
    pub files: Vec<FileView>,
    /// The most one file may hold, in bytes.
    pub max_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FileText {
    pub name: String,
    pub content: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct PutFile {
    /// The file's new text (UTF-8, at most 64 KiB).
    pub content: String,
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::Name(_) => ApiError::invalid(e.to_string()),
            FileError::TooLarge { .. } => ApiError::too_large(e.to_string()),
            FileError::Io(detail) => ApiError::internal(detail),
        }
    }
}

/// Runs `f` over the data dir, the tenant and the agent `id` (which must
/// be the caller's tenant's, else 404) on a blocking thread (file IO).
async fn with_agent<T: Send + 'static>(
    state: &AppState,
    who: &Principal,
    id: &str,
    f: impl FnOnce(&std::path::Path, &str, &str) -> Result<T, FileError> + Send + 'static,
) -> Result<(AgentId, T), ApiError> {
    let agent = AgentId::new(id);
    state
        .store
        .get_agent(&who.tenant, &agent)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let home = state.runtime.home.clone();
    let (tenant, a) = (who.tenant.clone(), agent.clone());
    let out = tokio::task::spawn_blocking(move || f(&home, tenant.as_str(), a.as_str()))
        .await
        .map_err(ApiError::internal)??;
    Ok((agent, out))
}

/// The agent's context files.
#[utoipa::path(get, path = "/v1/agents/{id}/files", tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The five files, existing or not", body = FileList),
        (status = 404, description = "No such agent", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<FileList>, ApiError> {
    let (_, files) = with_agent(&state, &who, &id, |home, tenant, agent| {
        Ok(context::list_files(home, tenant, agent))
    })
    .await?;
    Ok(Json(FileList {
        files: files
            .into_iter()
            .map(|f| FileView {
                name: f.name.to_owned(),
                exists: f.bytes.is_some(),
                bytes: f.bytes.unwrap_or(0),
                modified: f.modified,
            })
            .collect(),
        max_bytes: context::MAX_FILE_BYTES,
    }))
}

/// One context file's text.
#[utoipa::path(get, path = "/v1/agents/{id}/files/{name}", tag = "agents",
    params(("id" = String, Path, description = "The agent's id"),
           ("name" = String, Path, description = "SOUL.md, IDENTITY.md, AGENTS.md, USER.md or TOOLS.md")),
    responses(
        (status = 200, description = "The file", body = FileText),
        (status = 400, description = "Not a context file's name", body = ErrorBody),
        (status = 404, description = "No such agent, or the file does not exist", body = ErrorBody),
    ))]
pub async fn read(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<FileText>, ApiError> {
    let n = name.clone();
    let (_, content) = with_agent(&state, &who, &id, move |home, tenant, agent| {
        context::read_file(home, tenant, agent, &n)
    })
    .await?;
    let content = content.ok_or_else(ApiError::not_found)?;
    Ok(Json(FileText { name, content }))
}

/// Replace (or create) a context file (audited as `agent.file.write`).
#[utoipa::path(put, path = "/v1/agents/{id}/files/{name}", tag = "agents", request_body = PutFile,
    params(("id" = String, Path, description = "The agent's id"),
           ("name" = String, Path, description = "SOUL.md, IDENTITY.md, AGENTS.md, USER.md or TOOLS.md")),
    responses(
        (status = 200, description = "Written", body = FileView),
        (status = 400, description = "Not a context file's name", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 413, description = "Over 64 KiB", body = ErrorBody),
    ))]
pub async fn write(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path((id, name)): Path<(String, String)>,
    Body(b): Body<PutFile>,
) -> Result<Json<FileView>, ApiError> {
    let bytes = b.content.len();
    let digest = hex::encode(sha2::Sha256::digest(b.content.as_bytes()));
    let n = name.clone();
    let (agent, ()) = with_agent(&state, &who, &id, move |home, tenant, agent| {
        context::write_file(home, tenant, agent, &n, &b.content)
    })
    .await?;
    let detail = json!({"file": name, "bytes": bytes, "sha256": digest});
    audit(&state, &who, rid, "agent.file.write", &agent, detail).await;
    Ok(Json(FileView {
        name,
        exists: true,
        bytes: bytes as u64,
        modified: Some(exoclaw_providers::calendar::now_millis()),
    }))
}

/// Remove a context file (audited as `agent.file.delete`).
#[utoipa::path(delete, path = "/v1/agents/{id}/files/{name}", tag = "agents",
    params(("id" = String, Path, description = "The agent's id"),
           ("name" = String, Path, description = "SOUL.md, IDENTITY.md, AGENTS.md, USER.md or TOOLS.md")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not a context file's name", body = ErrorBody),
        (status = 404, description = "No such agent, or the file does not exist", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let n = name.clone();
    let (agent, removed) = with_agent(&state, &who, &id, move |home, tenant, agent| {
        context::delete_file(home, tenant, agent, &n)
    })
    .await?;
    if !removed {
        return Err(ApiError::not_found());
    }
    audit(
        &state,
        &who,
        rid,
        "agent.file.delete",
        &agent,
        json!({"file": name}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
