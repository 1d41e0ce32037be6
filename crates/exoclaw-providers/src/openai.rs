//! [`OpenAiCompatProvider`]: `POST {base}/chat/completions` as spoken by
//! OpenAI and every compatible endpoint (OpenRouter, Groq, DeepSeek, Gemini's
//! compatibility layer, Mistral, xAI, Ollama, vLLM, llama.cpp, LiteLLM, ...).
//!
//! Usage is normalised to Anthropic's meaning so one price table fits all:
//! `input_tokens` counts only uncached prompt tokens, `cache_read_tokens` the
//! cached ones (OpenAI's `prompt_tokens` includes both).
//!
//! Compatibility with servers that speak the format partly ([`Compat`]):
//! `tool_choice: "auto"` is sent whenever tools are offered (some servers,
//! llama-cpp-python's among them, treat tools as unavailable without it);
//! a tool turn whose streamed call the server rejects (an error naming
//! streamed tool use, or a stream that ends before any event, as
//! llama-cpp-python's "Automatic streaming tool choice is not supported"
//! does) is sent again without streaming, and the provider remembers to
//! send its tool turns that way, with one log line. Answers may lack tool
//! call ids (`call_<n>` is used), carry a legacy `function_call` beside or
//! instead of `tool_calls`, invent ids, or send arguments that are not JSON
//! (passed on as a string: the tool layer answers the model with
//! `tool.invalid_args`).

use crate::ConfigError;
use crate::http::{self, Decoder};
use crate::sse::SseEvent;
use bytes::Bytes;
use exoclaw_core::Secret;
use exoclaw_core::provider::{
    ChatRequest, ChatStream, Provider, ProviderError, ProviderInfo, StopReason, StreamEvent,
    ToolCall, Usage,
};
use exoclaw_egress::EgressClient;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// At most this much of a non-streaming JSON answer is read.
const MAX_JSON_BODY: usize = 8 << 20;

/// Which field carries the output limit. OpenAI's reasoning models accept
/// only `max_completion_tokens`; many compatible servers know only
/// `max_tokens`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    #[default]
    MaxTokens,
    MaxCompletionTokens,
}

/// How a provider sends turns that offer tools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ToolStreaming {
    /// Stream; when the server rejects a streamed tool turn, send it again
    /// without streaming and keep doing so for this provider.
    #[default]
    Auto,
    /// Always stream (never fall back).
    Always,
    /// Never stream tool turns (the answer is streamed to the client from
    /// the collected result).
    Never,
}

/// Compatibility settings of one OpenAI-compatible server
/// (`providers.<name>.compat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compat {
    /// Send `tool_choice: "auto"` when tools are offered.
    pub tool_choice_auto: bool,
    pub tool_streaming: ToolStreaming,
}

impl Default for Compat {
    fn default() -> Self {
        Self {
            tool_choice_auto: true,
            tool_streaming: ToolStreaming::Auto,
        }
    }
}

