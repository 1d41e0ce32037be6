//! The chat-completions request body, written straight from the borrowed
//! [`ChatRequest`] into bytes: no intermediate `serde_json::Value`, so a
//! message's text is copied once (into the body), not three times (into a
//! `Value`, its map's keys, then the body), and a tool's schema is not
//! cloned per call. A long session sends its whole window on every turn, so
//! this is the part of a turn that grows with the session.

use super::MaxTokensField;
use exoclaw_core::provider::{ChatMessage, ChatRequest, ChatRole, ContentPart, ToolSpec};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use std::borrow::Cow;

/// How a body is written.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub max_tokens_field: MaxTokensField,
    /// Add `tool_choice: "auto"` when tools are offered.
    pub tool_choice_auto: bool,
    /// Ask for a stream (with usage in the last chunk).
    pub stream: bool,
}

/// The JSON body of `request`.
pub fn encode(request: &ChatRequest, options: Options) -> Result<Vec<u8>, serde_json::Error> {
    // The text dominates; a small fixed cost per message for the framing.
    let estimate = request
        .messages
        .iter()
        .map(|m| 48 + m.content.iter().map(part_len).sum::<usize>())
        .sum::<usize>()
        + request.system.as_ref().map_or(0, String::len)
        + 256;
    let mut out = Vec::with_capacity(estimate);
    serde_json::to_writer(&mut out, &Body { request, options })?;
    Ok(out)
}

fn part_len(part: &ContentPart) -> usize {
    match part {
        ContentPart::Text { text } => text.len(),
        ContentPart::ToolCall(c) => c.id.len() + c.name.len() + 64,
        ContentPart::ToolResult {
            call_id, content, ..
        } => call_id.len() + content.len() + 48,
    }
}

struct Body<'a> {
    request: &'a ChatRequest,
    options: Options,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.request;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", &r.model)?;
        m.serialize_entry("messages", &Messages(r))?;
        m.serialize_entry("stream", &self.options.stream)?;
        if self.options.stream {
            m.serialize_entry(
                "stream_options",
                &IncludeUsage {
                    include_usage: true,
                },
            )?;
        }
        if !r.tools.is_empty() {
            m.serialize_entry("tools", &Tools(&r.tools))?;
            if self.options.tool_choice_auto {
                m.serialize_entry("tool_choice", "auto")?;
            }
        }
        if let Some(max) = r.max_tokens {
            let field = match self.options.max_tokens_field {
                MaxTokensField::MaxTokens => "max_tokens",
                MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            };
            m.serialize_entry(field, &max)?;
        }
        if let Some(t) = r.temperature {
            m.serialize_entry("temperature", &t)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct IncludeUsage {
    include_usage: bool,
}

/// The system prompt, then every message; tool results become `tool`
/// messages wherever they appear.
struct Messages<'a>(&'a ChatRequest);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        if let Some(system) = self.0.system.as_deref().filter(|s| !s.is_empty()) {
            seq.serialize_element(&Plain {
                role: "system",
                content: system,
            })?;
        }
        for message in self.0.messages.iter() {
            push_message(message, &mut seq)?;
        }
        seq.end()
    }
}

fn push_message<S: SerializeSeq>(message: &ChatMessage, seq: &mut S) -> Result<(), S::Error> {
    if message.role != ChatRole::Assistant {
        for part in &message.content {
            if let ContentPart::ToolResult {
                call_id, content, ..
            } = part
            {
                seq.serialize_element(&ToolMessage {
                    role: "tool",
                    tool_call_id: call_id,
                    content,
                })?;
            }
        }
    }
    let text = text_of(message);
    match message.role {
        ChatRole::User if !text.is_empty() || message.content.is_empty() => {
            seq.serialize_element(&Plain {
                role: "user",
                content: &text,
            })?;
        }
        ChatRole::Assistant => {
            let has_calls = message
                .content
                .iter()
                .any(|p| matches!(p, ContentPart::ToolCall(_)));
            // An empty string rather than `null` beside tool calls: the API
            // allows both, llama-cpp-python (its request schema and its chat
            // templates) only a string.
            seq.serialize_element(&Assistant {
                role: "assistant",
                content: &text,
                tool_calls: has_calls.then_some(Calls(message)),
            })?;
        }
        ChatRole::User | ChatRole::Tool => {}
    }
    Ok(())
}

/// The message's text parts, borrowed when there is one.
fn text_of(message: &ChatMessage) -> Cow<'_, str> {
    let mut texts = message.content.iter().filter_map(|p| match p {
        ContentPart::Text { text } => Some(text.as_str()),
        _ => None,
    });
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(one), None) => Cow::Borrowed(one),
        (Some(_), Some(_)) => Cow::Owned(message.text()),
    }
}

#[derive(Serialize)]
struct Plain<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct ToolMessage<'a> {
    role: &'static str,
    tool_call_id: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct Assistant<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Calls<'a>>,
}

/// An assistant message's tool calls.
struct Calls<'a>(&'a ChatMessage);

impl Serialize for Calls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for part in &self.0.content {
            if let ContentPart::ToolCall(c) = part {
                seq.serialize_element(&Call {
                    id: &c.id,
                    kind: "function",
                    function: Function {
                        name: &c.name,
                        arguments: arguments_text(&c.arguments),
                    },
                })?;
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Call<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: Cow<'a, str>,
}

/// Arguments travel as a JSON string; a raw string kept from an unparsable
/// call goes back verbatim.
fn arguments_text(arguments: &Value) -> Cow<'_, str> {
    match arguments {
        Value::String(raw) => Cow::Borrowed(raw),
        other => Cow::Owned(other.to_string()),
    }
}

struct Tools<'a>(&'a [ToolSpec]);

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for t in self.0 {
            seq.serialize_element(&Tool {
                kind: "function",
                function: ToolFunction {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}
