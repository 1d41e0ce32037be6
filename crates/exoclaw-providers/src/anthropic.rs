//! [`AnthropicProvider`]: the native Anthropic Messages API
//! (`POST {base}/v1/messages`), always streaming, with prompt caching.
//!
//! Cache breakpoints (Anthropic allows four; we use at most three): the
//! system prompt, the last tool definition, and the last content block of
//! message `cache_prefix_len - 1` (the end of the stable history).

use crate::ConfigError;
use crate::http::{self, Decoder};
use crate::sse::SseEvent;
use exoclaw_core::Secret;
use exoclaw_core::provider::{
    ChatMessage, ChatRequest, ChatRole, ChatStream, ContentPart, Provider, ProviderError,
    ProviderInfo, StopReason, StreamEvent, ToolCall, Usage,
};
use exoclaw_egress::EgressClient;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// The `anthropic-version` header we speak.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the request leaves it open (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A client of one Anthropic-compatible endpoint.
pub struct AnthropicProvider {
    name: String,
    client: EgressClient,
    base_url: String,
    url: String,
    api_key: Option<Secret>,
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("name", &self.name)
            .field("base_url", &http::display_url(&self.base_url))
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    /// `base_url` is the part before `/v1/messages`, e.g.
    /// `https://api.anthropic.com`. The provider is named `anthropic` until
    /// [`AnthropicProvider::with_name`] says otherwise.
    pub fn new(
        client: EgressClient,
        base_url: &str,
        api_key: Option<Secret>,
    ) -> Result<Self, ConfigError> {
        let base_url = http::check_base_url(base_url)?;
        Ok(Self {
            name: "anthropic".to_owned(),
            client,
            url: http::join_url(&base_url, "v1/messages"),
            base_url,
            api_key,
        })
    }

    /// The configured name reported by [`Provider::info`] and in the ledger.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            wire: "anthropic",
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        tracing::debug!(provider = %self.name, model = %request.model, messages = request.messages.len(), "anthropic call");
        let body = serde_json::to_vec(&request_body(&request))
            .map_err(|e| ProviderError::Malformed(format!("cannot encode the request: {e}")))?;
        let mut headers = vec![(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        )];
        if let Some(key) = &self.api_key {
            headers.push((
                HeaderName::from_static("x-api-key"),
                http::secret_header(key.expose())?,
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
        Ok(http::drive(
            response,
            AnthropicDecoder::new(self.api_key.clone()),
        ))
    }
}

fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// The Messages API body for a request (always `"stream": true`).
pub fn request_body(request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert(
        "max_tokens".into(),
        json!(request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    body.insert("stream".into(), json!(true));
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        body.insert(
            "system".into(),
            json!([{"type": "text", "text": system, "cache_control": ephemeral()}]),
        );
    }
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.parameters,
                })
            })
            .collect();
        if let Some(Value::Object(last)) = tools.last_mut() {
            last.insert("cache_control".into(), ephemeral());
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    body.insert(
        "messages".into(),
        Value::Array(messages(&request.messages, request.cache_prefix_len)),
    );
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    Value::Object(body)
}

/// Map the history. Tool results travel in `user` messages; consecutive
/// messages of one wire role are merged (the API wants alternation).
fn messages(history: &[ChatMessage], cache_prefix_len: usize) -> Vec<Value> {
    let prefix = cache_prefix_len.min(history.len());
    let mut wire: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut breakpoint: Option<(usize, usize)> = None;
    for (i, message) in history.iter().enumerate() {
        let role = match message.role {
            ChatRole::User | ChatRole::Tool => "user",
            ChatRole::Assistant => "assistant",
        };
        let blocks: Vec<Value> = message
            .content
            .iter()
            .filter_map(|part| block(message.role, part))
            .collect();
        if !blocks.is_empty() {
            match wire.last_mut() {
                Some((last_role, last)) if *last_role == role => last.extend(blocks),
                _ => wire.push((role, blocks)),
            }
        }
        if i + 1 == prefix
            && let Some((_, last)) = wire.last()
        {
            breakpoint = Some((wire.len() - 1, last.len().saturating_sub(1)));
        }
    }
    if let Some((m, b)) = breakpoint
        && let Some(Value::Object(block)) = wire.get_mut(m).and_then(|(_, bs)| bs.get_mut(b))
    {
        block.insert("cache_control".into(), ephemeral());
    }
    wire.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn block(role: ChatRole, part: &ContentPart) -> Option<Value> {
    match part {
        // The API refuses empty text blocks.
        ContentPart::Text { text } if text.is_empty() => None,
        ContentPart::Text { text } => Some(json!({"type": "text", "text": text})),
        ContentPart::ToolCall(call) if role == ChatRole::Assistant => Some(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.name,
            "input": tool_input(&call.arguments),
        })),
        ContentPart::ToolResult {
            call_id,
            content,
            is_error,
        } if role != ChatRole::Assistant => {
            let mut b = Map::new();
            b.insert("type".into(), json!("tool_result"));
            b.insert("tool_use_id".into(), json!(call_id));
            if !content.is_empty() {
                b.insert("content".into(), json!(content));
            }
            if *is_error {
                b.insert("is_error".into(), json!(true));
            }
            Some(Value::Object(b))
        }
        ContentPart::ToolCall(_) | ContentPart::ToolResult { .. } => None,
    }
}

