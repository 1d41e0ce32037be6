//! `/v1/mcp/servers` and `/v1/mcp/grants`: a tenant's MCP servers (tool
//! sources, see `exoclaw_gateway::mcp`) and who may use their tools. A
//! server is validated before anything is stored (`mcp.invalid_server` with
//! the reason); secret values go to the vault and are never returned; its
//! tools (`<server>__<tool>`) are offered to nobody until granted. Every
//! change is audited.

pub mod server;

use super::error::{ApiError, ErrorCode};
use super::extract::{Body, Path, Query};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::store::{ToolGrant, ToolSourceKind};
use exoclaw_core::{AgentId, Secret, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::mcp::{McpError, McpServerDef, ServerState, ServerView, Transport};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// An MCP server to create or replace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerBody {
    /// The prefix of its tools: lowercase letters, digits, `-`, `_` (at
    /// most 24, no `__`).
    #[schema(example = "files")]
    name: String,
    /// `stdio`, `http` (streamable HTTP) or `sse` (the legacy HTTP+SSE).
    #[schema(value_type = String, example = "stdio")]
    transport: Transport,
    /// stdio: the program and its arguments (no shell), run in the sandbox
    /// with its own directory at `/workspace`.
    #[serde(default)]
    command: Vec<String>,
    /// stdio: environment variables (not secrets).
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// stdio: environment variables with secret values (stored encrypted,
    /// never returned; `""` keeps the stored value).
    #[serde(default)]
    secret_env: BTreeMap<String, String>,
    /// stdio: network through the egress proxy (when the sandbox has it).
    #[serde(default)]
    network: bool,
    /// stdio: address-space limit (default 4096).
    #[serde(default)]
    memory_mb: Option<u64>,
    /// http: the streamable HTTP endpoint; sse: the legacy SSE endpoint.
    #[serde(default)]
    url: Option<String>,
    /// http, sse: request headers (not secrets).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// http, sse: headers with secret values such as `Authorization` (stored
    /// encrypted, never returned; `""` keeps the stored value).
    #[serde(default)]
    secret_headers: BTreeMap<String, String>,
    /// Longest a tool call may take (default 30).
    #[serde(default)]
    timeout_sec: Option<u64>,
}

/// A server, its state and its tools (secret values are never shown).
#[derive(Serialize, ToSchema)]
pub struct ServerViewBody {
    pub name: String,
    #[schema(value_type = String)]
    pub transport: Transport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The names of its secret environment variables and headers.
    pub secrets: Vec<String>,
    /// `starting`, `up`, `down`; absent where no gateway runs it (the CLI).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub state: Option<ServerState>,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its tools as offered (`<server>__<tool>`).
    pub tools: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ServerList {
    pub servers: Vec<ServerViewBody>,
}

/// Who may use a server's tools.
#[derive(Deserialize, Serialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// The server's name.
    pub server: String,
    /// An agent's id, or `*` for every agent of the tenant.
    pub agent: String,
    /// Only this user (default: every user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantBody>,
}

impl From<McpError> for ApiError {
    fn from(e: McpError) -> Self {
        match e {
            McpError::Invalid(why) => Self::new(ErrorCode::McpInvalidServer, why),
            McpError::NotFound(_) => Self::not_found(),
            McpError::Store(e) => e.into(),
            McpError::Vault(e) => e.into(),
        }
    }
}

pub fn view(v: ServerView) -> ServerViewBody {
    let status = v.status;
    ServerViewBody {
        secrets: v.def.secret_names().cloned().collect(),
        name: v.def.name,
        transport: v.def.transport,
        command: v.def.command,
        url: v.def.url,
        state: status.as_ref().map(|s| s.state),
        error: status.as_ref().and_then(|s| s.error.clone()),
        tools: status.map(|s| s.tools).unwrap_or_default(),
        created_at: v.created_at,
        updated_at: v.updated_at,
    }
}

/// A body as the definition and the secret values to store.
pub fn parts(b: ServerBody) -> (McpServerDef, BTreeMap<String, Secret>) {
    let mut secrets = BTreeMap::new();
    for (k, v) in b.secret_env.iter().chain(&b.secret_headers) {
        if !v.is_empty() {
            secrets.insert(k.clone(), Secret::new(v.clone()));
        }
    }
    let def = McpServerDef {
        name: b.name,
        transport: b.transport,
        command: b.command,
        env: b.env,
        secret_env: b.secret_env.into_keys().collect(),
        network: b.network,
        memory_mb: b.memory_mb,
        url: b.url,
        headers: b.headers,
        secret_headers: b.secret_headers.into_keys().collect(),
        timeout_sec: b.timeout_sec,
    };
    (def, secrets)
}

