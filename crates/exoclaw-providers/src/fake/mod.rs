//! A fake LLM provider: an HTTP server on `127.0.0.1:0` speaking both wire
//! formats exactly (Anthropic `POST /v1/messages`; OpenAI
//! `POST /chat/completions`, also at `/v1/chat/completions`), streaming SSE
//! or, when the request says `"stream": false`, plain JSON.
//!
//! It answers from a queue of scripted [`Reply`]s (text in N deltas, tool
//! calls incl. parallel ones, usage, and faults: HTTP errors with
//! `retry-after`, malformed SSE, error events, stalls, cut bodies, tiny
//! chunks) and echoes the last user message when the queue is empty. It
//! records every request (auth header values replaced by `***`) and counts
//! response bodies the client dropped before the end.
//!
//! [`FakeProvider::llama_cpp_python_like`] makes the OpenAI side behave as
//! llama-cpp-python's server (`--chat_format chatml-function-calling`)
//! does: no usage in streams; a streamed request offering tools with
//! `tool_choice: "auto"` gets `200 text/event-stream` and an empty body
//! (the server logs "Automatic streaming tool choice is not supported");
//! a streamed request offering tools without `tool_choice` gets the text
//! only (the tools are ignored); a non-streamed answer invents tool-call
//! ids (`call__0_<name>_cmpl-<n>`) and repeats the first call as a legacy
//! `function_call` whose name has a trailing colon.
//!
//! [`FakeProvider::start`] runs it on the current runtime;
//! [`FakeProvider::start_in_thread`] on a thread with its own runtime, for
//! synchronous tests that drive the real binary.

mod script;
mod wire;

pub use script::Reply;
pub use wire::WireFormat;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use exoclaw_core::provider::{StopReason, Usage};
use script::ReplyBody;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::future::IntoFuture;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use wire::{Answer, Segment};

/// Header names whose values are never recorded.
const AUTH_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "proxy-authorization",
    "cookie",
];

