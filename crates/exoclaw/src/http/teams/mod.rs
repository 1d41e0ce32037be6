//! Agent teams: `/v1/teams` (create, list, read, update, delete) here, and
//! each team's task board under `/v1/teams/{id}/tasks` (`tasks.rs`). A team
//! has a lead agent and member agents of the tenant; being in a team lets
//! the lead and the members reach each other (delegation, handoff) and
//! work its board and mailbox, and nothing else. The operations are shared
//! by the HTTP routes, the WebSocket methods (`ws/teams.rs`) and the CLI
//! (`cmd/team.rs`), with the same checks and audit events (`team.create`,
//! `team.update`, `team.delete`).

pub mod tasks;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Body, Path};
use super::orchestration::{Actor, audit, check_name};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::store::teams::{NewTeam, Team, TeamUpdate};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// The most members a team may have besides its lead.
pub const MAX_MEMBERS: usize = 100;

/// A team.
#[derive(Serialize, ToSchema)]
pub struct TeamView {
    /// The team's slug.
    pub id: String,
    pub name: String,
    /// The lead agent.
    #[schema(value_type = String)]
    pub lead: AgentId,
    /// The member agents besides the lead, by id.
    #[schema(value_type = Vec<String>)]
    pub members: Vec<AgentId>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl From<&Team> for TeamView {
    fn from(t: &Team) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            lead: t.lead.clone(),
            members: t.members.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// The tenant's teams, by id.
#[derive(Serialize, ToSchema)]
pub struct TeamList {
    pub teams: Vec<TeamView>,
}

/// A new team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// A slug, unique in the tenant.
    #[schema(example = "research")]
    pub id: String,
    /// Absent: the id.
    pub name: Option<String>,
    /// The lead agent.
    pub lead: String,
    /// The member agents (not the lead), at most 100.
    #[serde(default)]
    pub members: Vec<String>,
}

/// What to change in a team (absent: unchanged).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeam {
    pub name: Option<String>,
    pub lead: Option<String>,
    /// The whole new member list.
    pub members: Option<Vec<String>>,
}

fn no_team(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::TeamNotFound,
        format!("no team {id:?} (GET /v1/teams lists them)"),
    )
}

/// `field` as agent ids, none twice.
fn agent_ids(field: &str, ids: &[String]) -> Result<Vec<AgentId>, ApiError> {
    if ids.len() > MAX_MEMBERS {
        return Err(ApiError::invalid(format!(
            "{field}: at most {MAX_MEMBERS} agents"
        )));
    }
    let mut out: Vec<AgentId> = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if !is_valid_slug(id) {
            return Err(ApiError::invalid(format!(
                "{field}[{i}]: an agent id, not {id:?}"
            )));
        }
        let id = AgentId::new(id);
        if out.contains(&id) {
            return Err(ApiError::invalid(format!("{field}: {id} is listed twice")));
        }
        out.push(id);
    }
    Ok(out)
}

/// Each agent exists in the tenant; an unknown one is `agent.unknown`
/// (the body's fault), naming its field.
async fn check_agents(
    store: &dyn Store,
    tenant: &TenantId,
    field: &str,
    ids: &[AgentId],
) -> Result<(), ApiError> {
    for id in ids {
        if store.get_agent(tenant, id).await?.is_none() {
            return Err(ApiError::new(
                ErrorCode::AgentUnknown,
                format!("{field}: no agent {id:?} (GET /v1/agents lists them)"),
            ));
        }
    }
    Ok(())
}

fn lead_id(lead: &str) -> Result<AgentId, ApiError> {
    if !is_valid_slug(lead) {
        return Err(ApiError::invalid(format!(
            "lead: an agent id, not {lead:?}"
        )));
    }
    Ok(AgentId::new(lead))
}

/// The tenant's teams.
pub async fn teams_of(store: &dyn Store, tenant: &TenantId) -> Result<TeamList, ApiError> {
    let teams = store.list_teams(tenant).await?;
    Ok(TeamList {
        teams: teams.iter().map(TeamView::from).collect(),
    })
}

/// One team, or `team.not_found`.
pub async fn one(store: &dyn Store, tenant: &TenantId, id: &str) -> Result<TeamView, ApiError> {
    if !is_valid_slug(id) {
        return Err(no_team(id));
    }
    match store.get_team(tenant, id).await? {
        Some(t) => Ok(TeamView::from(&t)),
        None => Err(no_team(id)),
    }
}

/// Creates a team (audited as `team.create`): `request.invalid` for a bad
/// id, name or member list (or the lead among the members),
/// `agent.unknown` for an agent the tenant lacks, `conflict` for a taken
/// id.
pub async fn create(
    store: &dyn Store,
    actor: &Actor,
    body: CreateTeam,
) -> Result<TeamView, ApiError> {
    if !is_valid_slug(&body.id) {
        return Err(ApiError::invalid(format!(
            "id: 1-64 characters of a-z, 0-9, '-' or '_', not {:?}",
            body.id
        )));
    }
    let name = body.name.unwrap_or_else(|| body.id.clone());
    check_name("name", &name)?;
    let lead = lead_id(&body.lead)?;
    let members = agent_ids("members", &body.members)?;
    if members.contains(&lead) {
        return Err(ApiError::invalid(format!(
            "members: {lead} is the lead; list only the other members"
        )));
    }
    check_agents(store, &actor.tenant, "lead", std::slice::from_ref(&lead)).await?;
    check_agents(store, &actor.tenant, "members", &members).await?;
    let new = NewTeam {
        id: body.id,
        name,
        lead,
        members,
    };
    let team = store
        .create_team(&actor.tenant, &new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                ErrorCode::Conflict,
                format!("team {:?} exists already", new.id),
            ),
            other => other.into(),
        })?;
    let detail = json!({"lead": team.lead, "members": team.members, "name": team.name});
    audit(
        store,
        actor,
        "team.create",
        format!("team:{}", team.id),
        Some(&team.lead),
        detail,
    )
    .await;
    Ok(TeamView::from(&team))
}

