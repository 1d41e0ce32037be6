//! `/v1/agents`: create, list, read, update and delete agents. Changes are
//! audited (`agent.create`, `agent.update` with the fields changed,
//! `agent.delete`).

use super::error::ApiError;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use exoclaw_core::AgentId;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{Agent, AgentType, AgentUpdate, NewAgent, NewAuditEvent};
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn agent_json(a: &Agent) -> Value {
    json!({
        "id": a.id,
        "display_name": a.display_name,
        "agent_type": a.agent_type,
        "config": a.config,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    id: String,
    display_name: Option<String>,
    agent_type: Option<AgentType>,
    config: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    display_name: Option<String>,
    agent_type: Option<AgentType>,
    config: Option<Value>,
}

fn check_config(config: Option<&Value>) -> Result<(), ApiError> {
    match config {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(ApiError::invalid("config: must be a JSON object")),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let agents = state.store.list_agents(&who.tenant).await?;
    Ok(Json(
        json!({"agents": agents.iter().map(agent_json).collect::<Vec<_>>()}),
    ))
}

/// Audits a change to agent `id`.
async fn audit(
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

pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
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
    Ok((StatusCode::CREATED, Json(agent_json(&agent))))
}

pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let agent = state
        .store
        .get_agent(&who.tenant, &AgentId::new(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(agent_json(&agent)))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body?;
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
    Ok(Json(agent_json(&agent)))
}

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
