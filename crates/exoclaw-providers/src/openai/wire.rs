//! The chat-completions request body, written straight from the borrowed
//! [`ChatRequest`] into bytes: no intermediate `serde_json::Value`, so a
//! message's text is copied once (into the body), not three times (into a
//! `Value`, its map's keys, then the body), and a tool's schema is not
//! cloned per call. A long session sends its whole window on every turn, so
//! this is the part of a turn that grows with the session: the messages'
//! encoding is kept with the history and copied as one piece.

use super::MaxTokensField;
use bytes::Bytes;
use exoclaw_core::memo::ListMemo;
use exoclaw_core::provider::{ChatMessage, ChatRequest, ChatRole, ContentPart, ToolSpec};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// How a body is written.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub max_tokens_field: MaxTokensField,
    /// Add `tool_choice: "auto"` when tools are offered.
    pub tool_choice_auto: bool,
    /// Ask for a stream (with usage in the last chunk).
    pub stream: bool,
}

/// The key the encoding of a history's messages is kept under
/// ([`Prefix`](exoclaw_core::derived::Prefix)).
const FORMAT: &str = "openai-chat";

/// The JSON body of `request`. The encoding of its messages is kept with the
/// history it came from ([`kept_part`]), so the next turn encodes only the
/// messages new since and copies the rest as one piece.
pub fn encode(request: &ChatRequest, options: Options) -> Result<Bytes, serde_json::Error> {
    let messages = request.messages.as_slice();
    let (from, kept) = match request.prefix.wire(FORMAT, messages) {
        Some((n, kept)) => (n, Some(kept)),
        None => (0, None),
    };
    let fragments = messages[from..]
        .iter()
        .map(fragment)
        .collect::<Result<Vec<_>, _>>()?;
    let estimate = kept.as_ref().map_or(0, |k| k.len())
        + fragments.iter().map(|f| f.len() + 1).sum::<usize>()
        + request.system.as_ref().map_or(0, String::len)
        + 256;
    let mut out = Vec::with_capacity(estimate);
    out.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut out, &request.model)?;
    out.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        serde_json::to_writer(
            &mut out,
            &Plain {
                role: "system",
                content: system,
            },
        )?;
        first = false;
    }
    // The messages' part of the body, kept for the next turn.
    let mut part_start = None;
    let pieces = kept
        .as_deref()
        .into_iter()
        .chain(fragments.iter().map(String::as_bytes));
    for piece in pieces.filter(|p| !p.is_empty()) {
        if !first {
            out.push(b',');
        }
        part_start.get_or_insert(out.len());
        out.extend_from_slice(piece);
        first = false;
    }
    let part = part_start.map_or(0..0, |start| start..out.len());
    out.push(b']');
    out.extend_from_slice(if options.stream {
        b",\"stream\":true,\"stream_options\":{\"include_usage\":true}".as_slice()
    } else {
        b",\"stream\":false".as_slice()
    });
    if !request.tools.is_empty() {
        out.extend_from_slice(b",\"tools\":");
        out.extend_from_slice(tools_json(&request.tools)?.as_bytes());
        if options.tool_choice_auto {
            out.extend_from_slice(b",\"tool_choice\":\"auto\"");
        }
    }
    if let Some(max) = request.max_tokens {
        let field = match options.max_tokens_field {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        };
        out.extend_from_slice(format!(",\"{field}\":{max}").as_bytes());
    }
    if let Some(t) = request.temperature {
        out.extend_from_slice(b",\"temperature\":");
        serde_json::to_writer(&mut out, &t)?;
    }
    out.push(b'}');
    let body = Bytes::from(out);
    if from < messages.len() {
        request
            .prefix
            .keep_wire(FORMAT, messages, kept_part(&body, part));
    }
    Ok(body)
}

/// The messages' part of `body`, to keep with the history: a slice when
/// it is most of the body (a long session's), else a copy, so that a short
/// session's window does not keep the system prompt and the tool
/// definitions alive with it (a thousand cached windows of one turn each
/// held 12 MiB more as slices, BENCHMARKS.md).
fn kept_part(body: &Bytes, part: std::ops::Range<usize>) -> Bytes {
    if part.len() * 2 >= body.len() {
        body.slice(part)
    } else {
        Bytes::copy_from_slice(&body[part])
    }
}

/// The tool definitions' JSON, written once per shared list: every run with
/// the same tools sends the same list ([`exoclaw_core::memo`]).
fn tools_json(tools: &Arc<[ToolSpec]>) -> Result<Arc<str>, serde_json::Error> {
    static MEMO: ListMemo<ToolSpec, Option<Arc<str>>> = ListMemo::new();
    if let Some(json) = MEMO.get(tools, |t| {
        serde_json::to_string(&Tools(t)).ok().map(Arc::from)
    }) {
        return Ok(json);
    }
    serde_json::to_string(&Tools(tools)).map(Arc::from)
}

/// The wire messages one message becomes, comma-separated (none, one, or
/// several: tool results are a `tool` message each).
fn fragment(message: &ChatMessage) -> Result<String, serde_json::Error> {
    let mut w = Fragment {
        out: Vec::new(),
        first: true,
    };
    push_message(message, &mut w)?;
    // serde_json writes UTF-8 only.
    String::from_utf8(w.out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

struct Fragment {
    out: Vec<u8>,
    first: bool,
}

impl Fragment {
    fn element<T: Serialize>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, value)
    }
}

fn push_message(message: &ChatMessage, seq: &mut Fragment) -> Result<(), serde_json::Error> {
    if message.role != ChatRole::Assistant {
        for part in &message.content {
            if let ContentPart::ToolResult {
                call_id, content, ..
            } = part
            {
                seq.element(&ToolMessage {
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
            seq.element(&Plain {
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
            seq.element(&Assistant {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kept_part_is_a_slice_only_when_it_is_most_of_the_body() {
        let body = Bytes::from(b"head-head-[long messages part]}".to_vec());
        let within = |kept: &Bytes| {
            let range = body.as_ptr_range();
            range.contains(&kept.as_ptr())
        };
        let long = kept_part(&body, 10..30);
        assert_eq!(&long[..], b"[long messages part]");
        assert!(within(&long), "shares the body");
        let short = kept_part(&body, 10..15);
        assert_eq!(&short[..], b"[long");
        assert!(!within(&short), "a copy of its own");
    }
}