/// The tenant's MCP servers with their state and tools.
#[utoipa::path(get, path = "/v1/mcp/servers", tag = "mcp",
    responses((status = 200, description = "The servers", body = ServerList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<ServerList>, ApiError> {
    let servers = state.runtime.mcp.list(&who.tenant).await?;
    Ok(Json(ServerList {
        servers: servers.into_iter().map(view).collect(),
    }))
}

/// Create or replace an MCP server and (re)start it; it connects in the
/// background (audited as `mcp.server.put`, without secret values).
#[utoipa::path(post, path = "/v1/mcp/servers", tag = "mcp", request_body = ServerBody,
    responses(
        (status = 200, description = "Stored; connecting", body = ServerViewBody),
        (status = 400, description = "`mcp.invalid_server`, with the reason",
            body = super::error::ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<ServerBody>,
) -> Result<Json<ServerViewBody>, ApiError> {
    let (def, secrets) = parts(b);
    let name = def.name.clone();
    let stored = state
        .runtime
        .mcp
        .put(
            &state.vault,
            &who.tenant,
            def,
            secrets,
            exoclaw_core::now_ms(),
        )
        .await?;
    audit(&state, &who, &rid, "mcp.server.put", &name, json!({})).await;
    Ok(Json(view(stored)))
}

/// Stop and delete an MCP server, its grants and its secrets (audited as
/// `mcp.server.delete`).
#[utoipa::path(delete, path = "/v1/mcp/servers/{name}", tag = "mcp",
    params(("name" = String, Path, description = "The server's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such server", body = super::error::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .mcp
        .remove(&state.vault, &who.tenant, &name)
        .await?;
    audit(&state, &who, &rid, "mcp.server.delete", &name, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

pub fn grant_of(tenant: &TenantId, g: &GrantBody) -> ToolGrant {
    ToolGrant {
        tenant_id: tenant.clone(),
        kind: ToolSourceKind::Mcp,
        source: g.server.clone(),
        agent: AgentId::from(g.agent.as_str()),
        user: g.user.as_deref().map(UserId::from),
    }
}

pub fn grant_view(g: ToolGrant) -> GrantBody {
    GrantBody {
        server: g.source,
        agent: g.agent.as_str().to_owned(),
        user: g.user.map(|u| u.as_str().to_owned()),
    }
}

/// Who may use which server's tools.
#[utoipa::path(get, path = "/v1/mcp/grants", tag = "mcp",
    responses((status = 200, description = "The grants", body = GrantList)))]
pub async fn grants(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<GrantList>, ApiError> {
    let grants = state.runtime.mcp.grants(&who.tenant).await?;
    Ok(Json(GrantList {
        grants: grants.into_iter().map(grant_view).collect(),
    }))
}

/// Grant a server's tools to an agent (and optionally only one user);
/// again: no change (audited as `mcp.grant.add`).
#[utoipa::path(post, path = "/v1/mcp/grants", tag = "mcp", request_body = GrantBody,
    responses(
        (status = 204, description = "Granted"),
        (status = 400, description = "`mcp.invalid_server`: no such agent",
            body = super::error::ErrorBody),
        (status = 404, description = "No such server", body = super::error::ErrorBody),
    ))]
pub async fn grant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<GrantBody>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .mcp
        .set_grant(&grant_of(&who.tenant, &b), true)
        .await?;
    let detail = json!({"agent": b.agent, "user": b.user});
    audit(&state, &who, &rid, "mcp.grant.add", &b.server, detail).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke a grant (audited as `mcp.grant.delete`).
#[utoipa::path(delete, path = "/v1/mcp/grants", tag = "mcp", params(GrantBody),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such grant", body = super::error::ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Query(q): Query<GrantBody>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .mcp
        .set_grant(&grant_of(&who.tenant, &q), false)
        .await?;
    let detail = json!({"agent": q.agent, "user": q.user});
    audit(&state, &who, &rid, "mcp.grant.delete", &q.server, detail).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(
    state: &AppState,
    who: &Principal,
    rid: &RequestId,
    action: &str,
    name: &str,
    detail: serde_json::Value,
) {
    super::orchestration::audit(
        state.store.as_ref(),
        &super::orchestration::Actor::of(who, Some(rid.0.clone())),
        action,
        format!("mcp:{name}"),
        None,
        detail,
    )
    .await;
}
