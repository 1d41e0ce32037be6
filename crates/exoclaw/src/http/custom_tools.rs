//! `/v1/tools/custom`: tools a tenant defines at run time, a command
//! template run in the sandbox (see `exoclaw_tools::custom`). A definition
//! is validated before anything is stored (`tool.invalid_definition` with
//! the reason); secret environment values go to the vault and are never
//! returned; a tool is offered only to the agents it is granted to. Every
//! change is audited.

use super::error::{ApiError, ErrorCode};
use super::extract::{Body, Path};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::{AgentId, Secret};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::custom_tools::{CustomToolError, CustomToolView as View};
use exoclaw_tools::custom::CustomToolDef;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A custom tool to create or replace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomToolBody {
    /// Letters, digits, `_` and `-` (at most 64, no `__`); not a built-in
    /// tool's name.
    #[schema(example = "grep_notes")]
    name: String,
    /// What the tool does, for the model.
    description: String,
    /// JSON Schema (draft 2020-12) of the arguments: an object schema.
    #[schema(value_type = Object)]
    parameters: Value,
    /// The program (a literal), then its arguments; `{arg}` in a word is
    /// replaced by the argument `arg` and the word stays one argument
    /// (never a shell string). `{{`, `}}`: literal braces.
    #[schema(example = json!(["grep", "-n", "--", "{pattern}", "notes.md"]))]
    command: Vec<String>,
    /// Environment variables set from arguments: name -> template.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Environment variables with secret values, stored encrypted in the
    /// vault and never returned: name -> value (`""` keeps the stored
    /// value).
    #[serde(default)]
    secret_env: BTreeMap<String, String>,
    /// At most the sandbox's `timeout_sec`.
    #[serde(default)]
    timeout_sec: Option<u64>,
    /// The agents it is offered to (`*`: every agent). Empty: none.
    #[serde(default)]
    agents: Vec<String>,
}

/// A custom tool (secret values are never shown).
#[derive(Serialize, ToSchema)]
pub struct CustomToolView {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub parameters: Value,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The names of the secret environment variables.
    pub secret_env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
    /// The agents it is offered to.
    pub agents: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CustomToolList {
    pub tools: Vec<CustomToolView>,
}

pub fn view(v: View) -> CustomToolView {
    CustomToolView {
        name: v.def.name,
        description: v.def.description,
        parameters: v.def.parameters,
        command: v.def.command,
        env: v.def.env,
        secret_env: v.def.secret_env,
        timeout_sec: v.def.timeout_sec,
        agents: v
            .agents
            .into_iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        created_at: v.created_at,
        updated_at: v.updated_at,
    }
}

impl From<CustomToolError> for ApiError {
    fn from(e: CustomToolError) -> Self {
        match e {
            CustomToolError::Invalid(why) => Self::new(ErrorCode::ToolInvalidDefinition, why),
            CustomToolError::NameTaken(why) => Self::new(ErrorCode::ToolNameTaken, why),
            CustomToolError::NotFound(_) => Self::not_found(),
            CustomToolError::Store(e) => e.into(),
            CustomToolError::Vault(e) => e.into(),
        }
    }
}

/// The tenant's custom tools.
#[utoipa::path(get, path = "/v1/tools/custom", tag = "tools",
    responses((status = 200, description = "The custom tools", body = CustomToolList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<CustomToolList>, ApiError> {
    let tools = state.runtime.custom_tools.list(&who.tenant).await?;
    Ok(Json(CustomToolList {
        tools: tools.into_iter().map(view).collect(),
    }))
}

/// Create or replace a custom tool and grant it to `agents` (audited as
/// `tool.custom.put`, without secret values).
#[utoipa::path(post, path = "/v1/tools/custom", tag = "tools", request_body = CustomToolBody,
    responses(
        (status = 200, description = "Stored and offered to its agents", body = CustomToolView),
        (status = 400, description = "`tool.invalid_definition`: the schema, the template or \
            another field is refused, with the reason", body = super::error::ErrorBody),
        (status = 409, description = "`tool.name_taken`: a built-in tool's name",
            body = super::error::ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<CustomToolBody>,
) -> Result<Json<CustomToolView>, ApiError> {
    let agent_names = b.agents.clone();
    let (def, secrets, agents) = parts(b);
    let name = def.name.clone();
    let stored = state
        .runtime
        .custom_tools
        .put(
            &state.vault,
            &who.tenant,
            def,
            secrets,
            agents,
            exoclaw_core::now_ms(),
        )
        .await?;
    audit(&state, &who, &rid, "tool.custom.put", &name, &agent_names).await;
    Ok(Json(view(stored)))
}

/// A body as the definition, the secret values to store and the grants.
pub fn parts(b: CustomToolBody) -> (CustomToolDef, BTreeMap<String, Secret>, Vec<AgentId>) {
    let def = CustomToolDef {
        name: b.name,
        description: b.description,
        parameters: b.parameters,
        command: b.command,
        env: b.env,
        secret_env: b.secret_env.keys().cloned().collect(),
        timeout_sec: b.timeout_sec,
    };
    let secrets: BTreeMap<String, Secret> = b
        .secret_env
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, Secret::new(v)))
        .collect();
    let agents = b.agents.iter().map(|a| AgentId::from(a.as_str())).collect();
    (def, secrets, agents)
}

/// Delete a custom tool, its grants and its secrets (audited as
/// `tool.custom.delete`).
#[utoipa::path(delete, path = "/v1/tools/custom/{name}", tag = "tools",
    params(("name" = String, Path, description = "The tool's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such custom tool", body = super::error::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .custom_tools
        .remove(&state.vault, &who.tenant, &name)
        .await?;
    audit(&state, &who, &rid, "tool.custom.delete", &name, &[]).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(
    state: &AppState,
    who: &Principal,
    rid: &RequestId,
    action: &str,
    name: &str,
    agents: &[String],
) {
    super::orchestration::audit(
        state.store.as_ref(),
        &super::orchestration::Actor::of(who, Some(rid.0.clone())),
        action,
        format!("tool:custom/{name}"),
        None,
        json!({ "agents": agents }),
    )
    .await;
}
