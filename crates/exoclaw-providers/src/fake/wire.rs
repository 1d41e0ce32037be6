//! The fake provider's renderings of one answer in both wire formats: the
//! exact SSE event sequences (Anthropic `message_start` ... `message_stop`,
//! OpenAI chunks and `[DONE]`), the non-streaming JSON bodies, error bodies,
//! and the byte layout of a body (faults, stalls, chunk sizes).

use super::script::{Fault, Reply};
use exoclaw_core::provider::{StopReason, ToolCall, Usage};
use serde_json::{Value, json};
use std::time::Duration;

/// Which format a request came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    Anthropic,
    OpenAi,
}

/// What the fake says, whatever the format.
pub(crate) struct Answer {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) text: String,
    pub(crate) tool_calls: Vec<ToolCall>,
    pub(crate) usage: Usage,
    pub(crate) stop: StopReason,
}

pub(crate) enum Frame {
    Event {
        name: Option<&'static str>,
        data: String,
    },
    Comment(&'static str),
}

fn event(name: &'static str, data: &Value) -> Frame {
    Frame::Event {
        name: Some(name),
        data: data.to_string(),
    }
}

fn data(data: &Value) -> Frame {
    Frame::Event {
        name: None,
        data: data.to_string(),
    }
}

/// `text` in `n` pieces of about equal length (on character boundaries).
pub(crate) fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

pub(crate) fn arguments_text(call: &ToolCall) -> String {
    match &call.arguments {
        Value::String(raw) => raw.clone(),
        v => v.to_string(),
    }
}

fn anthropic_stop(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::ToolUse => "tool_use",
        StopReason::MaxTokens => "max_tokens",
        StopReason::Other => "refusal",
    }
}

fn openai_stop(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn => "stop",
        StopReason::ToolUse => "tool_calls",
        StopReason::MaxTokens => "length",
        StopReason::Other => "content_filter",
    }
}

pub(crate) fn anthropic_frames(a: &Answer, reply: &Reply) -> Vec<Frame> {
    let mut f = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": a.id, "type": "message", "role": "assistant", "content": [], "model": a.model,
            "stop_reason": null, "stop_sequence": null,
            "usage": {
                "input_tokens": a.usage.input_tokens,
                "cache_creation_input_tokens": a.usage.cache_write_tokens,
                "cache_read_input_tokens": a.usage.cache_read_tokens,
                "output_tokens": 1,
            },
        }}),
    )];
    let ping = || event("ping", &json!({"type": "ping"}));
    if reply.pings {
        f.push(ping());
    }
    let mut index = 0;
    if !a.text.is_empty() {
        f.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        ));
        for (i, piece) in split(&a.text, reply.deltas).into_iter().enumerate() {
            if reply.pings && i == 1 {
                f.push(ping());
            }
            f.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        f.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for call in &a.tool_calls {
        f.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": call.id, "name": call.name, "input": {}}}),
        ));
        f.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ));
        for piece in split(&arguments_text(call), 3) {
            f.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        f.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    f.push(event(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": anthropic_stop(a.stop), "stop_sequence": null},
               "usage": {"output_tokens": a.usage.output_tokens}}),
    ));
    f.push(event("message_stop", &json!({"type": "message_stop"})));
    f
}

fn openai_usage(u: &Usage) -> Value {
    let prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
    })
}

pub(crate) fn openai_frames(a: &Answer, reply: &Reply) -> Vec<Frame> {
    let chunk = |delta: Value, finish: Value| {
        data(
            &json!({"id": a.id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": a.model,
            "system_fingerprint": "fp_fake", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}),
        )
    };
    let mut f = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if reply.pings {
        f.push(Frame::Comment("keep-alive"));
    }
    for (i, piece) in split(&a.text, reply.deltas).into_iter().enumerate() {
        if reply.pings && i == 1 {
            f.push(Frame::Comment("keep-alive"));
        }
        f.push(chunk(json!({"content": piece}), Value::Null));
    }
    // Heads first (id, name), then the argument fragments interleaved
    // across calls, as parallel calls arrive from OpenAI.
    for (i, call) in a.tool_calls.iter().enumerate() {
        f.push(chunk(
            json!({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                                   "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
    }
    let fragments: Vec<Vec<String>> = a
        .tool_calls
        .iter()
        .map(|c| split(&arguments_text(c), 3))
        .collect();
    let rounds = fragments.iter().map(Vec::len).max().unwrap_or(0);
    for round in 0..rounds {
        for (i, pieces) in fragments.iter().enumerate() {
            if let Some(piece) = pieces.get(round) {
                f.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                    Value::Null,
                ));
            }
        }
    }
    f.push(chunk(json!({}), json!(openai_stop(a.stop))));
    f.push(data(
        &json!({"id": a.id, "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": a.model, "choices": [], "usage": openai_usage(&a.usage)}),
    ));
    f.push(Frame::Event {
        name: None,
        data: "[DONE]".into(),
    });
    f
}

/// Whether a frame is the OpenAI stream's usage chunk.
pub(crate) fn is_usage_frame(f: &Frame) -> bool {
    matches!(f, Frame::Event { data, .. } if data.contains("\"usage\"") && data.contains("\"choices\":[]"))
}

pub(crate) fn anthropic_json(a: &Answer) -> Value {
    let mut content = Vec::new();
    if !a.text.is_empty() {
        content.push(json!({"type": "text", "text": a.text}));
    }
    for c in &a.tool_calls {
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}));
    }
    json!({"id": a.id, "type": "message", "role": "assistant", "model": a.model, "content": content,
        "stop_reason": anthropic_stop(a.stop), "stop_sequence": null,
        "usage": {"input_tokens": a.usage.input_tokens, "output_tokens": a.usage.output_tokens,
                  "cache_creation_input_tokens": a.usage.cache_write_tokens,
                  "cache_read_input_tokens": a.usage.cache_read_tokens}})
}

