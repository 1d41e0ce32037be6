//! Skills over HTTP: `GET /v1/skills` (the tenant's and the gateway's),
//! `GET /v1/skills/{name}` (with its `SKILL.md`), `POST /v1/skills` (a
//! `.tar.gz` or `.zip` upload through the install pipeline), `DELETE
//! /v1/skills/{name}` and `POST /v1/skills/{name}/approve` (a quarantined
//! skill, pinned to the content reviewed with `?sha256=`). The shapes here
//! are also the CLI's `--json`.
//!
//! Reading needs `agents.read`; installing, removing and approving change
//! what every agent of the tenant is offered and need `agents.write`
//! (administrators). The gateway's own skills (from `skills/` in the data
//! dir) are read-only here; `exoclaw skills ... --gateway` manages them.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Path, Query};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::TenantId;
use exoclaw_core::store::skill::{Skill, SkillStatus};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::Runtime;
use exoclaw_gateway::skills::{Actor, SkillError, Source};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One skill.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SkillView {
    pub name: String,
    pub description: String,
    pub version: String,
    /// Tools the skill says it needs.
    pub tools: Vec<String>,
    /// `active` (offered, searched, read) or `quarantined` (an install
    /// check warned; nothing uses it until an administrator approves).
    pub status: String,
    /// `tenant` (installed for this tenant) or `gateway` (the gateway's
    /// own, from its data dir).
    pub scope: String,
    /// SHA-256 over the skill's paths and contents: the pin an approval
    /// names.
    pub sha256: String,
    /// What the install checks warned about.
    pub warnings: Vec<String>,
    /// Its files, by path relative to the skill.
    pub files: Vec<String>,
    /// Bytes of all its files.
    pub size: i64,
    /// The embedder of its vector; absent: full-text search only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    pub installed_by: String,
    /// Unix milliseconds.
    pub installed_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<i64>,
}

