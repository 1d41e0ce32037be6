//! The OpenAI-compatible API: `POST /v1/chat/completions` (the `model` is an
//! agent id, the `user` field scopes the session, the whole agent loop runs
//! server-side) and `GET /v1/models` (the agents). Works with the official
//! `openai` SDKs, streaming or not.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::Body;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use exoclaw_core::AgentId;
use exoclaw_core::agent::{AgentEvent, Finish, RunOutcome};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::turn::Inbound;
use exoclaw_gateway::runtime::{StartError, Turn, TurnEnd};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// An OpenAI chat completion request. Fields the gateway does not use
/// (`temperature`, `tools`, ...) are accepted and ignored: the agent's
/// configuration decides.
#[derive(Deserialize, ToSchema)]
pub struct CompletionRequest {
    /// The agent's id (`GET /v1/models`).
    #[schema(example = "default")]
    model: String,
    /// Only the newest `user` message is read: the history lives in the
    /// gateway's session.
    #[schema(example = json!([{"role": "user", "content": "hello"}]))]
    messages: Vec<InMessage>,
    /// Answer as server-sent events (`text/event-stream`).
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// Scopes the session (one per agent and user); at most 256 characters.
    #[serde(default)]
    #[schema(max_length = 256)]
    user: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct InMessage {
    /// `system`, `user`, `assistant` or `tool`.
    role: String,
    /// A string, or content parts (their `text` is read).
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    #[serde(default)]
    include_usage: bool,
}

/// An OpenAI chat completion.
#[derive(Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-` and the request id.
    pub id: String,
    #[schema(schema_with = completion_words)]
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: CompletionUsage,
}

fn completion_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["chat.completion"])
}

#[derive(Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// Always `stop`.
    pub finish_reason: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    pub content: String,
}

#[derive(Serialize, ToSchema)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    /// Present and `true` when a provider of the run reported no usage and
    /// the counts include the gateway's estimate (an extension: OpenAI
    /// clients ignore it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

/// One server-sent event of a streamed completion (the schema of each
/// event, for the document: the stream is written by [`stream_response`]).
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the events; never built")]
pub struct StreamEvent {
    /// A `chat.completion.chunk` as JSON (the last one, with
    /// `stream_options.include_usage`, has `usage` and no choices), an
    /// `{"error": {"message", "type", "code"}}` when the run failed, and
    /// `[DONE]` last.
    data: String,
}

/// One server-sent event of a streamed completion.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<CompletionUsage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

/// The error event that ends a failed stream (OpenAI's shape).
#[derive(Serialize)]
struct StreamError<'a> {
    error: StreamErrorDetail<'a>,
}

#[derive(Serialize)]
struct StreamErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
}

/// The agents, as OpenAI models.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    #[schema(schema_with = list_words)]
    pub object: &'static str,
    pub data: Vec<ModelView>,
}

fn list_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["list"])
}

/// An agent as an OpenAI model.
#[derive(Serialize, ToSchema)]
pub struct ModelView {
    #[schema(value_type = String)]
    pub id: AgentId,
    #[schema(schema_with = model_words)]
    pub object: &'static str,
    /// Unix seconds.
    pub created: i64,
    pub owned_by: &'static str,
}

fn model_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["model"])
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

/// A run that did not run to an end of its own, as an API error.
fn broken(code: &str, message: String) -> ApiError {
    match code {
        "server.busy" => ApiError::new(ErrorCode::ServerBusy, message),
        "cancelled" => ApiError::new(ErrorCode::Cancelled, message),
        _ => ApiError::internal(message),
    }
}

pub fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::NoAgent(id) => ApiError::new(
            ErrorCode::ModelNotFound,
            format!("no agent {id:?}; GET /v1/models lists them"),
        ),
        StartError::NoProvider(m) => ApiError::new(ErrorCode::ProviderNotConfigured, m),
        StartError::Store(e) => e.into(),
        StartError::Workspace(m) => ApiError::internal(m),
        e @ StartError::InjectionBlocked(_) => {
            ApiError::new(ErrorCode::SecurityInjectionBlocked, e.to_string())
        }
        e @ StartError::Disabled(_) => ApiError::new(ErrorCode::AgentDisabled, e.to_string()),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn usage_of(o: &RunOutcome) -> CompletionUsage {
    CompletionUsage {
        prompt_tokens: o.usage.input_tokens,
        completion_tokens: o.usage.output_tokens,
        total_tokens: o.usage.input_tokens + o.usage.output_tokens,
        prompt_tokens_details: PromptTokensDetails {
            cached_tokens: o.usage.cache_read_tokens,
        },
        estimated: o.usage.estimated,
    }
}

/// Run the agent named by `model` on the newest user message, as OpenAI's
/// chat completions (streaming or not).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "chat", request_body = CompletionRequest,
    responses(
        (status = 200, description = "The agent's answer; with `stream: true`, server-sent \
            `chat.completion.chunk` events ending with `data: [DONE]` (a failed run sends an \
            `error` event before it)",
            content(
                (ChatCompletion = "application/json"),
                (StreamEvent = "text/event-stream"),
            )),
        (status = 404, description = "`model` names no agent (`model_not_found`)", body = ErrorBody),
        (status = 429, description = "The tenant has `gateway.max_requests_per_tenant` requests or \
            `gateway.max_runs_per_tenant` runs in progress (`tenant.busy`, `Retry-After: 1`)", body = ErrorBody),
        (status = 502, description = "The provider failed or the egress policy refused it", body = ErrorBody),
        (status = 504, description = "The provider did not answer in time", body = ErrorBody),
    ))]