pub(crate) fn openai_json(a: &Answer) -> Value {
    let mut message = json!({"role": "assistant", "content": if a.text.is_empty() { Value::Null } else { json!(a.text) }});
    if !a.tool_calls.is_empty() {
        message["tool_calls"] = a
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments_text(c)}}))
            .collect();
    }
    json!({"id": a.id, "object": "chat.completion", "created": 1_700_000_000, "model": a.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": openai_stop(a.stop)}],
        "usage": openai_usage(&a.usage)})
}

/// The vendor-shaped error body for an HTTP status.
pub(crate) fn error_body(wire: WireFormat, status: u16) -> String {
    let (kind, message) = match status {
        400 => ("invalid_request_error", "the request is invalid"),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => ("permission_error", "this key may not use this model"),
        404 => ("not_found_error", "model not found"),
        429 => ("rate_limit_error", "rate limit exceeded; slow down"),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "internal server error"),
    };
    match wire {
        WireFormat::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
        }
        WireFormat::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
                .to_string()
        }
    }
}

/// Apply a fault after `after` events.
pub(crate) fn apply_fault(
    wire: WireFormat,
    mut frames: Vec<Frame>,
    after: usize,
    fault: &Fault,
) -> Vec<Frame> {
    let mut events = 0;
    let mut split_at = frames.len();
    for (i, frame) in frames.iter().enumerate() {
        if events == after {
            split_at = i;
            break;
        }
        if matches!(frame, Frame::Event { .. }) {
            events += 1;
        }
    }
    let tail = frames.split_off(split_at);
    finish_fault(wire, frames, tail, fault)
}

fn finish_fault(
    wire: WireFormat,
    mut out: Vec<Frame>,
    tail: Vec<Frame>,
    fault: &Fault,
) -> Vec<Frame> {
    match fault {
        Fault::Error { kind, message } => out.push(match wire {
            WireFormat::Anthropic => event(
                "error",
                &json!({"type": "error", "error": {"type": kind, "message": message}}),
            ),
            WireFormat::OpenAi => {
                data(&json!({"error": {"message": message, "type": kind, "code": null}}))
            }
        }),
        Fault::Malformed => {
            out.push(Frame::Event {
                name: (wire == WireFormat::Anthropic).then_some("content_block_delta"),
                data: "{\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_del".into(),
            });
            out.extend(tail);
        }
        Fault::Cut => {}
    }
    out
}

/// A piece of a response body: bytes to write, or a pause.
pub(crate) enum Segment {
    Bytes(Vec<u8>),
    Pause(Duration),
}

/// Serialise frames, with a pause after `stall.0` events, and cut the bytes
/// into the reply's chunk sizes.
pub(crate) fn layout(frames: &[Frame], reply: &Reply) -> Vec<Segment> {
    let eol = if reply.crlf { "\r\n" } else { "\n" };
    let mut runs: Vec<Segment> = Vec::new();
    let mut current = String::new();
    let mut events = 0;
    for frame in frames {
        if let Some((after, pause)) = reply.stall
            && events == after
            && matches!(frame, Frame::Event { .. })
        {
            runs.push(Segment::Bytes(std::mem::take(&mut current).into_bytes()));
            runs.push(Segment::Pause(pause));
            // A client that left during the pause is only noticed when a
            // write fails: the first write after it left still succeeds
            // (and draws a reset), so probe, wait a moment, then go on.
            runs.push(Segment::Bytes(format!(": probe{eol}{eol}").into_bytes()));
            runs.push(Segment::Pause(Duration::from_millis(50)));
        }
        match frame {
            Frame::Event { name, data } => {
                if let Some(name) = name {
                    current.push_str(&format!("event: {name}{eol}"));
                }
                for line in data.split('\n') {
                    current.push_str(&format!("data: {line}{eol}"));
                }
                current.push_str(eol);
                events += 1;
            }
            Frame::Comment(text) => current.push_str(&format!(": {text}{eol}{eol}")),
        }
    }
    runs.push(Segment::Bytes(current.into_bytes()));
    let mut out = Vec::new();
    let mut sizes = reply.chunk_sizes.iter().cycle();
    for run in runs {
        match run {
            Segment::Bytes(bytes) if reply.chunk_sizes.is_empty() => {
                if !bytes.is_empty() {
                    out.push(Segment::Bytes(bytes));
                }
            }
            Segment::Bytes(bytes) => {
                let mut rest = bytes.as_slice();
                while !rest.is_empty() {
                    let n = sizes.next().copied().unwrap_or(rest.len()).min(rest.len());
                    out.push(Segment::Bytes(rest[..n].to_vec()));
                    rest = &rest[n..];
                }
            }
            pause @ Segment::Pause(_) => out.push(pause),
        }
    }
    out
}