/// Changes a team (audited as `team.update` with the fields changed).
pub async fn update(
    store: &dyn Store,
    actor: &Actor,
    id: &str,
    body: UpdateTeam,
) -> Result<TeamView, ApiError> {
    let current = one(store, &actor.tenant, id).await?;
    if let Some(name) = &body.name {
        check_name("name", name)?;
    }
    let lead = body.lead.as_deref().map(lead_id).transpose()?;
    let members = body
        .members
        .as_deref()
        .map(|m| agent_ids("members", m))
        .transpose()?;
    let new_lead = lead.as_ref().unwrap_or(&current.lead);
    let new_members = members.as_ref().unwrap_or(&current.members);
    if new_members.contains(new_lead) {
        return Err(ApiError::invalid(format!(
            "members: {new_lead} is the lead; list only the other members"
        )));
    }
    if let Some(l) = &lead {
        check_agents(store, &actor.tenant, "lead", std::slice::from_ref(l)).await?;
    }
    if let Some(m) = &members {
        check_agents(store, &actor.tenant, "members", m).await?;
    }
    let mut changed = Vec::new();
    for (field, set) in [
        ("name", body.name.is_some()),
        ("lead", lead.is_some()),
        ("members", members.is_some()),
    ] {
        if set {
            changed.push(field);
        }
    }
    let update = TeamUpdate {
        name: body.name,
        lead,
        members,
    };
    let team = store
        .update_team(&actor.tenant, &current.id, &update)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => no_team(id),
            other => other.into(),
        })?;
    let detail = json!({"changed": changed, "lead": team.lead, "members": team.members});
    audit(
        store,
        actor,
        "team.update",
        format!("team:{}", team.id),
        Some(&team.lead),
        detail,
    )
    .await;
    Ok(TeamView::from(&team))
}

/// Deletes a team with its board and mailbox (audited as `team.delete`).
pub async fn delete_team(store: &dyn Store, actor: &Actor, id: &str) -> Result<(), ApiError> {
    if !is_valid_slug(id) {
        return Err(no_team(id));
    }
    match store.delete_team(&actor.tenant, id).await {
        Ok(()) => {
            audit(
                store,
                actor,
                "team.delete",
                format!("team:{id}"),
                None,
                json!({}),
            )
            .await;
            Ok(())
        }
        Err(StoreError::NotFound) => Err(no_team(id)),
        Err(e) => Err(e.into()),
    }
}

/// The tenant's teams.
#[utoipa::path(get, path = "/v1/teams", tag = "teams",
    responses((status = 200, description = "The teams, by id", body = TeamList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<TeamList>, ApiError> {
    Ok(Json(teams_of(state.store.as_ref(), &who.tenant).await?))
}

/// Create a team (audited as `team.create`).
#[utoipa::path(post, path = "/v1/teams", tag = "teams", request_body = CreateTeam,
    responses(
        (status = 201, description = "The new team", body = TeamView),
        (status = 400, description = "A bad id, name or member list", body = ErrorBody),
        (status = 409, description = "The id is taken", body = ErrorBody),
        (status = 422, description = "An agent the tenant lacks (`agent.unknown`), or not this route's shape", body = ErrorBody),
    ))]
pub async fn create_route(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<CreateTeam>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    let team = create(state.store.as_ref(), &actor, b).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// One team.
#[utoipa::path(get, path = "/v1/teams/{id}", tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team", body = TeamView),
        (status = 404, description = "No such team (`team.not_found`)", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TeamView>, ApiError> {
    Ok(Json(one(state.store.as_ref(), &who.tenant, &id).await?))
}

/// Change a team's name, lead or members (audited as `team.update`).
#[utoipa::path(patch, path = "/v1/teams/{id}", tag = "teams", request_body = UpdateTeam,
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team as changed", body = TeamView),
        (status = 400, description = "A bad name or member list", body = ErrorBody),
        (status = 404, description = "No such team (`team.not_found`)", body = ErrorBody),
        (status = 422, description = "An agent the tenant lacks (`agent.unknown`), or not this route's shape", body = ErrorBody),
    ))]
pub async fn update_route(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    Body(b): Body<UpdateTeam>,
) -> Result<Json<TeamView>, ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    Ok(Json(update(state.store.as_ref(), &actor, &id, b).await?))
}

/// Delete a team with its task board and mailbox (audited as `team.delete`).
#[utoipa::path(delete, path = "/v1/teams/{id}", tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such team (`team.not_found`)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    delete_team(state.store.as_ref(), &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lists_are_agent_ids_each_once() {
        let ids = |v: &[&str]| {
            agent_ids(
                "members",
                &v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(ids(&["a", "b"]).unwrap().len(), 2);
        let e = ids(&["a", "Not Id"]).unwrap_err();
        assert!(e.message.starts_with("members[1]: "), "{}", e.message);
        let e = ids(&["a", "a"]).unwrap_err();
        assert!(e.message.contains("twice"), "{}", e.message);
        let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("a{i}")).collect();
        assert!(agent_ids("members", &many).is_err());
    }
}
