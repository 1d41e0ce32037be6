//! `POST /mcp`: the gateway as an MCP server over streamable HTTP, for IDEs
//! and other MCP clients, authenticated like every route (the gateway token,
//! an API key, a paired device). It is stateless (no `Mcp-Session-Id`, no
//! server-sent stream: every request is answered with one JSON-RPC
//! response; `GET` answers 405) and offers:
//!
//! - `chat_with_<agent>` for each agent of the caller's tenant (with the
//!   `chat` permission): one turn of that agent, as `/v1/chat/completions`
//!   would run it (channel `mcp`);
//! - the tools the caller may invoke (with `tools.invoke`): the `default`
//!   agent's, each call through the same policy path as `/v1/tools/invoke`.

use super::super::error::ApiError;
use super::super::extract::Body;
use super::super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use exoclaw_core::agent::Finish;
use exoclaw_gateway::access::{Permission, Principal};
use exoclaw_gateway::runtime::turn::Inbound;
use exoclaw_gateway::runtime::{ToolCallRequest, TurnEnd};
use exoclaw_tools::InvokeMode;
use serde_json::{Value, json};

/// Versions of the protocol this server speaks; a client asking for
/// another gets the newest.
const VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The prefix of the agents' tools.
const CHAT_PREFIX: &str = "chat_with_";
/// The agent whose tools (and policy) the tools are offered under.
const TOOLS_AGENT: &str = "default";

fn reply(id: &Value, result: Value) -> Response {
    let mut body = json!({"jsonrpc": "2.0", "id": id});
    body["result"] = result;
    Json(body).into_response()
}

fn fail(id: &Value, code: i64, message: &str) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))
        .into_response()
}

fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

/// One JSON-RPC message from an MCP client.
#[utoipa::path(post, path = "/mcp", tag = "mcp",
    request_body(content = Object, description = "One JSON-RPC 2.0 message (MCP)"),
    responses(
        (status = 200, description = "The JSON-RPC response", body = Object),
        (status = 202, description = "A notification or response was accepted"),
        (status = 400, description = "Not a JSON-RPC message (an object)", body = super::super::error::ErrorBody),
    ))]
pub async fn handle(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(msg): Body<Value>,
) -> Result<Response, ApiError> {
    if !msg.is_object() {
        return Err(ApiError::invalid(
            "a JSON-RPC message is a JSON object (batches are not supported)",
        ));
    }
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        // A response to something we never asked: accepted, ignored.
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    let Some(id) = msg.get("id").cloned() else {
        // A notification (`notifications/initialized`, a cancellation).
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    Ok(match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked
                .filter(|v| VERSIONS.contains(v))
                .or(VERSIONS.last().copied())
                .unwrap_or("2025-06-18");
            reply(
                &id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "exoclaw", "version": exoclaw_gateway::version::VERSION},
                    "instructions": "chat_with_<agent> asks an agent of this gateway; the other tools run through the gateway's tool policy."
                }),
            )
        }
        "ping" => reply(&id, json!({})),
        "tools/list" => reply(&id, json!({ "tools": tools(&state, &who).await })),
        "tools/call" => {
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return Ok(fail(&id, -32602, "params.name: the tool to call"));
            };
            let args = params
                .get("arguments")
                .cloned()
                .unwrap_or_else(|| json!({}));
            reply(&id, call(&state, &who, &rid, name, &args).await)
        }
        _ => fail(&id, -32601, "method not found"),
    })
}

/// What the caller may use: its tenant's agents as `chat_with_<agent>`
/// (permission `chat`), the default agent's tools (permission
/// `tools.invoke`).
async fn tools(state: &AppState, who: &Principal) -> Vec<Value> {
    let mut out = Vec::new();
    if who.can(Permission::Chat)
        && let Ok(agents) = state.store.list_agents(&who.tenant).await
    {
        for a in agents {
            out.push(json!({
                "name": format!("{CHAT_PREFIX}{}", a.id),
                "description": format!("Ask the agent {:?} ({}) and get its answer.", a.id.as_str(), a.display_name),
                "inputSchema": {
                    "type": "object",
                    "properties": {"message": {"type": "string", "description": "what to ask"}},
                    "required": ["message"]
                }
            }));
        }
    }
    if who.can(Permission::ToolsInvoke)
        && let Ok(agent) = state.runtime.agent(who, TOOLS_AGENT).await
    {
        let policy = state.runtime.tool_policy(&agent);
        for spec in state
            .runtime
            .tools
            .specs_for(&who.tenant, &agent.id, &policy)
            .iter()
        {
            out.push(json!({
                "name": spec.name,
                "description": spec.description,
                "inputSchema": spec.parameters,
            }));
        }
    }
    out
}

async fn call(
    state: &AppState,
    who: &Principal,
    rid: &RequestId,
    name: &str,
    args: &Value,
) -> Value {
    if let Some(agent) = name.strip_prefix(CHAT_PREFIX) {
        if !who.can(Permission::Chat) {
            return text_result("auth.forbidden: chatting needs the chat permission", true);
        }
        let Some(message) = args.get("message").and_then(Value::as_str) else {
            return text_result("arguments.message: what to ask", true);
        };
        return chat(state, who, rid, agent, message).await;
    }
    if !who.can(Permission::ToolsInvoke) {
        return text_result(
            "auth.forbidden: tools need the tools.invoke permission",
            true,
        );
    }
    let request = ToolCallRequest {
        agent: TOOLS_AGENT,
        session: None,
        tool: name,
        args,
        mode: InvokeMode::Execute,
    };
    match state
        .runtime
        .invoke_tool(who, request, Some(rid.0.clone()))
        .await
    {
        Ok(Ok(out)) => text_result(&out.content, false),
        Ok(Err(e)) => text_result(&format!("{}: {}", e.code, e.message), true),
        Err(e) => text_result(&e.to_string(), true),
    }
}

async fn chat(
    state: &AppState,
    who: &Principal,
    rid: &RequestId,
    agent: &str,
    message: &str,
) -> Value {
    let inbound = state
        .runtime
        .receive(
            who,
            agent,
            "mcp",
            "mcp",
            message.to_owned(),
            Some(rid.0.clone()),
        )
        .await;
    let mut turn = match inbound {
        Ok(Inbound::Turn(t)) => t,
        Ok(Inbound::Stopped(s)) => return text_result(&s.message(), false),
        Ok(Inbound::Replied(text)) => return text_result(&text, false),
        Err(e) => return text_result(&e.to_string(), true),
    };
    while turn.events.recv().await.is_some() {}
    match turn.end().await {
        TurnEnd::Ran(o) => match &o.finish {
            Finish::Failed { code, message } => text_result(&format!("{code}: {message}"), true),
            _ => text_result(&o.text, false),
        },
        TurnEnd::Broken { code, message } => text_result(&format!("{code}: {message}"), true),
    }
}