/// One request as the fake received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub wire: WireFormat,
    pub path: String,
    /// Lowercase names; values of auth headers are `***`.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    /// Replies for requests naming one model, before the shared queue.
    by_model: Mutex<std::collections::HashMap<String, VecDeque<Reply>>>,
    /// Per model: requests being answered now, and the most at once.
    in_flight: Mutex<std::collections::HashMap<String, (usize, usize)>>,
    requests: Mutex<Vec<RecordedRequest>>,
    api_key: Mutex<Option<String>>,
    disconnects: AtomicUsize,
    completed: AtomicUsize,
    counter: AtomicU64,
    /// Behave as llama-cpp-python's server (see the module doc).
    llama_cpp_python: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Runner {
    Task(tokio::task::JoinHandle<()>),
    Thread {
        shutdown: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

/// A running fake server; dropping it stops the server.
pub struct FakeProvider {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runner: Runner,
}

impl FakeProvider {
    /// Start on the current tokio runtime.
    pub async fn start() -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = router(shared.clone());
        #[expect(
            clippy::disallowed_methods,
            reason = "the fake server's task: FakeProvider holds the handle and aborts it on drop"
        )]
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake provider server failed");
            }
        });
        Ok(Self {
            shared,
            addr,
            runner: Runner::Task(task),
        })
    }

    /// Start on a new thread with its own single-threaded runtime. Returns
    /// the handle and the base URL (`http://127.0.0.1:PORT`).
    pub fn start_in_thread() -> io::Result<(Self, String)> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::default());
        let app = router(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-provider".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "fake provider cannot listen");
                            return;
                        }
                    };
                    let serve = std::pin::pin!(axum::serve(listener, app).into_future());
                    let _ = futures_util::future::select(serve, rx).await;
                });
                // Dropping the runtime here cancels open connections.
            })?;
        let fake = Self {
            shared,
            addr,
            runner: Runner::Thread {
                shutdown: Some(tx),
                thread: Some(thread),
            },
        };
        let url = fake.base_url();
        Ok((fake, url))
    }

    /// `http://127.0.0.1:PORT`: the Anthropic base URL, and an OpenAI base
    /// URL too (`/chat/completions` is served at the root and under `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queue a reply.
    /// Answer OpenAI-format requests as llama-cpp-python's server does
    /// (see the module doc).
    pub fn llama_cpp_python_like(&self) {
        self.shared.llama_cpp_python.store(true, Ordering::SeqCst);
    }

    pub fn push(&self, reply: Reply) {
        lock(&self.shared.replies).push_back(reply);
    }

    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.replies).extend(replies);
    }

    /// Queue a reply for the requests that name `model` (they take these
    /// first, then the shared queue, then the echo): runs of several agents
    /// at once, each on its own model, get their own scripts.
    pub fn push_for(&self, model: &str, reply: Reply) {
        lock(&self.shared.by_model)
            .entry(model.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// The most requests naming `model` that were being answered at once.
    pub fn max_in_flight(&self, model: &str) -> usize {
        lock(&self.shared.in_flight).get(model).map_or(0, |c| c.1)
    }

    /// Requests naming `model` being answered now.
    pub fn in_flight(&self, model: &str) -> usize {
        lock(&self.shared.in_flight).get(model).map_or(0, |c| c.0)
    }

    /// Replies still queued.
    pub fn pending(&self) -> usize {
        lock(&self.shared.replies).len()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// Answer 401 unless the request carries this key (`x-api-key` or
    /// `Authorization: Bearer`); `None` accepts anything.
    pub fn require_api_key(&self, key: Option<&str>) {
        *lock(&self.shared.api_key) = key.map(str::to_owned);
    }

    /// Streaming bodies the client dropped before their end.
    pub fn disconnects(&self) -> usize {
        self.shared.disconnects.load(Ordering::SeqCst)
    }

    /// Streaming bodies sent to the end.
    pub fn completed(&self) -> usize {
        self.shared.completed.load(Ordering::SeqCst)
    }

    /// Wait until [`FakeProvider::disconnects`] reaches `n` (true) or
    /// `within` passes (false). Async, so the client's runtime can go on
    /// closing its side meanwhile.
    pub async fn wait_for_disconnects(&self, n: usize, within: Duration) -> bool {
        let start = tokio::time::Instant::now();
        while self.disconnects() < n {
            if start.elapsed() >= within {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// [`FakeProvider::wait_for_disconnects`] for synchronous tests (the
    /// client must run on another thread).
    pub fn wait_for_disconnects_blocking(&self, n: usize, within: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.disconnects() < n {
            if start.elapsed() >= within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        match &mut self.runner {
            Runner::Task(task) => task.abort(),
            Runner::Thread { shutdown, thread } => {
                if let Some(tx) = shutdown.take() {
                    let _ = tx.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

/// The model id `GET /v1/models` lists.
pub const FAKE_MODEL: &str = "fake-model";

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/messages", post(anthropic))
        .route("/chat/completions", post(openai))
        .route("/v1/chat/completions", post(openai))
        .route("/models", get(models))
        .route("/v1/models", get(models))
        .with_state(shared)
}

/// The OpenAI model list (`GET /v1/models`), as local servers answer it:
/// the one model this fake serves.
async fn models() -> Response {
    json_response(
        StatusCode::OK,
        serde_json::json!({
            "object": "list",
            "data": [{"id": FAKE_MODEL, "object": "model", "owned_by": "exoclaw-fake"}],
        })
        .to_string(),
        None,
    )
}

async fn anthropic(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(WireFormat::Anthropic, &s, uri.path(), &headers, &body).await
}

async fn openai(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(WireFormat::OpenAi, &s, uri.path(), &headers, &body).await
}

fn json_response(
    status: StatusCode,
    body: String,
    extra: Option<(&'static str, HeaderValue)>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some((name, value)) = extra {
        headers.insert(name, value);
    }
    (status, headers, body).into_response()
}

fn has_key(wire: WireFormat, headers: &HeaderMap, key: &str) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match wire {
        WireFormat::Anthropic => get("x-api-key") == Some(key),
        WireFormat::OpenAi => get("authorization") == Some(&format!("Bearer {key}")),
    }
}

async fn handle(
    wire: WireFormat,
    s: &Arc<Shared>,
    path: &str,
    headers: &HeaderMap,
    raw: &[u8],
) -> Response {
    let body: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(_) => return json_response(StatusCode::BAD_REQUEST, wire::error_body(wire, 400), None),
    };
    let recorded_headers = headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = if AUTH_HEADERS.contains(&name.as_str()) {
                "***".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect();
    lock(&s.requests).push(RecordedRequest {
        wire,
        path: path.to_owned(),
        headers: recorded_headers,
        body: body.clone(),
    });
    let required = lock(&s.api_key).clone();
    if let Some(key) = required
        && !has_key(wire, headers, &key)
    {
        return json_response(StatusCode::UNAUTHORIZED, wire::error_body(wire, 401), None);
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let llama = wire == WireFormat::OpenAi && s.llama_cpp_python.load(Ordering::SeqCst);
    let streamed = body.get("stream") == Some(&Value::Bool(true));
    let offers_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if llama && streamed && offers_tools && body.get("tool_choice") == Some(&Value::from("auto")) {
        // The server raises inside the streamed body: headers, then nothing.
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        return (StatusCode::OK, headers, Body::empty()).into_response();
    }
    let flight = Flight::start(s.clone(), model.clone());
    let reply = lock(&s.by_model)
        .get_mut(&model)
        .and_then(VecDeque::pop_front)
        .or_else(|| lock(&s.replies).pop_front())
        .unwrap_or_else(Reply::echo);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if let ReplyBody::Status {
        status,
        retry_after,
        body: text,
    } = &reply.body
    {
        let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let extra = retry_after
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
            .map(|v| ("retry-after", v));
        let text = text
            .clone()
            .unwrap_or_else(|| wire::error_body(wire, *status));
        if text.trim_start().starts_with('<') {
            // A proxy's or a web server's page, not the API.
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return (code, headers, text).into_response();
        }
        return json_response(code, text, extra);
    }
    let n = s.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let mut answer = answer(wire, n, &reply, &body, raw.len());
    if !streamed {
        let json = match wire {
            WireFormat::Anthropic => wire::anthropic_json(&answer),
            WireFormat::OpenAi if llama => {
                for (i, call) in answer.tool_calls.iter_mut().enumerate() {
                    call.id = format!("call__{i}_{}_cmpl-{n}", call.name);
                }
                let mut json = wire::openai_json(&answer);
                if let Some(first) = answer.tool_calls.first() {
                    json["choices"][0]["message"]["function_call"] = serde_json::json!({
                        "name": format!("{}:", first.name),
                        "arguments": wire::arguments_text(first),
                    });
                }
                json
            }
            WireFormat::OpenAi => wire::openai_json(&answer),
        };
        return json_response(StatusCode::OK, json.to_string(), None);
    }
    if llama && !answer.tool_calls.is_empty() {
        // Streaming without tool_choice: the tools are not offered to the model.
        answer.tool_calls.clear();
        answer.stop = StopReason::EndTurn;
        if answer.text.is_empty() {
            "I cannot use tools here.".clone_into(&mut answer.text);
        }
    }
    let mut frames = match wire {
        WireFormat::Anthropic => wire::anthropic_frames(&answer, &reply),
        WireFormat::OpenAi => wire::openai_frames(&answer, &reply),
    };
    if llama {
        frames.retain(|f| !wire::is_usage_frame(f));
    }
    if let Some((after, fault)) = &reply.fault {
        frames = wire::apply_fault(wire, frames, *after, fault);
    }
    let segments = wire::layout(&frames, &reply);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    (
        StatusCode::OK,
        headers,
        Body::from_stream(body_stream(segments, s.clone(), flight)),
    )
        .into_response()
}

/// Counts the body as completed or, when dropped early, disconnected. (Hyper
/// polls a body to its end before flushing the last bytes, so a client that
/// closes after reading everything is not miscounted.)
struct BodyGuard {
    shared: Arc<Shared>,
    done: bool,
    _flight: Flight,
}

/// A request being answered, counted per model until dropped (the end of
/// the handler, or of the streamed body).
struct Flight {
    shared: Arc<Shared>,
    model: String,
}

impl Flight {
    fn start(shared: Arc<Shared>, model: String) -> Self {
        {
            let mut map = lock(&shared.in_flight);
            let c = map.entry(model.clone()).or_default();
            c.0 += 1;
            c.1 = c.1.max(c.0);
        }
        Self { shared, model }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if let Some(c) = lock(&self.shared.in_flight).get_mut(&self.model) {
            c.0 = c.0.saturating_sub(1);
        }
    }
}

impl BodyGuard {
    fn finish(&mut self) {
        self.done = true;
    }
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.shared.completed
        } else {
            &self.shared.disconnects
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

fn body_stream(
    segments: Vec<Segment>,
    shared: Arc<Shared>,
    flight: Flight,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
    let state = (
        segments.into_iter(),
        BodyGuard {
            shared,
            done: false,
            _flight: flight,
        },
    );
    futures_util::stream::unfold(state, |(mut segments, mut guard)| async move {
        loop {
            match segments.next() {
                Some(Segment::Bytes(bytes)) => {
                    return Some((Ok(Bytes::from(bytes)), (segments, guard)));
                }
                Some(Segment::Pause(pause)) => tokio::time::sleep(pause).await,
                None => {
                    guard.finish();
                    return None;
                }
            }
        }
    })
}

/// The text of the last user message (string content or text blocks).
fn last_user_text(body: &Value) -> String {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    let Some(last) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn answer(wire: WireFormat, n: u64, reply: &Reply, body: &Value, body_len: usize) -> Answer {
    let (text, tool_calls) = match &reply.body {
        ReplyBody::Message { text, tool_calls } => (text.clone(), tool_calls.clone()),
        _ => (last_user_text(body), Vec::new()),
    };
    let out_chars = text.len()
        + tool_calls
            .iter()
            .map(|c| c.arguments.to_string().len())
            .sum::<usize>();
    let usage = reply.usage.unwrap_or(Usage {
        input_tokens: crate::http::estimate_tokens(body_len).max(1),
        output_tokens: crate::http::estimate_tokens(out_chars).max(1),
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        estimated: false,
    });
    let stop = reply.stop.unwrap_or(if tool_calls.is_empty() {
        StopReason::EndTurn
    } else {
        StopReason::ToolUse
    });
    let id = match wire {
        WireFormat::Anthropic => format!("msg_fake_{n}"),
        WireFormat::OpenAi => format!("chatcmpl-fake-{n}"),
    };
    Answer {
        id,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("fake-model")
            .to_owned(),
        text,
        tool_calls,
        usage,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::provider::ToolCall;
    use serde_json::json;

    fn frames_text(wire: WireFormat, reply: &Reply) -> String {
        let a = Answer {
            id: "id".into(),
            model: "m".into(),
            text: "héllo wörld".into(),
            tool_calls: vec![ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: json!({"a": 1}),
            }],
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                cache_read_tokens: 5,
                cache_write_tokens: 6,
                estimated: false,
            },
            stop: StopReason::ToolUse,
        };
        let frames = match wire {
            WireFormat::Anthropic => wire::anthropic_frames(&a, reply),
            WireFormat::OpenAi => wire::openai_frames(&a, reply),
        };
        let mut out = Vec::new();
        for seg in wire::layout(&frames, reply) {
            if let Segment::Bytes(b) = seg {
                out.extend(b);
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn anthropic_stream_shape() {
        let text = frames_text(WireFormat::Anthropic, &Reply::text("").pings());
        assert!(text.starts_with("event: message_start\ndata: {"), "{text}");
        assert!(text.contains("\"cache_read_input_tokens\":5"));
        assert!(text.contains("event: ping\n"));
        assert!(text.contains("\"partial_json\":\"{\\\"a\""));
        assert!(
            text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{text}"
        );
    }

    #[test]
    fn openai_stream_shape() {
        let text = frames_text(WireFormat::OpenAi, &Reply::text("").pings().crlf());
        assert!(text.contains(": keep-alive\r\n\r\n"));
        assert!(text.contains("\"cached_tokens\":5"));
        assert!(text.contains("\"prompt_tokens\":14"));
        assert!(text.ends_with("data: [DONE]\r\n\r\n"), "{text}");
        assert!(!text.contains("event:"));
    }

    #[test]
    fn split_is_char_safe() {
        assert_eq!(wire::split("héllo", 2), ["hél", "lo"]);
        assert_eq!(wire::split("ab", 5), ["a", "b"]);
        assert!(wire::split("", 3).is_empty());
    }
}