/// A client of one OpenAI-compatible endpoint.
pub struct OpenAiCompatProvider {
    name: String,
    client: EgressClient,
    base_url: String,
    url: String,
    api_key: Option<Secret>,
    max_tokens_field: MaxTokensField,
    compat: Compat,
    /// The server rejected a streamed tool turn: tool turns go unstreamed.
    tools_unstreamed: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for OpenAiCompatProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatProvider")
            .field("name", &self.name)
            .field("base_url", &http::display_url(&self.base_url))
            .field("api_key", &self.api_key)
            .field("max_tokens_field", &self.max_tokens_field)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatProvider {
    /// `base_url` is the part before `/chat/completions`, e.g.
    /// `https://api.openai.com/v1`. Named `openai` until
    /// [`OpenAiCompatProvider::with_name`]. Without a key no
    /// `Authorization` header is sent (local servers).
    pub fn new(
        client: EgressClient,
        base_url: &str,
        api_key: Option<Secret>,
    ) -> Result<Self, ConfigError> {
        let base_url = http::check_base_url(base_url)?;
        Ok(Self {
            name: "openai".to_owned(),
            client,
            url: http::join_url(&base_url, "chat/completions"),
            base_url,
            api_key,
            max_tokens_field: MaxTokensField::default(),
            compat: Compat::default(),
            tools_unstreamed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn with_compat(mut self, compat: Compat) -> Self {
        self.compat = compat;
        if compat.tool_streaming == ToolStreaming::Never {
            tracing::info!(provider = %self.name, "compat: tool turns are sent without streaming (providers.{}.compat.stream_tools = never)", self.name);
        }
        if !compat.tool_choice_auto {
            tracing::info!(provider = %self.name, "compat: tool_choice is not sent (providers.{}.compat.tool_choice = omit)", self.name);
        }
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = field;
        self
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiCompatProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            wire: "openai",
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        use std::sync::atomic::Ordering;
        tracing::debug!(provider = %self.name, model = %request.model, messages = request.messages.len(), "openai-compatible call");
        let offers_tools = !request.tools.is_empty();
        let body = |stream| self.body(&request, stream);
        if offers_tools
            && (self.compat.tool_streaming == ToolStreaming::Never
                || self.tools_unstreamed.load(Ordering::Relaxed))
        {
            return self.unstreamed(body(false)?).await;
        }
        if !offers_tools || self.compat.tool_streaming == ToolStreaming::Always {
            return self.streamed(body(true)?).await;
        }
        let first = match self.streamed(body(true)?).await {
            Ok(stream) => crate::decorate::first_event(stream).await,
            Err(e) => Err(e),
        };
        match first {
            Err(e) if rejects_streamed_tools(&e) => {
                if !self.tools_unstreamed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(provider = %self.name, error = %e, "compat: the server rejected a streamed tool turn; this provider's tool turns are now sent without streaming (set providers.{}.compat.stream_tools = \"never\" to skip the first try)", self.name);
                }
                self.unstreamed(body(false)?).await
            }
            other => other,
        }
    }
}

/// Whether a streamed tool turn failed because the server does not stream
/// tool use: it says so, or its stream ended before any event.
fn rejects_streamed_tools(e: &ProviderError) -> bool {
    let message = match e {
        ProviderError::Rejected { message, .. }
        | ProviderError::Stream(message)
        | ProviderError::Unavailable(message) => message.to_ascii_lowercase(),
        _ => return false,
    };
    message.contains(EMPTY_STREAM)
        || (message.contains("stream")
            && (message.contains("tool") || message.contains("function")))
}

/// What [`OpenAiDecoder::end`] says of a stream that ended before it finished.
const EMPTY_STREAM: &str = "the stream ended before a finish_reason";

impl OpenAiCompatProvider {
    /// The request's JSON body, streaming or not.
    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Bytes, ProviderError> {
        wire::encode(
            request,
            wire::Options {
                max_tokens_field: self.max_tokens_field,
                tool_choice_auto: self.compat.tool_choice_auto,
                stream,
            },
        )
        .map_err(|e| ProviderError::Malformed(format!("cannot encode the request: {e}")))
    }

    fn headers(
        &self,
    ) -> Result<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>, ProviderError>
    {
        let mut headers = Vec::new();
        if let Some(key) = &self.api_key {
            headers.push((
                AUTHORIZATION,
                http::secret_header(&format!("Bearer {}", key.expose()))?,
            ));
        }
        Ok(headers)
    }

    async fn streamed(&self, bytes: Bytes) -> Result<ChatStream, ProviderError> {
        let response = http::post_json(
            &self.client,
            &self.url,
            self.headers()?,
            bytes,
            self.api_key.as_ref(),
        )
        .await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("text/html") {
            return Err(html_answer());
        }
        let is_json = content_type.starts_with("application/json");
        if is_json {
            // A server that ignored `"stream": true`.
            let text = http::read_limited(response, MAX_JSON_BODY).await;
            let events = decode_completion(&http::parse_json(&text)?, self.api_key.as_ref())?;
            return Ok(Box::pin(futures_util::stream::iter(
                events.into_iter().map(Ok),
            )));
        }
        Ok(http::drive(
            response,
            OpenAiDecoder::new(self.api_key.clone()),
        ))
    }

    /// The call without streaming; its answer comes back as one burst of
    /// events (the agent loop streams the text on from there).
    async fn unstreamed(&self, bytes: Bytes) -> Result<ChatStream, ProviderError> {
        let response = http::post_json(
            &self.client,
            &self.url,
            self.headers()?,
            bytes,
            self.api_key.as_ref(),
        )
        .await?;
        let is_html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        if is_html {
            return Err(html_answer());
        }
        let text = http::read_limited(response, MAX_JSON_BODY).await;
        let events = decode_completion(&http::parse_json(&text)?, self.api_key.as_ref())?;
        Ok(Box::pin(futures_util::stream::iter(
            events.into_iter().map(Ok),
        )))
    }
}

/// A web page where the API should be (a wrong base URL, a proxy's page).
fn html_answer() -> ProviderError {
    ProviderError::Malformed(
        "the server answered with an HTML page, not the chat-completions API: check the provider's base_url (OpenAI-compatible servers usually end in /v1)".into(),
    )
}

fn usage(v: &Value) -> Usage {
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("/prompt_tokens");
    let cached = n("/prompt_tokens_details/cached_tokens").max(n("/prompt_cache_hit_tokens"));
    Usage {
        input_tokens: prompt.saturating_sub(cached),
        output_tokens: n("/completion_tokens"),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        estimated: false,
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

fn chunk_error(err: &Value, key: Option<&Secret>) -> ProviderError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| err.to_string(), str::to_owned);
    let message = http::quote(&message, key);
    let code = err.get("code").and_then(Value::as_u64).unwrap_or(0);
    let kind = err.get("type").and_then(Value::as_str).unwrap_or("");
    if code == 429 || kind == "rate_limit_exceeded" {
        ProviderError::RateLimited { retry_after: None }
    } else if (500..600).contains(&code) || matches!(kind, "server_error" | "overloaded_error") {
        ProviderError::Unavailable(message)
    } else {
        ProviderError::Stream(message)
    }
}

#[derive(Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

/// The chat-completions chunk stream, one event at a time.
pub(crate) struct OpenAiDecoder {
    key: Option<Secret>,
    calls: BTreeMap<u64, PendingCall>,
    /// Index of the call that received the last fragment (for servers that
    /// omit `index`).
    last_index: Option<u64>,
    stop: Option<StopReason>,
    saw_tool_call: bool,
    /// The stream used `tool_calls`: a legacy `function_call` is a repeat.
    saw_tool_calls_field: bool,
}

impl OpenAiDecoder {
    pub(crate) fn new(key: Option<Secret>) -> Self {
        Self {
            key,
            calls: BTreeMap::new(),
            last_index: None,
            stop: None,
            saw_tool_call: false,
            saw_tool_calls_field: false,
        }
    }

    fn tool_call_delta(&mut self, tc: &Value) {
        let id = tc.get("id").and_then(Value::as_str).unwrap_or("");
        let index = match tc.get("index").and_then(Value::as_u64) {
            Some(i) => i,
            None if id.is_empty() => self.last_index.unwrap_or(0),
            None => self
                .calls
                .iter()
                .find(|(_, c)| c.id == id)
                .map(|(i, _)| *i)
                .unwrap_or_else(|| self.calls.keys().next_back().map_or(0, |i| i + 1)),
        };
        self.last_index = Some(index);
        let call = self.calls.entry(index).or_default();
        if !id.is_empty() {
            id.clone_into(&mut call.id);
        }
        if let Some(f) = tc.get("function") {
            if let Some(name) = f
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                name.clone_into(&mut call.name);
            }
            match f.get("arguments") {
                Some(Value::String(fragment)) => call.arguments.push_str(fragment),
                // Some servers send the arguments as an object in one piece.
                Some(v @ Value::Object(_)) => call.arguments.push_str(&v.to_string()),
                _ => {}
            }
        }
    }

    fn flush_calls(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        for (index, call) in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                return Err(ProviderError::Malformed(format!(
                    "tool call {index} arrived without a function name"
                )));
            }
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            self.saw_tool_call = true;
            out.push_back(StreamEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments: http::parse_arguments(&call.arguments),
            }));
        }
        Ok(())
    }

    fn done(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        self.flush_calls(out)?;
        let stop = match self.stop {
            Some(StopReason::EndTurn) | None if self.saw_tool_call => StopReason::ToolUse,
            Some(stop) => stop,
            None => StopReason::EndTurn,
        };
        out.push_back(StreamEvent::Done(stop));
        Ok(())
    }
}

