//! [`OpenAiCompatProvider`]: `POST {base}/chat/completions` as spoken by
//! OpenAI and every compatible endpoint (OpenRouter, Groq, DeepSeek, Gemini's
//! compatibility layer, Mistral, xAI, Ollama, vLLM, llama.cpp, LiteLLM, ...).
//!
//! Usage is normalised to Anthropic's meaning so one price table fits all:
//! `input_tokens` counts only uncached prompt tokens, `cache_read_tokens` the
//! cached ones (OpenAI's `prompt_tokens` includes both).

use crate::ConfigError;
use crate::http::{self, Decoder};
use crate::sse::SseEvent;
use exoclaw_core::Secret;
use exoclaw_core::provider::{
    ChatMessage, ChatRequest, ChatRole, ChatStream, ContentPart, Provider, ProviderError,
    ProviderInfo, StopReason, StreamEvent, ToolCall, Usage,
};
use exoclaw_egress::EgressClient;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Map, Value, json};
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

/// A client of one OpenAI-compatible endpoint.
pub struct OpenAiCompatProvider {
    name: String,
    client: EgressClient,
    base_url: String,
    url: String,
    api_key: Option<Secret>,
    max_tokens_field: MaxTokensField,
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
        })
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
        tracing::debug!(provider = %self.name, model = %request.model, messages = request.messages.len(), "openai-compatible call");
        let body = serde_json::to_vec(&request_body(&request, self.max_tokens_field))
            .map_err(|e| ProviderError::Malformed(format!("cannot encode the request: {e}")))?;
        let mut headers = Vec::new();
        if let Some(key) = &self.api_key {
            headers.push((
                AUTHORIZATION,
                http::secret_header(&format!("Bearer {}", key.expose()))?,
            ));
        }
        let response = http::post_json(
            &self.client,
            &self.url,
            headers,
            body,
            self.api_key.as_ref(),
        )
        .await?;
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
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
}

/// The chat-completions body for a request (always streaming, with usage).
pub fn request_body(request: &ChatRequest, max_tokens_field: MaxTokensField) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages(request)));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(max) = request.max_tokens {
        let field = match max_tokens_field {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        body.insert(field.into(), json!(max));
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    Value::Object(body)
}

fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        out.push(json!({"role": "system", "content": system}));
    }
    for message in request.messages.iter() {
        push_message(message, &mut out);
    }
    out
}

fn push_message(message: &ChatMessage, out: &mut Vec<Value>) {
    // Tool results are `tool` messages wherever they appear.
    for part in &message.content {
        if let ContentPart::ToolResult {
            call_id, content, ..
        } = part
            && message.role != ChatRole::Assistant
        {
            out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
        }
    }
    let text = message.text();
    match message.role {
        ChatRole::User if !text.is_empty() || message.content.is_empty() => {
            out.push(json!({"role": "user", "content": text}));
        }
        ChatRole::Assistant => {
            let calls: Vec<Value> = message
                .content
                .iter()
                .filter_map(|p| match p {
                    ContentPart::ToolCall(c) => Some(json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": arguments_text(&c.arguments)},
                    })),
                    _ => None,
                })
                .collect();
            let mut m = Map::new();
            m.insert("role".into(), json!("assistant"));
            if calls.is_empty() {
                m.insert("content".into(), json!(text));
            } else {
                let content = if text.is_empty() {
                    Value::Null
                } else {
                    json!(text)
                };
                m.insert("content".into(), content);
                m.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(Value::Object(m));
        }
        ChatRole::User | ChatRole::Tool => {}
    }
}

/// Arguments travel as a JSON string; a raw string kept from an unparsable
/// call goes back verbatim.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
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
}

impl OpenAiDecoder {
    pub(crate) fn new(key: Option<Secret>) -> Self {
        Self {
            key,
            calls: BTreeMap::new(),
            last_index: None,
            stop: None,
            saw_tool_call: false,
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
        Err(ProviderError::Unavailable(
            "the stream ended before a finish_reason".into(),
        ))
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
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (i, tc) in calls.iter().enumerate() {
            let mut tc = tc.clone();
            if let Value::Object(m) = &mut tc {
                m.entry("index").or_insert(json!(i));
            }
            decoder.tool_call_delta(&tc);
        }
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