/// `input` must be an object. Arguments kept as a raw string (they did not
/// parse when received) are sent back as `{"invalid_arguments": raw}` so the
/// model still sees what it produced.
fn tool_input(arguments: &Value) -> Value {
    match arguments {
        Value::Object(_) => arguments.clone(),
        Value::String(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({ "invalid_arguments": raw }),
        },
        Value::Null => json!({}),
        other => json!({ "invalid_arguments": other }),
    }
}

enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
        initial: Value,
    },
    Other,
}

/// The Messages API event stream, one event at a time.
pub(crate) struct AnthropicDecoder {
    key: Option<Secret>,
    blocks: HashMap<u64, Block>,
    stop: Option<StopReason>,
    saw_tool_call: bool,
}

impl AnthropicDecoder {
    pub(crate) fn new(key: Option<Secret>) -> Self {
        Self {
            key,
            blocks: HashMap::new(),
            stop: None,
            saw_tool_call: false,
        }
    }

    fn finish_block(&mut self, block: Block, out: &mut VecDeque<StreamEvent>) {
        if let Block::Tool {
            id,
            name,
            json,
            initial,
        } = block
        {
            let arguments = if json.trim().is_empty() && initial.is_object() {
                initial
            } else {
                http::parse_arguments(&json)
            };
            self.saw_tool_call = true;
            out.push_back(StreamEvent::ToolCall(ToolCall {
                id,
                name,
                arguments,
            }));
        }
    }
}

fn index(v: &Value) -> Result<u64, ProviderError> {
    v.get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| ProviderError::Malformed("a content block event without an index".into()))
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn usage(v: &Value) -> Usage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_read_tokens: n("cache_read_input_tokens"),
        cache_write_tokens: n("cache_creation_input_tokens"),
        estimated: false,
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

impl Decoder for AnthropicDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError> {
        let v = http::parse_json(&event.data)?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    out.push_back(StreamEvent::Usage(usage(u)));
                }
            }
            "content_block_start" => {
                let i = index(&v)?;
                let cb = v.get("content_block").unwrap_or(&Value::Null);
                let block = match str_field(cb, "type") {
                    "text" => {
                        let text = str_field(cb, "text");
                        if !text.is_empty() {
                            out.push_back(StreamEvent::TextDelta(text.to_owned()));
                        }
                        Block::Text
                    }
                    "tool_use" => {
                        let id = str_field(cb, "id");
                        let name = str_field(cb, "name");
                        if id.is_empty() || name.is_empty() {
                            return Err(ProviderError::Malformed(
                                "a tool_use block without an id or name".into(),
                            ));
                        }
                        Block::Tool {
                            id: id.to_owned(),
                            name: name.to_owned(),
                            json: String::new(),
                            initial: cb.get("input").cloned().unwrap_or(Value::Null),
                        }
                    }
                    // thinking, redacted_thinking, server tools: not forwarded
                    _ => Block::Other,
                };
                self.blocks.insert(i, block);
            }
            "content_block_delta" => {
                let i = index(&v)?;
                let delta = v.get("delta").unwrap_or(&Value::Null);
                match str_field(delta, "type") {
                    "text_delta" => {
                        let text = str_field(delta, "text");
                        if !text.is_empty() {
                            out.push_back(StreamEvent::TextDelta(text.to_owned()));
                        }
                    }
                    "input_json_delta" => match self.blocks.get_mut(&i) {
                        Some(Block::Tool { json, .. }) => {
                            json.push_str(str_field(delta, "partial_json"));
                        }
                        _ => {
                            return Err(ProviderError::Malformed(format!(
                                "input_json_delta for block {i}, which is not an open tool_use block"
                            )));
                        }
                    },
                    _ => {} // thinking_delta, signature_delta, citations
                }
            }
            "content_block_stop" => {
                let i = index(&v)?;
                if let Some(block) = self.blocks.remove(&i) {
                    self.finish_block(block, out);
                }
            }
            "message_delta" => {
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(stop_reason(reason));
                }
                if let Some(u) = v.get("usage") {
                    out.push_back(StreamEvent::Usage(usage(u)));
                }
            }
            "message_stop" => {
                let mut open: Vec<_> = self.blocks.drain().collect();
                open.sort_by_key(|(i, _)| *i);
                for (_, block) in open {
                    self.finish_block(block, out);
                }
                let fallback = if self.saw_tool_call {
                    StopReason::ToolUse
                } else {
                    StopReason::EndTurn
                };
                out.push_back(StreamEvent::Done(self.stop.unwrap_or(fallback)));
                return Ok(true);
            }
            "error" => {
                let err = v.get("error").unwrap_or(&Value::Null);
                let message = http::quote(str_field(err, "message"), self.key.as_ref());
                return Err(match str_field(err, "type") {
                    "overloaded_error" => {
                        ProviderError::Unavailable(format!("overloaded: {message}"))
                    }
                    "rate_limit_error" => ProviderError::RateLimited { retry_after: None },
                    other => ProviderError::Stream(format!("{other}: {message}")),
                });
            }
            _ => {} // ping, and event types added after this was written
        }
        Ok(false)
    }

    fn end(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        Err(ProviderError::Unavailable(
            "the stream ended before message_stop".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