impl Decoder for OpenAiDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError> {
        if event.data.trim() == "[DONE]" {
            self.done(out)?;
            return Ok(true);
        }
        let v = http::parse_json(&event.data)?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Err(chunk_error(err, self.key.as_ref()));
        }
        let choice = v.get("choices").and_then(Value::as_array).and_then(|cs| {
            cs.iter()
                .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        });
        if let Some(choice) = choice {
            let delta = choice.get("delta").unwrap_or(&Value::Null);
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                out.push_back(StreamEvent::TextDelta(text.to_owned()));
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for tc in calls {
                    self.tool_call_delta(tc);
                }
                self.saw_tool_calls_field = true;
            } else if let Some(f) = delta.get("function_call").filter(|f| f.is_object())
                && !self.saw_tool_calls_field
            {
                // The legacy form, from servers that send no `tool_calls`.
                self.tool_call_delta(&json!({"index": 0, "function": f}));
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.stop = Some(stop_reason(reason));
                self.flush_calls(out)?;
            }
        }
        let u = v
            .get("usage")
            .filter(|u| u.is_object())
            .or_else(|| v.pointer("/x_groq/usage").filter(|u| u.is_object()));
        if let Some(u) = u {
            out.push_back(StreamEvent::Usage(usage(u)));
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        if self.stop.is_some() {
            // Finished but without `data: [DONE]`: accept it.
            return self.done(out);
        }
        Err(ProviderError::Unavailable(EMPTY_STREAM.into()))
    }
}