pub async fn completions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(req): Body<CompletionRequest>,
) -> Result<Response, ApiError> {
    let input = input_of(&req.messages)?;
    let peer = req.user.clone().unwrap_or_else(|| "default".to_owned());
    if peer.len() > 256 {
        return Err(ApiError::invalid("user: at most 256 characters"));
    }
    let quota = &state.quotas.runs_per_tenant;
    let run_place = quota
        .try_hold(who.tenant.as_str())
        .ok_or_else(|| super::state::quota_refused(&state, quota))?;
    let inbound = state
        .runtime
        .receive(&who, &req.model, "api", &peer, input, Some(rid.0.clone()))
        .await
        .map_err(start_error)?;
    let id = format!("chatcmpl-{}", rid.0);
    let turn = match inbound {
        Inbound::Turn(t) => t,
        // `/stop`, `/stopall`: the answer says what stopped.
        Inbound::Stopped(stopped) => {
            return Ok(command_reply(id, req.model, req.stream, &stopped.message()));
        }
        Inbound::Replied(text) => return Ok(command_reply(id, req.model, req.stream, &text)),
    };
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        let cancel_on_disconnect = state.runtime.settings.config.gateway.cancel_on_disconnect;
        return Ok(stream_response(
            turn,
            id,
            req.model,
            include_usage,
            cancel_on_disconnect,
            run_place,
        )
        .into_response());
    }
    let mut turn = turn;
    while turn.events.recv().await.is_some() {}
    let ended = turn.end().await;
    drop(run_place);
    let outcome = match ended {
        TurnEnd::Ran(o) => o,
        TurnEnd::Broken { code, message } => return Err(broken(code, message)),
    };
    if let Finish::Failed { code, message } = &outcome.finish {
        return Err(ApiError::new(
            ErrorCode::of_run_failure(code),
            message.clone(),
        ));
    }
    let usage = usage_of(&outcome);
    Ok(Json(ChatCompletion {
        id,
        object: "chat.completion",
        created: unix_now(),
        model: req.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: outcome.text,
            },
            finish_reason: "stop",
        }],
        usage,
    })
    .into_response())
}

/// The answer to a chat command: a completion (or a stream of one chunk)
/// whose text says what happened, with no usage.
fn command_reply(id: String, model: String, stream: bool, text: &str) -> Response {
    let created = unix_now();
    if stream {
        let first = data(&Chunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &model,
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some(text),
                },
                finish_reason: Some("stop"),
            }],
            usage: None,
        });
        let events = [first, Event::default().data("[DONE]")].map(Ok::<_, Infallible>);
        return Sse::new(futures_util::stream::iter(events)).into_response();
    }
    Json(ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: text.to_owned(),
            },
            finish_reason: "stop",
        }],
        usage: CompletionUsage {
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: 0 },
            estimated: false,
        },
    })
    .into_response()
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
    /// The run's place under `gateway.max_runs_per_tenant`, freed when the
    /// stream ends (or its client goes).
    run_place: Option<super::quota::Held>,
}

fn chunk(s: &StreamState, delta: Delta<'_>, finish: Option<&'static str>) -> Event {
    data(&Chunk {
        id: &s.id,
        object: "chat.completion.chunk",
        created: s.created,
        model: &s.model,
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
        }],
        usage: None,
    })
}

/// An event whose data is `value` as JSON.
fn data(value: &impl Serialize) -> Event {
    // Serializing these types cannot fail (no maps with non-string keys).
    Event::default().data(serde_json::to_string(value).unwrap_or_default())
}

fn stream_response(
    turn: Turn,
    id: String,
    model: String,
    include_usage: bool,
    cancel_on_disconnect: bool,
    run_place: super::quota::Held,
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
        run_place: Some(run_place),
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if s.finished {
            return None;
        }
        if !s.started {
            s.started = true;
            let delta = Delta {
                role: Some("assistant"),
                content: Some(""),
            };
            let first = chunk(&s, delta, None);
            return Some((vec![first], s));
        }
        loop {
            match s.turn.events.recv().await {
                Some(AgentEvent::TextDelta(d)) => {
                    let delta = Delta {
                        role: None,
                        content: Some(&d),
                    };
                    let e = chunk(&s, delta, None);
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
        let ended = s.turn.end().await;
        s.run_place = None;
        match ended {
            TurnEnd::Ran(o) => match &o.finish {
                Finish::Complete => {
                    out.push(chunk(&s, Delta::default(), Some("stop")));
                    if s.include_usage {
                        out.push(data(&Chunk {
                            id: &s.id,
                            object: "chat.completion.chunk",
                            created: s.created,
                            model: &s.model,
                            choices: Vec::new(),
                            usage: Some(usage_of(&o)),
                        }));
                    }
                }
                Finish::Cancelled => out.push(error_event("cancelled", "the run was cancelled")),
                Finish::Failed { code, message } => out.push(error_event(code, message)),
            },
            TurnEnd::Broken { code, message } => out.push(error_event(code, &message)),
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
    data(&StreamError {
        error: StreamErrorDetail {
            message,
            kind: "exoclaw_error",
            code,
        },
    })
}

/// The agents, as OpenAI models.
#[utoipa::path(get, path = "/v1/models", tag = "chat",
    responses((status = 200, description = "The tenant's agents", body = ModelList)))]
pub async fn models(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<ModelList>, ApiError> {
    let agents = state.store.list_agents(&who.tenant).await?;
    let data = agents
        .into_iter()
        .map(|a| ModelView {
            id: a.id,
            object: "model",
            created: a.created_at / 1000,
            owned_by: "exoclaw",
        })
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}
