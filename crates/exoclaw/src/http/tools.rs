//! `POST /v1/tools/invoke`: one tool call through exactly the policy path
//! the agent uses; with `dry_run` the whole path runs and only the decision
//! comes back.

use super::error::ApiError;
use super::openai::start_error;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use exoclaw_core::SessionId;
use exoclaw_gateway::access::Principal;
use exoclaw_tools::InvokeMode;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    tool: String,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// The status that goes with a tool error code.
fn status_of(code: &str) -> StatusCode {
    match code {
        "tool.not_found" | "not_found" => StatusCode::NOT_FOUND,
        "tool.invalid_args" => StatusCode::BAD_REQUEST,
        "tool.rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "tool.timeout" => StatusCode::GATEWAY_TIMEOUT,
        c if c.starts_with("security.") => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub async fn invoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    body: Result<Json<InvokeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
    let mode = if b.dry_run {
        InvokeMode::DryRun
    } else {
        InvokeMode::Execute
    };
    let agent = b.agent.as_deref().unwrap_or("default");
    let args = if b.args.is_null() { json!({}) } else { b.args };
    let call = exoclaw_gateway::runtime::ToolCallRequest {
        agent,
        session: b.session.map(SessionId::new),
        tool: &b.tool,
        args: &args,
        mode,
    };
    let result = state
        .runtime
        .invoke_tool(&who, call, Some(rid.0.clone()))
        .await
        .map_err(start_error)?;
    Ok(match result {
        Ok(_) if b.dry_run => (
            StatusCode::OK,
            Json(json!({"ok": true, "decision": "allow"})),
        ),
        Ok(out) => (
            StatusCode::OK,
            Json(json!({"ok": true, "output": out.content})),
        ),
        Err(e) => (
            status_of(&e.code),
            Json(json!({"ok": false, "error": {"code": e.code, "message": e.message}})),
        ),
    })
}
