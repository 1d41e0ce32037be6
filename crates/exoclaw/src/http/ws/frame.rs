//! The WebSocket's frames as types (docs/protocol.md): a request
//! `{"type": "req", "id", "method", "params"}`, its answer `{"type": "res",
//! "id", "ok": true, "result"}` or `{"type": "res", "id", "ok": false,
//! "error": {"code", "message"}}`, and events `{"type": "event", "event",
//! "params"}`; and the results and event parameters of the methods.

use super::super::error::{ApiError, ErrorDetail};
use axum::extract::ws::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A client's request frame.
#[derive(Deserialize)]
pub struct Request {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<Value>,
    pub method: String,
    #[serde(default)]
    pub params: Value,
}

impl Request {
    /// The string parameter `key`, if given as one.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).and_then(Value::as_str)
    }
}

#[derive(Serialize)]
struct Answer<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a Value,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Serialize)]
struct EventFrame<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    params: &'a T,
}

fn text(frame: &impl Serialize) -> Message {
    // These types serialize to JSON whatever their values (string keys only).
    Message::Text(serde_json::to_string(frame).unwrap_or_default().into())
}

/// The answer to request `id`: `result`.
pub fn ok<T: Serialize>(id: &Value, result: &T) -> Message {
    text(&Answer {
        kind: "res",
        id,
        ok: true,
        result: Some(result),
        error: None,
    })
}

/// The answer to request `id`: refused with `e`'s code and message.
pub fn err(id: &Value, e: ApiError) -> Message {
    text(&Answer::<()> {
        kind: "res",
        id,
        ok: false,
        result: None,
        error: Some(ErrorDetail {
            code: e.code,
            message: e.message,
        }),
    })
}

/// An event with `params`.
pub fn event<T: Serialize>(name: &str, params: &T) -> Message {
    text(&EventFrame {
        kind: "event",
        event: name,
        params,
    })
}

/// `{}`: the result of methods that return nothing.
#[derive(Serialize)]
pub struct Empty {}

/// The result of `connect`.
#[derive(Serialize)]
pub struct Connected {
    pub protocol: u64,
    pub server: Server,
}

#[derive(Serialize)]
pub struct Server {
    pub name: &'static str,
    pub version: &'static str,
}

/// The result of `chat.send`.
#[derive(Serialize)]
pub struct Started<'a> {
    pub session_id: &'a exoclaw_core::SessionId,
    pub run_id: &'a str,
}

/// The result of `chat.stop` and `chat.stopall` (and of a `chat.send`
/// whose message was `/stop` or `/stopall`): how many runs of the session
/// were stopped, and how many async delegations and subagents it had
/// started (`chat.stopall` only).
#[derive(Serialize)]
pub struct Stopped<'a> {
    pub session_id: &'a exoclaw_core::SessionId,
    pub stopped: usize,
    pub delegations: usize,
}

/// The result of a `chat.send` whose message was a chat command answered
/// in words (`/handoff clear`).
#[derive(Serialize)]
pub struct Replied<'a> {
    pub text: &'a str,
}

/// The `chat.announce` event: an async delegation or subagent ended, its
/// result entered the session as a turn of the agent, and this is the
/// agent's reply.
#[derive(Serialize)]
pub struct Announce<'a> {
    pub session_id: &'a exoclaw_core::SessionId,
    pub agent: &'a exoclaw_core::AgentId,
    pub delegation_id: &'a str,
    pub status: &'static str,
    pub text: &'a str,
}

/// The result of `sessions.history`: a page, oldest first.
#[derive(Serialize)]
pub struct History {
    pub messages: Vec<super::super::sessions::StoredMessage>,
    /// Pass as `after` for the next page; `null` on the newest.
    pub next_after: Option<i64>,
}

/// The parameters of a run's events: the run, its session, and the event's
/// own fields.
#[derive(Serialize)]
pub struct RunEvent<'a, T> {
    pub run_id: &'a str,
    pub session_id: &'a exoclaw_core::SessionId,
    #[serde(flatten)]
    pub body: T,
}

/// `chat.delta`.
#[derive(Serialize)]
pub struct Delta {
    pub text: String,
}

/// `tool.started`.
#[derive(Serialize)]
pub struct ToolStarted {
    pub call_id: String,
    pub name: String,
}

/// `tool.finished`.
#[derive(Serialize)]
pub struct ToolFinished {
    pub call_id: String,
    pub name: String,
    pub ok: bool,
    pub error_code: Option<String>,
}

/// `chat.notice`.
#[derive(Serialize)]
pub struct Notice {
    pub code: String,
    pub message: String,
}

/// `chat.done`.
#[derive(Serialize)]
pub struct Done {
    pub text: String,
    pub usage: super::super::sessions::UsageView,
    pub cost_micros: i64,
    pub trace_id: String,
}

/// `chat.error`: the run's failure code (as the agent loop gave it) and
/// message; `trace_id` when the run got as far as a trace.
#[derive(Serialize)]
pub struct Failed<'a> {
    pub code: &'a str,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
}
