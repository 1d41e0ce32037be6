//! The OpenAI-compatible API: `POST /v1/chat/completions` (the `model` is an
//! agent id, the `user` field scopes the session, the whole agent loop runs
//! server-side) and `GET /v1/models` (the agents). Works with the official
//! `openai` SDKs, streaming or not.

use super::error::ApiError;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use exoclaw_core::agent::{AgentEvent, Finish, RunOutcome};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::{StartError, Turn, TurnEnd};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Deserialize)]
pub struct CompletionRequest {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The newest user message's text: history lives in the gateway's session.
fn input_of(messages: &[InMessage]) -> Result<String, ApiError> {
    let m = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| ApiError::invalid("messages: no user message"))?;
    let text = match &m.content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    if text.trim().is_empty() {
        return Err(ApiError::invalid(
            "messages: the last user message has no text",
        ));
    }
    Ok(text)
}

pub fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::NoAgent(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("no agent {id:?}; GET /v1/models lists them"),
        ),
        StartError::NoProvider(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider.not_configured",
            m,
        ),
        StartError::Store(e) => e.into(),
        StartError::Workspace(m) => ApiError::internal(m),
        e @ StartError::InjectionBlocked(_) => ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "security.injection_blocked",
            e.to_string(),
        ),
    }
}

/// The HTTP status for a run that ended with `code`.
pub fn failure_status(code: &str) -> StatusCode {
    match code {
        "budget.exceeded" | "provider.rate_limited" | "provider.local_rate_limit" => {
            StatusCode::TOO_MANY_REQUESTS
        }
        "provider.timeout" | "provider.stalled" => StatusCode::GATEWAY_TIMEOUT,
        // The egress policy refused the provider's address: the gateway's
        // configuration, not the request, is at fault.
        "security.ssrf_blocked" | "security.egress_denied" => StatusCode::BAD_GATEWAY,
        c if c.starts_with("provider.") => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn usage_json(o: &RunOutcome) -> Value {
    json!({
        "prompt_tokens": o.usage.input_tokens,
        "completion_tokens": o.usage.output_tokens,
        "total_tokens": o.usage.input_tokens + o.usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": o.usage.cache_read_tokens},
    })
}

pub async fn completions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    body: Result<Json<CompletionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let input = input_of(&req.messages)?;
    let peer = req.user.clone().unwrap_or_else(|| "default".to_owned());
    if peer.len() > 256 {
        return Err(ApiError::invalid("user: at most 256 characters"));
    }
    let turn = state
        .runtime
        .start_turn(&who, &req.model, "api", &peer, input, Some(rid.0.clone()))
        .await
        .map_err(start_error)?;
    let id = format!("chatcmpl-{}", rid.0);
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        let cancel_on_disconnect = state.runtime.settings.config.gateway.cancel_on_disconnect;
        return Ok(
            stream_response(turn, id, req.model, include_usage, cancel_on_disconnect)
                .into_response(),
        );
    }
    let mut turn = turn;
    while turn.events.recv().await.is_some() {}
    let outcome = match turn.end().await {
        TurnEnd::Ran(o) => o,
        TurnEnd::Broken { message } => return Err(ApiError::internal(message)),
    };
    if let Finish::Failed { code, message } = &outcome.finish {
        return Err(ApiError::new(
            failure_status(code),
            leak(code),
            message.clone(),
        ));
    }
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": outcome.text},
            "finish_reason": "stop",
        }],
        "usage": usage_json(&outcome),
    }))
    .into_response())
}

/// Stable codes are a small closed set; `ApiError` wants `'static`.
fn leak(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "budget.exceeded",
        "provider.rate_limited",
        "provider.local_rate_limit",
        "provider.timeout",
        "provider.stalled",
        "provider.unavailable",
        "provider.rejected",
        "provider.auth",
        "provider.malformed",
        "provider.stream_error",
        "provider.not_configured",
        "security.ssrf_blocked",
        "security.egress_denied",
        "agent.max_iterations",
        "agent.compaction_failed",
        "cancelled",
    ];
    KNOWN
        .iter()
        .find(|k| **k == code)
        .copied()
        .unwrap_or("agent.failed")
}

struct StreamState {
    turn: Turn,
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    finished: bool,
    /// Cancels the run if the client goes away before the end.
    guard: Option<tokio_util::sync::DropGuard>,
}

fn chunk(s: &StreamState, delta: &Value, finish: Option<&str>) -> Event {
    Event::default().data(
        json!({
            "id": s.id,
            "object": "chat.completion.chunk",
            "created": s.created,
            "model": s.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string(),
    )
}

fn stream_response(
    turn: Turn,
    id: String,
    model: String,
    include_usage: bool,
    cancel_on_disconnect: bool,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let guard = cancel_on_disconnect.then(|| turn.cancel.clone().drop_guard());
    let state = StreamState {
        turn,
        id,
        model,
        created: unix_now(),
        include_usage,
        started: false,
        finished: false,
        guard,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if s.finished {
            return None;
        }
        if !s.started {
            s.started = true;
            let first = chunk(&s, &json!({"role": "assistant", "content": ""}), None);
            return Some((vec![first], s));
        }
        loop {
            match s.turn.events.recv().await {
                Some(AgentEvent::TextDelta(d)) => {
                    let e = chunk(&s, &json!({"content": d}), None);
                    return Some((vec![e], s));
                }
                Some(_) => continue,
                None => break,
            }
        }
        s.finished = true;
        if let Some(g) = s.guard.take() {
            g.disarm();
        }
        let mut out = Vec::new();
        match s.turn.end().await {
            TurnEnd::Ran(o) => match &o.finish {
                Finish::Complete => {
                    out.push(chunk(&s, &json!({}), Some("stop")));
                    if s.include_usage {
                        out.push(Event::default().data(
                            json!({
                                "id": s.id, "object": "chat.completion.chunk", "created": s.created,
                                "model": s.model, "choices": [], "usage": usage_json(&o),
                            })
                            .to_string(),
                        ));
                    }
                }
                Finish::Cancelled => out.push(error_event("cancelled", "the run was cancelled")),
                Finish::Failed { code, message } => out.push(error_event(code, message)),
            },
            TurnEnd::Broken { message } => out.push(error_event("internal", &message)),
        }
        out.push(Event::default().data("[DONE]"));
        Some((out, s))
    });
    let flat = futures_util::StreamExt::flat_map(events, |batch| {
        futures_util::stream::iter(batch.into_iter().map(Ok::<_, Infallible>))
    });
    Sse::new(flat).keep_alive(KeepAlive::default())
}

fn error_event(code: &str, message: &str) -> Event {
    Event::default().data(
        json!({"error": {"message": message, "type": "exoclaw_error", "code": code}}).to_string(),
    )
}

pub async fn models(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let agents = state.store.list_agents(&who.tenant).await?;
    let data: Vec<Value> = agents
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "object": "model",
                "created": a.created_at / 1000,
                "owned_by": "exoclaw",
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_refused_by_the_egress_policy_is_a_bad_gateway_with_its_code() {
        for code in ["security.ssrf_blocked", "security.egress_denied"] {
            assert_eq!(failure_status(code), StatusCode::BAD_GATEWAY);
            assert_eq!(leak(code), code);
        }
        assert_eq!(leak("security.other"), "agent.failed");
    }
}
