//! `POST /v1/tools/invoke`: one tool call through exactly the policy path
//! the agent uses; with `dry_run` the whole path runs and only the decision
//! comes back. A refused or failed call answers `{"ok": false, "error"}`
//! with the status of its code ([`ErrorCode::tool_status`]).

use super::error::{ErrorCode, ErrorDetail};
use super::extract::Body;
use super::openai::start_error;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::SessionId;
use exoclaw_gateway::access::Principal;
use exoclaw_tools::InvokeMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One tool call.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeBody {
    /// The tool's name (`read_file`, `exec`, ...).
    #[schema(example = "list_files")]
    tool: String,
    /// The tool's arguments (its JSON schema); `null` is `{}`.
    #[serde(default)]
    args: Value,
    /// The agent whose policy and workspace apply (default `default`).
    #[serde(default)]
    agent: Option<String>,
    /// The session the call belongs to (its rate limit, its approvals).
    #[serde(default)]
    session: Option<String>,
    /// Run every check but not the tool.
    #[serde(default)]
    dry_run: bool,
}

/// The tool's answer, or its refusal.
#[derive(Serialize, ToSchema)]
pub struct Invoked {
    pub ok: bool,
    /// With `dry_run`: `allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = decision_words)]
    pub decision: Option<&'static str>,
    /// The tool's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why the call was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

fn decision_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["allow"])
}

/// Invoke a tool through the agent's policy path (allow/deny lists,
/// argument checks, approvals, rate limits, audit).
#[utoipa::path(post, path = "/v1/tools/invoke", tag = "tools", request_body = InvokeBody,
    responses(
        (status = 200, description = "The output (or, with `dry_run`, the decision)", body = Invoked),
        (status = 400, description = "`tool.invalid_args` (`ok: false`), or a bad request", body = Invoked),
        (status = 403, description = "A security policy refused the call (`security.*`)", body = Invoked),
        (status = 404, description = "No such tool, agent or session", body = Invoked),
        (status = 422, description = "The tool failed (`tool.*`, `egress.*`), or the body is not an invocation", body = Invoked),
        (status = 429, description = "`tool.rate_limited`, or the gateway's rate limit", body = Invoked),
        (status = 504, description = "The tool did not finish in time", body = Invoked),
    ))]
pub async fn invoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<InvokeBody>,
) -> Result<(StatusCode, Json<Invoked>), super::error::ApiError> {
    let mode = if b.dry_run {
        InvokeMode::DryRun
    } else {
        InvokeMode::Execute
    };
    let agent = b.agent.as_deref().unwrap_or("default");
    let args = if b.args.is_null() {
        Value::Object(serde_json::Map::new())
    } else {
        b.args
    };
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
    let ok = |decision, output| Invoked {
        ok: true,
        decision,
        output,
        error: None,
    };
    Ok(match result {
        Ok(_) if b.dry_run => (StatusCode::OK, Json(ok(Some("allow"), None))),
        Ok(out) => (StatusCode::OK, Json(ok(None, Some(out.content)))),
        Err(e) => {
            let code = ErrorCode::of_tool_error(&e.code);
            let refused = Invoked {
                ok: false,
                decision: None,
                output: None,
                error: Some(ErrorDetail {
                    code,
                    message: e.message,
                }),
            };
            (code.tool_status(), Json(refused))
        }
    })
}
