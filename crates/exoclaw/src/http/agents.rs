//! `/v1/agents`: create, list, read, update and delete agents.

use super::AppState;
use super::auth::Principal;
use super::error::ApiError;
use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use exoclaw_core::AgentId;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{Agent, AgentType, AgentUpdate, NewAgent};
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

pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
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
    Path(id): Path<String>,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body?;
    check_config(b.config.as_ref())?;
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
    Ok(Json(agent_json(&agent)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_agent(&who.tenant, &AgentId::new(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