impl From<Skill> for SkillView {
    fn from(s: Skill) -> Self {
        Self {
            scope: if s.is_gateway() { "gateway" } else { "tenant" }.to_owned(),
            status: s.status.as_str().to_owned(),
            name: s.name,
            description: s.description,
            version: s.version,
            tools: s.tools,
            sha256: s.sha256,
            warnings: s.warnings,
            files: s.files,
            size: s.size,
            embedder: s.embedder,
            installed_by: s.installed_by,
            installed_at: s.installed_at,
            approved_by: s.approved_by,
            approved_at: s.approved_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SkillList {
    pub skills: Vec<SkillView>,
}

/// One skill with its `SKILL.md`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SkillDetail {
    pub skill: SkillView,
    pub skill_md: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApproveParams {
    /// The content reviewed (`sha256` from the listing): the approval is
    /// refused if the skill changed since. Absent: its content now.
    sha256: Option<String>,
}

/// A refusal of the skill library as an API error.
pub fn api_error(e: SkillError) -> ApiError {
    match e {
        SkillError::Invalid(m) => ApiError::new(ErrorCode::SkillInvalid, m),
        SkillError::TooLarge(m) => ApiError::new(ErrorCode::SkillTooLarge, m),
        e @ SkillError::NotFound(_) => ApiError::new(ErrorCode::SkillNotFound, e.to_string()),
        SkillError::Conflict(m) => ApiError::new(ErrorCode::SkillConflict, m),
        SkillError::Store(s) => s.into(),
    }
}

/// The operations the handlers and the CLI share. `scope` `None` is the
/// gateway's own skills (the CLI's `--gateway`).
pub mod ops {
    use super::*;

    pub async fn list(rt: &Runtime, scope: Option<&TenantId>) -> Result<SkillList, ApiError> {
        let skills = rt.skills.list(scope).await.map_err(api_error)?;
        Ok(SkillList {
            skills: skills.into_iter().map(SkillView::from).collect(),
        })
    }

    pub async fn show(
        rt: &Runtime,
        scope: Option<&TenantId>,
        name: &str,
    ) -> Result<SkillDetail, ApiError> {
        let (skill, skill_md) = rt.skills.show(scope, name).await.map_err(api_error)?;
        Ok(SkillDetail {
            skill: skill.into(),
            skill_md,
        })
    }

    pub async fn install(
        rt: &Runtime,
        scope: Option<&TenantId>,
        source: Source<'_>,
        actor: &Actor<'_>,
    ) -> Result<SkillView, ApiError> {
        let skill = rt
            .skills
            .install(scope, source, actor)
            .await
            .map_err(api_error)?;
        Ok(skill.into())
    }

    pub async fn remove(
        rt: &Runtime,
        scope: Option<&TenantId>,
        name: &str,
        actor: &Actor<'_>,
    ) -> Result<(), ApiError> {
        rt.skills
            .remove(scope, name, actor)
            .await
            .map_err(api_error)
    }

    pub async fn approve(
        rt: &Runtime,
        scope: Option<&TenantId>,
        name: &str,
        sha256: Option<&str>,
        actor: &Actor<'_>,
    ) -> Result<SkillView, ApiError> {
        let skill = rt
            .skills
            .approve(scope, name, sha256, actor)
            .await
            .map_err(api_error)?;
        Ok(skill.into())
    }
}

/// The skills the tenant sees: its own and the gateway's (a tenant's skill
/// shadows the gateway's of the same name), quarantined ones included.
#[utoipa::path(get, path = "/v1/skills", tag = "skills",
    responses((status = 200, description = "The skills, by name", body = SkillList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<SkillList>, ApiError> {
    Ok(Json(ops::list(&state.runtime, Some(&who.tenant)).await?))
}

/// One skill (the tenant's, else the gateway's) with its `SKILL.md`.
#[utoipa::path(get, path = "/v1/skills/{name}", tag = "skills",
    params(("name" = String, Path, description = "The skill's name")),
    responses(
        (status = 200, description = "The skill", body = SkillDetail),
        (status = 404, description = "No such skill (`skill.not_found`)", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<SkillDetail>, ApiError> {
    Ok(Json(
        ops::show(&state.runtime, Some(&who.tenant), &name).await?,
    ))
}

/// Install a skill for the tenant from a `.tar.gz` or a `.zip` of its
/// folder (told apart by the first bytes; a `SKILL.md` at the top, or in
/// one top folder). The archive is checked
/// whole before anything is stored: caps (`skills.*`), paths, entry kinds,
/// text; then the injection scanner and the shell policy. A skill they
/// warn about is stored quarantined (`status`, `warnings`) until approved.
/// It replaces the tenant's skill of the same name.
#[utoipa::path(post, path = "/v1/skills", tag = "skills",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The skill folder as a .tar.gz or a .zip, recognised by its magic bytes (sent as application/octet-stream, application/gzip or application/zip)"),
    responses(
        (status = 201, description = "Installed (`status` says whether it is active or quarantined)", body = SkillView),
        (status = 400, description = "A corrupt or hostile archive, or a bad SKILL.md (`skill.invalid`)", body = ErrorBody),
        (status = 413, description = "Over a cap, the limit named (`skill.too_large`, `request.too_large`)", body = ErrorBody),
    ))]
pub async fn install(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    body: Bytes,
) -> Result<(StatusCode, Json<SkillView>), ApiError> {
    let actor = Actor {
        name: &who.actor,
        request_id: Some(&rid.0),
    };
    let skill = ops::install(
        &state.runtime,
        Some(&who.tenant),
        Source::Archive(&body),
        &actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(skill)))
}

/// Remove one of the tenant's skills.
#[utoipa::path(delete, path = "/v1/skills/{name}", tag = "skills",
    params(("name" = String, Path, description = "The skill's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The tenant has no such skill (`skill.not_found`)", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor {
        name: &who.actor,
        request_id: Some(&rid.0),
    };
    ops::remove(&state.runtime, Some(&who.tenant), &name, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Approve a quarantined skill of the tenant: it becomes active (offered,
/// searched, read). With `sha256`, only if its content is still the one
/// reviewed.
#[utoipa::path(post, path = "/v1/skills/{name}/approve", tag = "skills",
    params(("name" = String, Path, description = "The skill's name"), ApproveParams),
    responses(
        (status = 200, description = "Approved (or already active)", body = SkillView),
        (status = 404, description = "The tenant has no such skill (`skill.not_found`)", body = ErrorBody),
        (status = 409, description = "It changed since it was reviewed (`skill.conflict`)", body = ErrorBody),
    ))]
pub async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
    Query(q): Query<ApproveParams>,
) -> Result<Json<SkillView>, ApiError> {
    let actor = Actor {
        name: &who.actor,
        request_id: Some(&rid.0),
    };
    let skill = ops::approve(
        &state.runtime,
        Some(&who.tenant),
        &name,
        q.sha256.as_deref(),
        &actor,
    )
    .await?;
    debug_assert_eq!(skill.status, SkillStatus::Active.as_str());
    Ok(Json(skill))
}
