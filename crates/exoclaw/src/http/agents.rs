//! `/v1/agents`: create, list, read, update and delete agents. Changes are
//! audited (`agent.create`, `agent.update` with the fields changed,
//! `agent.delete`).

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Path};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::AgentId;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{Agent, AgentType, AgentUpdate, NewAgent, NewAuditEvent};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// An agent.
#[derive(Serialize, ToSchema)]
pub struct AgentView {
    /// The agent's slug; the `model` of chat completions.
    #[schema(value_type = String)]
    pub id: AgentId,
    pub display_name: String,
    #[schema(schema_with = super::schema::agent_type)]
    pub agent_type: AgentType,
    /// Per-agent settings (provider, model, tool policy, ...).
    #[schema(value_type = Object)]
    pub config: Value,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        Self {
            id: a.id.clone(),
            display_name: a.display_name.clone(),
            agent_type: a.agent_type,
            config: a.config.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// The tenant's agents.
#[derive(Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

impl AgentList {
    pub fn of(agents: &[Agent]) -> Self {
        Self {
            agents: agents.iter().map(AgentView::from).collect(),
        }
    }
}

/// A new agent; unset fields default (`display_name` to the id, `open`,
/// `{}`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// 1-64 lowercase letters, digits, `-` or `_`, starting with a letter or
    /// digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$", example = "research")]
    id: String,
    display_name: Option<String>,
    #[schema(schema_with = super::schema::agent_type_or_null)]
    agent_type: Option<AgentType>,
    /// A JSON object.
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// The fields to change; unset fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    display_name: Option<String>,
    #[schema(schema_with = super::schema::agent_type_or_null)]
    agent_type: Option<AgentType>,
    /// A JSON object; replaces the whole config.
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// The agent's settings are checked like the runtime reads them
/// (`AgentSettings`): an unknown key, a wrong type or a value out of range
/// is refused with its field named (`config.max_iterations: ...`).
fn check_config(config: Option<&Value>) -> Result<(), ApiError> {
    match config {
        None => Ok(()),
        Some(v) => exoclaw_gateway::runtime::agent_settings::AgentSettings::parse(v)
            .map(drop)
            .map_err(|e| ApiError::invalid(e.to_string())),
    }
}

/// List the agents.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, description = "The tenant's agents", body = AgentList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<AgentList>, ApiError> {
    let agents = state.store.list_agents(&who.tenant).await?;
    Ok(Json(AgentList::of(&agents)))
}

/// Audits a change to agent `id`.
pub(super) async fn audit(
    state: &AppState,
    who: &Principal,
    rid: RequestId,
    action: &str,
    id: &AgentId,
    detail: Value,
) {
    let mut event = NewAuditEvent::new(
        who.tenant.clone(),
        who.actor.clone(),
        action,
        format!("agent:{id}"),
        "allow",
    );
    event.request_id = Some(rid.0);
    event.agent_id = Some(id.clone());
    event.detail = detail;
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}

/// Create an agent (audited as `agent.create`).
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgent,
    responses(
        (status = 201, description = "The new agent", body = AgentView),
        (status = 409, description = "An agent with this id exists", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<CreateAgent>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    if !is_valid_slug(&b.id) {
        return Err(ApiError::invalid(
            "id: 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        ));
    }
    check_config(b.config.as_ref())?;
    let agent = state
        .store
        .create_agent(
            &who.tenant,
            &NewAgent {
                display_name: b.display_name.unwrap_or_else(|| b.id.clone()),
                id: AgentId::new(b.id),
                agent_type: b.agent_type.unwrap_or(AgentType::Open),
                config: b.config.unwrap_or_else(|| json!({})),
            },
        )
        .await?;
    let detail = json!({"agent_type": agent.agent_type});
    audit(&state, &who, rid, "agent.create", &agent.id, detail).await;
    Ok((StatusCode::CREATED, Json(AgentView::from(&agent))))
}

/// Read an agent.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 404, description = "No such agent", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    let agent = state
        .store
        .get_agent(&who.tenant, &AgentId::new(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(AgentView::from(&agent)))
}

/// Change an agent (audited as `agent.update` with the fields changed).
#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "agents", request_body = UpdateAgent,
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The changed agent", body = AgentView),
        (status = 404, description = "No such agent", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    Body(b): Body<UpdateAgent>,
) -> Result<Json<AgentView>, ApiError> {
    check_config(b.config.as_ref())?;
    let changed: Vec<&str> = [
        ("display_name", b.display_name.is_some()),
        ("agent_type", b.agent_type.is_some()),
        ("config", b.config.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect();
    let agent = state
        .store
        .update_agent(
            &who.tenant,
            &AgentId::new(id),
            &AgentUpdate {
                display_name: b.display_name,
                agent_type: b.agent_type,
                config: b.config,
            },
        )
        .await?;
    let detail = json!({"changed": changed});
    audit(&state, &who, rid, "agent.update", &agent.id, detail).await;
    Ok(Json(AgentView::from(&agent)))
}

/// Delete an agent (audited as `agent.delete`).
#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such agent", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = AgentId::new(id);
    state.store.delete_agent(&who.tenant, &id).await?;
    audit(&state, &who, rid, "agent.delete", &id, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