/// A non-streaming `chat.completion` answer as stream events.
fn decode_completion(v: &Value, key: Option<&Secret>) -> Result<Vec<StreamEvent>, ProviderError> {
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        return Err(chunk_error(err, key));
    }
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| ProviderError::Malformed("a completion without choices".into()))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut decoder = OpenAiDecoder::new(None);
    let mut out = VecDeque::new();
    if let Some(text) = message.get("content").and_then(Value::as_str)
        && !text.is_empty()
    {
        out.push_back(StreamEvent::TextDelta(text.to_owned()));
    }
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty());
    if let Some(calls) = calls {
        // A legacy `function_call` beside them repeats the first (and may
        // name it differently): the tool calls win.
        for (i, tc) in calls.iter().enumerate() {
            let mut tc = tc.clone();
            if let Value::Object(m) = &mut tc {
                m.entry("index").or_insert(json!(i));
            }
            decoder.tool_call_delta(&tc);
        }
    } else if let Some(f) = message.get("function_call").filter(|f| f.is_object()) {
        decoder.tool_call_delta(&json!({"index": 0, "function": f}));
    }
    decoder.stop = Some(stop_reason(
        choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("stop"),
    ));
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.push_back(StreamEvent::Usage(usage(u)));
    }
    decoder.done(&mut out)?;
    Ok(out.into())
}

#[cfg(test)]
mod tests;
mod wire;
